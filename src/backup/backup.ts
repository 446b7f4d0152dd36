import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { log } from '../log.js';
import { type EtcdEndpoint, type SnapshotStatus, snapshotSave, snapshotStatus } from './etcdctl.js';
import { DEFAULT_RETENTION, planRetention, type RetentionPlan, type RetentionPolicy } from './retention.js';
import type { BackupMeta, BackupObject, BackupStore } from './store.js';

/**
 * Taking, verifying and expiring etcd snapshots (DESIGN.md §8), step by step:
 *   1. `etcdctl snapshot save` from one member into a private temp directory (0700);
 *   2. `snapshot status` on the file: the revision recorded with it (a file etcd cannot
 *      read is refused here, before anything is uploaded);
 *   3. seal and upload it (BackupStore.upload: its own data key, context layer=backups);
 *   4. verify after upload: download the object back, authenticate and decrypt it, compare
 *      its SHA-256 with the local file's, and run `snapshot status` on the downloaded copy;
 *      its revision must be the one of step 2;
 *   5. remove the temp directory (the plaintext never stays on disk).
 */

/** What a backup produced. */
export interface BackupResult {
  key: string;
  versionId: string;
  meta: BackupMeta;
  status: SnapshotStatus;
  /** milliseconds per phase: save, upload, verify */
  timingsMs: { save: number; upload: number; verify: number };
}

/** A private temp directory removed after `fn`, whatever happens. */
export async function withScratch<T>(
  parent: string | undefined,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(parent ?? os.tmpdir(), 'kp-etcd-'));
  await chmod(dir, 0o700);
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Takes a snapshot of `endpoint`, uploads it and verifies the upload (steps 1–5 above).
 * @param opts.member the member name recorded with the snapshot (part of the object key)
 * @param opts.nowMs the time the snapshot is dated with @default Date.now()
 * @param opts.scratchParent where the temp directory goes @default os.tmpdir()
 * @throws IntegrityError when the verification after upload fails; ExecError when etcdctl fails
 */
export async function takeBackup(
  store: BackupStore,
  endpoint: EtcdEndpoint,
  opts: { member: string; nowMs?: number; etcdVersion?: string; scratchParent?: string },
): Promise<BackupResult> {
  return withScratch(opts.scratchParent, async (dir) => {
    const file = path.join(dir, 'snapshot.db');
    let t = Date.now();
    await snapshotSave(endpoint, file, dir);
    const status = await snapshotStatus(file, dir);
    const save = Date.now() - t;
    const bytes = await readFile(file);
    t = Date.now();
    const up = await store.upload(
      bytes,
      {
        member: opts.member,
        revision: status.revision,
        ...(opts.etcdVersion ? { etcdVersion: opts.etcdVersion } : {}),
      },
      opts.nowMs ?? Date.now(),
    );
    const upload = Date.now() - t;
    t = Date.now();
    const back = await verifyBackup(store, up.key, { versionId: up.versionId, scratch: dir });
    if (back.meta.sha256 !== up.meta.sha256 || back.status.revision !== status.revision) {
      throw new IntegrityError(`${up.key}: the uploaded snapshot differs from the one taken`);
    }
    const verify = Date.now() - t;
    log.info(`${up.key}: revision ${status.revision}, ${bytes.length} bytes, verified after upload`);
    return {
      key: up.key,
      versionId: up.versionId,
      meta: up.meta,
      status,
      timingsMs: { save, upload, verify },
    };
  });
}

/**
 * Downloads a snapshot, verifies it (authentication, SHA-256, `snapshot status`) and
 * optionally keeps the plaintext at `opts.keepAt` for a restore.
 * @throws IntegrityError when any check fails
 */
export async function verifyBackup(
  store: BackupStore,
  key: string,
  opts: { versionId?: string; scratch?: string; keepAt?: string } = {},
): Promise<{ meta: BackupMeta; status: SnapshotStatus }> {
  const { snapshot, meta } = await store.download(key, opts.versionId);
  const run = async (dir: string) => {
    const file = opts.keepAt ?? path.join(dir, 'verify.db');
    await writeFile(file, snapshot, { mode: 0o600 });
    const status = await snapshotStatus(file, dir);
    if (meta.revision && status.revision !== meta.revision) {
      throw new IntegrityError(`${key}: revision ${status.revision} is not the ${meta.revision} recorded`);
    }
    return { meta, status };
  };
  return opts.scratch ? run(opts.scratch) : withScratch(undefined, run);
}

/**
 * Applies the retention policy to the bucket's snapshots (etcd-manager's; see retention.ts).
 * @param opts.dryRun plan only: nothing is deleted
 * @returns the plan (what was kept and what was, or would be, deleted)
 */
export async function expireBackups(
  store: BackupStore,
  opts: { policy?: RetentionPolicy; nowMs?: number; dryRun?: boolean } = {},
): Promise<RetentionPlan<BackupObject>> {
  const all = await store.list();
  const plan = planRetention(all, opts.nowMs ?? Date.now(), opts.policy ?? DEFAULT_RETENTION);
  if (!opts.dryRun && plan.delete.length) {
    const n = await store.remove(plan.delete.map((b) => b.key));
    log.info(`retention: deleted ${plan.delete.length} snapshots (${n} object versions)`);
  }
  return plan;
}

/** The start of the backup slot containing `ms`, as the lease name (UTC `YYYYMMDDTHHMMSSZ`). */
export function slotOf(ms: number, intervalS: number): string {
  const start = Math.floor(ms / (intervalS * 1000)) * intervalS * 1000;
  return new Date(start)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

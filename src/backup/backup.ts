import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { log } from '../log.js';
import { sha256 } from '../secrets/envelope.js';
import type { EtcdEndpoint } from './endpoint.js';
import { checkSnapshotHash, gatewaySnapshot } from './gateway.js';
import { DEFAULT_RETENTION, planRetention, type RetentionPlan, type RetentionPolicy } from './retention.js';
import type { BackupMeta, BackupObject, BackupStore } from './store.js';

/**
 * Taking, verifying and expiring etcd snapshots (DESIGN.md §8), step by step:
 *   1. a snapshot of one member into a private temp directory (0700): `etcdctl snapshot
 *      save` ({@link etcdctlSource}, the toolkit) or etcd's Maintenance.Snapshot over its
 *      gateway ({@link gatewaySource}, the masters' timer, in the agent bundle);
 *   2. the file is checked (`snapshot status`, or etcd's appended SHA-256) before anything
 *      is uploaded, and its revision noted;
 *   3. seal and upload it (BackupStore.upload: its own data key, context layer=backups);
 *   4. verify after upload: download the object back, authenticate and decrypt it, compare
 *      its SHA-256 with the local file's, and check the downloaded copy as in 2;
 *   5. remove the temp directory (the plaintext never stays on disk).
 */

/** How a snapshot is taken and checked. */
export interface SnapshotSource {
  /** writes a snapshot into `file`; @returns its revision */
  save(file: string, scratch: string): Promise<number>;
  /** checks a snapshot file; @returns its revision when the check can tell it @throws IntegrityError */
  check(file: string, scratch: string): Promise<{ revision?: number }>;
}

/** etcd's Maintenance.Snapshot over the gateway; checked by etcd's appended SHA-256. */
export function gatewaySource(endpoint: EtcdEndpoint): SnapshotSource {
  return {
    save: (file) => gatewaySnapshot(endpoint, file),
    check: async (file) => {
      checkSnapshotHash(await readFile(file));
      return {};
    },
  };
}

/** What a backup produced. */
export interface BackupResult {
  key: string;
  versionId: string;
  meta: BackupMeta;
  revision: number;
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
 * Takes a snapshot from `source`, uploads it and verifies the upload (steps 1–5 above).
 * @param opts.member the member name recorded with the snapshot (part of the object key)
 * @param opts.nowMs the time the snapshot is dated with @default Date.now()
 * @param opts.scratchParent where the temp directory goes @default os.tmpdir()
 * @throws IntegrityError when the snapshot or its verification after upload fails
 */
export async function takeBackup(
  store: BackupStore,
  source: SnapshotSource,
  opts: { member: string; nowMs?: number; etcdVersion?: string; scratchParent?: string },
): Promise<BackupResult> {
  return withScratch(opts.scratchParent, async (dir) => {
    const file = path.join(dir, 'snapshot.db');
    let t = Date.now();
    const saved = await source.save(file, dir);
    const checked = await source.check(file, dir);
    const revision = checked.revision ?? saved;
    const save = Date.now() - t;
    const bytes = await readFile(file);
    t = Date.now();
    const up = await store.upload(
      bytes,
      { member: opts.member, revision, ...(opts.etcdVersion ? { etcdVersion: opts.etcdVersion } : {}) },
      opts.nowMs ?? Date.now(),
    );
    const upload = Date.now() - t;
    t = Date.now();
    const back = await store.download(up.key, up.versionId);
    if (back.meta.sha256 !== up.meta.sha256 || sha256(back.snapshot) !== up.meta.sha256) {
      throw new IntegrityError(`${up.key}: the uploaded snapshot differs from the one taken`);
    }
    const copy = path.join(dir, 'verify.db');
    await writeFile(copy, back.snapshot, { mode: 0o600 });
    const again = await source.check(copy, dir);
    if (again.revision !== undefined && again.revision !== revision) {
      throw new IntegrityError(
        `${up.key}: the uploaded snapshot is at revision ${again.revision}, not ${revision}`,
      );
    }
    const verify = Date.now() - t;
    log.info(`${up.key}: revision ${revision}, ${bytes.length} bytes, verified after upload`);
    return {
      key: up.key,
      versionId: up.versionId,
      meta: up.meta,
      revision,
      timingsMs: { save, upload, verify },
    };
  });
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
  if (!opts.dryRun) await store.removeOldLeases(opts.nowMs ?? Date.now());
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

import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { withScratch } from './backup.js';
import {
  keyCount,
  type RestoreMember,
  type SnapshotStatus,
  snapshotRestore,
  snapshotStatus,
} from './etcdctl.js';
import { planLocalMembers, startLocalMembers, stopLocalMembers } from './member.js';
import type { BackupMeta, BackupStore } from './store.js';

/**
 * Restoring an etcd snapshot from the bucket (etcd.io op-guide "Disaster recovery"):
 * download and verify (authentication, SHA-256, `snapshot status`), then `snapshot restore`
 * into a new data directory per member, the same snapshot and the same new cluster token
 * for all of them, then start them together. The dry run does all of it for a single
 * member in a scratch directory on loopback and counts the keys.
 */

/**
 * Downloads a snapshot, verifies it (authentication, SHA-256, `snapshot status`, the
 * recorded revision) and keeps the plaintext at `opts.keepAt` (0600) for a restore.
 * @throws IntegrityError when any check fails
 */
export async function verifyBackup(
  store: BackupStore,
  key: string,
  opts: { versionId?: string; scratch: string; keepAt?: string },
): Promise<{ meta: BackupMeta; status: SnapshotStatus }> {
  const { snapshot, meta } = await store.download(key, opts.versionId);
  const file = opts.keepAt ?? path.join(opts.scratch, 'verify.db');
  await writeFile(file, snapshot, { mode: 0o600 });
  const status = await snapshotStatus(file, opts.scratch);
  if (meta.revision && status.revision !== meta.revision) {
    throw new IntegrityError(`${key}: revision ${status.revision} is not the ${meta.revision} recorded`);
  }
  return { meta, status };
}

/** What a dry run found. */
export interface DryRunReport {
  key: string;
  meta: BackupMeta;
  status: SnapshotStatus;
  /** live keys in the restored database (a member started on it, on loopback) */
  keys: number;
  /** the restored member's revision */
  revision: number;
}

/**
 * `etcd-restore --dry-run`: downloads and verifies `key`, restores it into a scratch data
 * directory, starts a member on it on 127.0.0.1 and counts its keys; removes everything after.
 * @throws IntegrityError for a corrupted or foreign snapshot (nothing is restored)
 */
export async function dryRunRestore(
  store: BackupStore,
  key: string,
  opts: { scratchParent?: string } = {},
): Promise<DryRunReport> {
  return withScratch(opts.scratchParent, async (dir) => {
    const file = path.join(dir, 'snapshot.db');
    const { meta, status } = await verifyBackup(store, key, { scratch: dir, keepAt: file });
    const [member] = await planLocalMembers(['dry-run'], dir);
    const token = `kp-dry-run-${randomBytes(6).toString('hex')}`;
    await snapshotRestore(file, {
      dataDir: member!.dataDir,
      member: { name: member!.name, peerUrl: member!.peerUrl },
      cluster: [{ name: member!.name, peerUrl: member!.peerUrl }],
      token,
      cwd: dir,
    });
    await startLocalMembers([member!], { token, logDir: dir });
    try {
      const live = await keyCount({ url: member!.clientUrl }, dir);
      return { key, meta, status, keys: live.keys, revision: live.revision };
    } finally {
      await stopLocalMembers([member!]);
    }
  });
}

/** A new cluster token for a restore: `kp-restore-<time>-<random>`. */
export function newClusterToken(nowMs = Date.now()): string {
  return `kp-restore-${Math.floor(nowMs / 1000)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Restores `key` into `dataDir` as member `member` of the new cluster `cluster` (one step
 * of the real restore, run for every member with the same key and token).
 * @throws IntegrityError for a corrupted or foreign snapshot; PlatformError when dataDir exists
 */
export async function restoreMember(
  store: BackupStore,
  key: string,
  opts: {
    dataDir: string;
    member: RestoreMember;
    cluster: RestoreMember[];
    token: string;
    scratchParent?: string;
  },
): Promise<{ meta: BackupMeta; status: SnapshotStatus }> {
  return withScratch(opts.scratchParent, async (dir) => {
    const file = path.join(dir, 'snapshot.db');
    const verified = await verifyBackup(store, key, { scratch: dir, keepAt: file });
    await snapshotRestore(file, { ...opts, cwd: dir });
    return verified;
  });
}

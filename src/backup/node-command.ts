import { awsSettings, type LocalEndpoint, StorageClients } from '../aws/storage-clients.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { KmsKeyService } from '../secrets/keyring.js';
import {
  type BackupResult,
  expireBackups,
  gatewaySource,
  type SnapshotSource,
  slotOf,
  takeBackup,
} from './backup.js';
import type { EtcdEndpoint } from './endpoint.js';
import { DEFAULT_RETENTION, type RetentionPolicy } from './retention.js';
import { BackupStore } from './store.js';

/**
 * `etcd-backup now` as the masters' timer runs it (kp-etcd-backup.service, from the node
 * agent's bundle: nothing of the operator side — no environment file — is needed): node
 * mode names the bucket, region and environment; the KMS key is the environment's alias
 * `alias/kube-platform/<env>`; interval and retention come as flags rendered from the
 * environment file by Terraform.
 */

/** Node-mode flags (strings as commander hands them over). */
export interface NodeBackupFlags {
  environment?: string;
  bucket?: string;
  region?: string;
  /** minutes per backup slot (--elect) @default 15 */
  intervalMinutes?: string | number;
  keepAllHours?: string | number;
  hourlyDays?: string | number;
  dailyDays?: string | number;
}

export interface OpenedBackups {
  store: BackupStore;
  policy: RetentionPolicy;
  intervalMinutes: number;
  close(): Promise<void>;
}

function whole(flag: string, v: string | number | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new UserError(`${flag} ${v}: a whole number 0..${max}`);
  return n;
}

/**
 * Opens the backup store from node-mode flags (`local`: the embedded local AWS's endpoint
 * and credentials, for the toolkit's `--local`).
 * @throws UserError when --environment, --bucket or --region is missing or a number is bad
 */
export async function openNodeBackups(o: NodeBackupFlags, local?: LocalEndpoint): Promise<OpenedBackups> {
  if (!o.environment || !o.bucket || !o.region) {
    throw new UserError('give -e ENV (operator) or --environment, --bucket and --region (on a master)');
  }
  const policy: RetentionPolicy = {
    keepAllS: whole('--keep-all-hours', o.keepAllHours, DEFAULT_RETENTION.keepAllS / 3600, 720) * 3600,
    hourlyS: whole('--hourly-days', o.hourlyDays, DEFAULT_RETENTION.hourlyS / 86_400, 365) * 86_400,
    dailyS: whole('--daily-days', o.dailyDays, DEFAULT_RETENTION.dailyS / 86_400, 3650) * 86_400,
  };
  const intervalMinutes = whole('--interval-minutes', o.intervalMinutes, 15, 1440) || 15;
  const aws = new StorageClients(awsSettings(o.region, undefined, local));
  const kmsKeyId = `alias/kube-platform/${o.environment}`;
  return {
    store: new BackupStore({
      s3: await aws.s3(),
      keys: new KmsKeyService(await aws.kms(), kmsKeyId),
      bucket: o.bucket,
      environment: o.environment,
      kmsKeyId,
    }),
    policy,
    intervalMinutes,
    close: async () => aws.destroy(),
  };
}

/** Options of `etcd-backup now`. */
export interface BackupNowFlags {
  /** the member client URL @default https://127.0.0.1:2379 (on a master) */
  endpoint: string;
  /** CA, client certificate and key files: all three, or none (plain http, tests) */
  cacert?: string;
  cert?: string;
  key?: string;
  /** member name recorded with the snapshot @default the host name */
  member?: string;
  /** claim this interval's slot first (conditional write); skip when another master holds it */
  elect?: boolean;
  /** false (--no-expire): do not apply retention afterwards */
  expire?: boolean;
  json?: boolean;
}

/** @throws UserError for an incomplete TLS triple or a malformed URL */
export function endpointOf(o: BackupNowFlags): EtcdEndpoint {
  const given = [o.cacert, o.cert, o.key].filter(Boolean).length;
  if (given !== 0 && given !== 3) throw new UserError('--cacert, --cert and --key go together');
  if (!/^https?:\/\/[^\s/]+$/.test(o.endpoint)) {
    throw new UserError(`--endpoint ${o.endpoint}: must be a client URL such as https://127.0.0.1:2379`);
  }
  return {
    url: o.endpoint,
    ...(given === 3 ? { tls: { caFile: o.cacert!, certFile: o.cert!, keyFile: o.key! } } : {}),
  };
}

/**
 * Snapshot, seal, upload, verify (src/backup/backup.ts), then retention unless `expire` is
 * false: the timer's work without its output, shared by `etcd-backup now` and the node
 * agent's snapshot before a staged rollout (src/agent/presnap.ts). With `elect`, first the
 * conditional write of the interval's lease.
 * @returns the backup; undefined when another master holds the slot (`elect`)
 * @throws UserError for bad endpoint flags; IntegrityError (exit 4) when the snapshot or the
 *   verification after upload fails; PlatformError when etcd cannot be reached; S3/KMS errors
 */
export async function snapshotNow(
  opened: OpenedBackups,
  o: BackupNowFlags,
  source: (e: EtcdEndpoint) => SnapshotSource = gatewaySource,
): Promise<BackupResult | undefined> {
  const endpoint = endpointOf(o);
  const { hostname } = await import('node:os');
  const member = o.member ?? hostname();
  if (o.elect) {
    const slot = slotOf(Date.now(), opened.intervalMinutes * 60);
    if (!(await opened.store.claimSlot(slot, member))) {
      log.info(`slot ${slot}: another master takes this snapshot`);
      return undefined;
    }
  }
  const r = await takeBackup(opened.store, source(endpoint), { member });
  if (o.expire !== false) await expireBackups(opened.store, { policy: opened.policy });
  return r;
}

/**
 * `etcd-backup now`: {@link snapshotNow}, then the object key (or, with `json`, the key,
 * revision, size, digest and timings) on stdout. With `elect` the losers log and return 0.
 * @returns 0
 * @throws as {@link snapshotNow}
 */
export async function backupNow(
  opened: OpenedBackups,
  o: BackupNowFlags,
  source: (e: EtcdEndpoint) => SnapshotSource = gatewaySource,
): Promise<number> {
  const r = await snapshotNow(opened, { ...o, expire: false }, source);
  if (!r) return 0;
  const out = {
    key: r.key,
    revision: r.revision,
    bytes: r.meta.size,
    sha256: r.meta.sha256,
    ...r.timingsMs,
  };
  process.stdout.write(o.json ? `${JSON.stringify(out, null, 2)}\n` : `${r.key}\n`);
  if (o.expire !== false) await expireBackups(opened.store, { policy: opened.policy });
  return 0;
}

/** The node agent's `etcd-backup now` (node mode only). */
export async function nodeBackupNowCommand(o: NodeBackupFlags & BackupNowFlags): Promise<number> {
  const opened = await openNodeBackups(o);
  try {
    return await backupNow(opened, o);
  } finally {
    await opened.close();
  }
}

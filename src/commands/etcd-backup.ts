import { AwsClients, awsSettings } from '../aws/clients.js';
import { applyLocalEnv, ensureLocalAws } from '../aws/local.js';
import { expireBackups, slotOf, takeBackup } from '../backup/backup.js';
import type { EtcdEndpoint } from '../backup/etcdctl.js';
import { DEFAULT_RETENTION, planRetention, type RetentionPolicy } from '../backup/retention.js';
import { BackupStore } from '../backup/store.js';
import { openEnvironment } from '../context/environment.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { confirmOrAbort } from '../prompt.js';
import { KmsKeyService } from '../secrets/keyring.js';
import { printRows } from '../table.js';

/** Where the bucket is: operator mode (`-e`) or node mode (`--environment --bucket --region`). */
export interface BackupTarget {
  /** operator mode: environments/<env>.env */
  env?: string;
  local?: boolean;
  /** node mode: environment name (the encryption context) */
  environment?: string;
  bucket?: string;
  region?: string;
}

/** Options of `etcd-backup now`. */
export interface BackupNowOptions extends BackupTarget {
  /** the member's client URL @default https://127.0.0.1:2379 (on a master) */
  endpoint: string;
  /** CA, client certificate and key files; all three or none (plain http, tests) */
  cacert?: string;
  cert?: string;
  key?: string;
  /** member name recorded with the snapshot (object key) @default the host name */
  member?: string;
  /** the masters' timer: claim this interval's slot first, skip when another master holds it */
  elect?: boolean;
  /** false (--no-expire): do not apply retention after the snapshot */
  expire?: boolean;
  json?: boolean;
}

export interface BackupListOptions extends BackupTarget {
  json?: boolean;
}

export interface BackupExpireOptions extends BackupTarget {
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
}

interface Opened {
  store: BackupStore;
  policy: RetentionPolicy;
  intervalMinutes: number;
  close(): Promise<void>;
}

/**
 * Opens the backup store of an environment: from its environment file (operator mode) or
 * from --environment/--bucket/--region on a master (node mode; KMS key
 * `alias/kube-platform/<env>`, the retention of etcd-manager unless the environment file says otherwise).
 * @throws UserError when neither mode's flags are complete
 */
export async function openBackupStore(o: BackupTarget): Promise<Opened> {
  if (o.env) {
    const ctx = await openEnvironment({ env: o.env, local: o.local });
    const kmsKeyId = ctx.names.kmsAlias;
    const store = new BackupStore({
      s3: await ctx.aws.s3(),
      keys: new KmsKeyService(await ctx.aws.kms(), kmsKeyId),
      bucket: ctx.names.secretsBucket,
      environment: ctx.cfg.name,
      kmsKeyId,
    });
    const b = ctx.cfg.etcdBackup;
    return {
      store,
      policy: { keepAllS: b.keepAllS, hourlyS: b.hourlyS, dailyS: b.dailyS },
      intervalMinutes: b.intervalMinutes,
      close: () => ctx.close(),
    };
  }
  if (!o.environment || !o.bucket || !o.region) {
    throw new UserError('give -e ENV (operator) or --environment, --bucket and --region (on a master)');
  }
  const local = o.local ? await ensureLocalAws() : undefined;
  if (local) applyLocalEnv(local);
  const aws = new AwsClients(awsSettings(o.region));
  const kmsKeyId = `alias/kube-platform/${o.environment}`;
  return {
    store: new BackupStore({
      s3: await aws.s3(),
      keys: new KmsKeyService(await aws.kms(), kmsKeyId),
      bucket: o.bucket,
      environment: o.environment,
      kmsKeyId,
    }),
    policy: DEFAULT_RETENTION,
    intervalMinutes: 15,
    close: async () => {
      aws.destroy();
      await local?.stop();
    },
  };
}

function endpointOf(o: BackupNowOptions): EtcdEndpoint {
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
 * `etcd-backup now`: snapshot one member, seal, upload under backups/etcd/, verify the
 * upload, then apply retention. With `--elect` (the masters' timer) it first claims the
 * current interval's slot with a conditional write and does nothing when another master
 * holds it. Only adds objects (and deletes expired snapshots), so it does not ask.
 * @returns 0
 * @throws IntegrityError (exit 4) when the verification after upload fails
 */
export async function etcdBackupNowCommand(o: BackupNowOptions): Promise<number> {
  const endpoint = endpointOf(o);
  const { hostname } = await import('node:os');
  const member = o.member ?? hostname();
  const opened = await openBackupStore(o);
  try {
    if (o.elect) {
      const slot = slotOf(Date.now(), opened.intervalMinutes * 60);
      if (!(await opened.store.claimSlot(slot, member))) {
        log.info(`slot ${slot}: another master takes this snapshot`);
        return 0;
      }
    }
    const r = await takeBackup(opened.store, endpoint, { member });
    const out = {
      key: r.key,
      revision: r.status.revision,
      bytes: r.meta.size,
      sha256: r.meta.sha256,
      ...r.timingsMs,
    };
    process.stdout.write(o.json ? `${JSON.stringify(out, null, 2)}\n` : `${r.key}\n`);
    if (o.expire !== false) await expireBackups(opened.store, { policy: opened.policy });
    return 0;
  } finally {
    await opened.close();
  }
}

/** `etcd-backup list`: every snapshot, oldest first, with what retention will do to it. */
export async function etcdBackupListCommand(o: BackupListOptions): Promise<number> {
  const opened = await openBackupStore(o);
  try {
    const all = await opened.store.list();
    const now = Date.now();
    const plan = planRetention(all, now, opened.policy);
    const doomed = new Set(plan.delete.map((b) => b.key));
    const { default: pLimit } = await import('p-limit');
    const limit = pLimit(16);
    const rows = await Promise.all(
      all.map((b) =>
        limit(async () => {
          const m = await opened.store.head(b.key);
          return {
            key: b.key,
            takenAt: new Date(b.takenAtMs).toISOString(),
            ageMinutes: Math.round((now - b.takenAtMs) / 60_000),
            member: b.member,
            revision: m.revision,
            bytes: m.size,
            sha256: m.sha256,
            retention: doomed.has(b.key) ? 'expires' : 'kept',
          };
        }),
      ),
    );
    await printRows(
      rows,
      [
        { title: 'Snapshot', cell: (r) => r.key },
        { title: 'Taken', cell: (r) => r.takenAt },
        { title: 'Age (min)', cell: (r) => r.ageMinutes },
        { title: 'Member', cell: (r) => r.member },
        { title: 'Revision', cell: (r) => r.revision },
        { title: 'Bytes', cell: (r) => r.bytes },
        { title: 'Retention', cell: (r) => r.retention },
      ],
      o.json,
    );
    const newest = all.at(-1);
    if (!newest) log.warn('no etcd snapshot in the bucket');
    else log.info(`newest snapshot is ${Math.round((now - newest.takenAtMs) / 60_000)} min old`);
    return 0;
  } finally {
    await opened.close();
  }
}

/** `etcd-backup expire`: shows what retention deletes, asks (or --yes), deletes. */
export async function etcdBackupExpireCommand(o: BackupExpireOptions): Promise<number> {
  const opened = await openBackupStore(o);
  try {
    const plan = await expireBackups(opened.store, { policy: opened.policy, dryRun: true });
    if (o.json)
      process.stdout.write(
        `${JSON.stringify({ keep: plan.keep.map((b) => b.key), delete: plan.delete.map((b) => b.key) }, null, 2)}\n`,
      );
    else for (const b of plan.delete) process.stdout.write(`- ${b.key}\n`);
    log.info(`${plan.keep.length} kept, ${plan.delete.length} to delete`);
    if (o.dryRun || plan.delete.length === 0) return 0;
    if (!o.yes)
      await confirmOrAbort(`delete ${plan.delete.length} snapshots?`, 'pass --yes to delete without asking');
    await opened.store.remove(plan.delete.map((b) => b.key));
    return 0;
  } finally {
    await opened.close();
  }
}

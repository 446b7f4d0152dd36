import { ensureLocalAws } from '../aws/local.js';
import { expireBackups } from '../backup/backup.js';
import { etcdctlSource } from '../backup/etcdctl.js';
import {
  type BackupNowFlags,
  backupNow,
  endpointOf,
  type NodeBackupFlags,
  type OpenedBackups,
  openNodeBackups,
} from '../backup/node-command.js';
import { planRetention } from '../backup/retention.js';
import type { CommandContext } from '../context/command.js';
import { backupStore } from '../context/environment.js';
import { log } from '../log.js';
import { confirmOrAbort } from '../prompt.js';
import { printRows } from '../table.js';

/** Where the bucket is: operator mode (`-e`) or node mode (`--environment --bucket --region`). */
export interface BackupTarget extends NodeBackupFlags {
  /** operator mode: environments/<env>.env */
  env?: string;
  local?: boolean;
}

export interface BackupNowOptions extends BackupTarget, BackupNowFlags {}

export interface BackupListOptions extends BackupTarget {
  json?: boolean;
}

export interface BackupExpireOptions extends BackupTarget {
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
}

/**
 * Opens the backup store of an environment: from its environment file (operator mode:
 * interval and retention from its `ETCD_BACKUP_*` keys) or from node-mode flags
 * ({@link openNodeBackups}); `--local` points either at the embedded local AWS.
 * @throws UserError when neither mode's flags are complete
 */
export async function openBackupStore(o: BackupTarget, context: CommandContext): Promise<OpenedBackups> {
  if (o.env) {
    const ctx = await context.openEnvironment({ env: o.env, local: o.local });
    const store = await backupStore(ctx);
    const b = ctx.cfg.etcdBackup;
    return {
      store,
      policy: { keepAllS: b.keepAllS, hourlyS: b.hourlyS, dailyS: b.dailyS },
      intervalMinutes: b.intervalMinutes,
      close: () => ctx.close(),
    };
  }
  const local = o.local ? await ensureLocalAws() : undefined;
  try {
    const opened = await openNodeBackups(o, local);
    return {
      ...opened,
      close: async () => {
        await opened.close();
        await local?.stop();
      },
    };
  } catch (e) {
    await local?.stop();
    throw e;
  }
}

/**
 * `etcd-backup now`: snapshot one member, seal, upload under backups/etcd/, verify the
 * upload, then apply retention ({@link backupNow}). Only adds objects (and deletes expired
 * snapshots, as the timer does every interval), so it does not ask.
 * @returns 0
 * @throws IntegrityError (exit 4) when the verification after upload fails
 */
export async function etcdBackupNowCommand(o: BackupNowOptions, context: CommandContext): Promise<number> {
  endpointOf(o);
  const opened = await openBackupStore(o, context);
  try {
    return await backupNow(opened, o, etcdctlSource);
  } finally {
    await opened.close();
  }
}

/** `etcd-backup list`: every snapshot, oldest first, with what retention will do to it. */
export async function etcdBackupListCommand(o: BackupListOptions, context: CommandContext): Promise<number> {
  const opened = await openBackupStore(o, context);
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
      context.stdout,
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
export async function etcdBackupExpireCommand(
  o: BackupExpireOptions,
  context: CommandContext,
): Promise<number> {
  const opened = await openBackupStore(o, context);
  try {
    const plan = await expireBackups(opened.store, { policy: opened.policy, dryRun: true });
    if (o.json)
      context.stdout.write(
        `${JSON.stringify({ keep: plan.keep.map((b) => b.key), delete: plan.delete.map((b) => b.key) }, null, 2)}\n`,
      );
    else for (const b of plan.delete) context.stdout.write(`- ${b.key}\n`);
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

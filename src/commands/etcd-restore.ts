import type { RestoreMember } from '../backup/etcdctl.js';
import { dryRunRestore, restoreMember } from '../backup/restore.js';
import type { CommandContext } from '../context/command.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { typeBackOrAbort } from '../prompt.js';
import { type BackupTarget, openBackupStore } from './etcd-backup.js';

/** Options of `etcd-restore`. */
export interface EtcdRestoreOptions extends BackupTarget {
  /** object key under backups/etcd/, or `latest` */
  snapshot: string;
  /** download, verify, restore into a scratch directory on loopback and count the keys */
  dryRun?: boolean;
  /** the member this host restores (real restore) */
  member?: string;
  /** the new cluster, `name=peerURL,...` — the same on every member */
  initialCluster?: string;
  /** the new cluster token — the same on every member */
  token?: string;
  /** the new data directory (must not exist) */
  dataDir?: string;
  yes?: boolean;
  /** with --yes: the environment name typed back */
  confirm?: string;
  json?: boolean;
}

/** Parses `name=url,name=url`. @throws UserError naming the bad entry */
export function parseInitialCluster(s: string): RestoreMember[] {
  const out = s.split(',').map((e) => {
    const m = /^([A-Za-z0-9._-]{1,64})=(https?:\/\/[^\s,=]+)$/.exec(e.trim());
    if (!m) throw new UserError(`--initial-cluster: "${e}" is not name=https://host:2380`);
    return { name: m[1]!, peerUrl: m[2]! };
  });
  if (new Set(out.map((m) => m.name)).size !== out.length)
    throw new UserError('--initial-cluster names a member twice');
  return out;
}

/**
 * `etcd-restore`: with `--dry-run`, verifies a snapshot end to end and reports its revision
 * and key count, changing nothing; otherwise restores it into a new data directory as one
 * member of a new cluster (run on every master with the same snapshot, `--initial-cluster`
 * and `--token`; README "Restoring etcd"), after the environment name is typed back.
 * @returns 0
 * @throws IntegrityError (exit 4) for a corrupted or foreign snapshot; UserError (exit 2) for
 *   bad flags; AbortError (exit 130) when the name typed back differs
 */
export async function etcdRestoreCommand(o: EtcdRestoreOptions, context: CommandContext): Promise<number> {
  const envName = o.env ?? o.environment ?? '';
  let real: { member: RestoreMember; cluster: RestoreMember[]; token: string; dataDir: string } | undefined;
  if (!o.dryRun) {
    if (!o.member || !o.initialCluster || !o.token || !o.dataDir) {
      throw new UserError(
        'a restore needs --member, --initial-cluster, --token and --data-dir (or --dry-run)',
      );
    }
    const cluster = parseInitialCluster(o.initialCluster);
    const member = cluster.find((m) => m.name === o.member);
    if (!member) throw new UserError(`--member ${o.member} is not in --initial-cluster`);
    if (!/^[A-Za-z0-9._-]{8,128}$/.test(o.token))
      throw new UserError('--token: 8-128 characters of [A-Za-z0-9._-]');
    real = { member, cluster, token: o.token, dataDir: o.dataDir };
    if (o.yes) {
      if (o.confirm !== envName)
        throw new UserError(`--yes needs --confirm ${envName} (the environment name)`);
    }
  }
  const opened = await openBackupStore(o, context);
  try {
    let key = o.snapshot;
    if (key === 'latest') {
      const newest = (await opened.store.list()).at(-1);
      if (!newest) throw new UserError('there is no snapshot under backups/etcd/');
      key = newest.key;
    }
    if (!real) {
      const r = await dryRunRestore(opened.store, key);
      const out = {
        snapshot: key,
        revision: r.status.revision,
        keys: r.keys,
        bytes: r.meta.size,
        sha256: r.meta.sha256,
      };
      context.stdout.write(
        o.json
          ? `${JSON.stringify(out, null, 2)}\n`
          : `${key}: revision ${out.revision}, ${out.keys} keys, ${out.bytes} bytes, verified\n`,
      );
      log.info('dry run: restored into a scratch directory and removed; nothing else was touched');
      return 0;
    }
    if (!o.yes) {
      await typeBackOrAbort(
        `restore ${key} into ${real.dataDir} as member ${real.member.name} of a new cluster of ${envName}? type the environment name`,
        envName,
        `pass --yes --confirm ${envName}`,
      );
    }
    const r = await restoreMember(opened.store, key, real);
    context.stdout.write(
      `${real.dataDir}: ${key} restored (revision ${r.status.revision}) as ${real.member.name}, cluster token ${real.token}\n`,
    );
    log.info(
      'start every member on its new data directory together with --initial-cluster-state=new (README "Restoring etcd")',
    );
    return 0;
  } finally {
    await opened.close();
  }
}

import { Argument, Option } from 'commander';
import { configureBackupNowFlags, configureNodeModeBackupFlags } from '../../backup/flags.js';
import type { BackupExpireOptions, BackupListOptions, BackupNowOptions } from '../../commands/etcd-backup.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** Node mode flags (on a master, where there is no environment file). */
export const nodeModeOptions = configureNodeModeBackupFlags;

/** `-e` is optional here: node mode names the bucket instead. */
export function optionalEnv(): Option {
  const o = envOption();
  o.mandatory = false;
  return o;
}

/** `etcd-backup list|now|expire`: snapshots of etcd under backups/etcd/ in the secrets bucket. */
/** What the three actions take together (each reads its own fields). */
type EtcdBackupOptions = BackupNowOptions &
  BackupListOptions &
  BackupExpireOptions & { action: EtcdBackupAction };
type EtcdBackupAction = 'list' | 'now' | 'expire';

export const etcdBackupSpec = defineCommand<
  EtcdBackupOptions,
  Omit<EtcdBackupOptions, 'action'>,
  [EtcdBackupAction]
>({
  name: 'etcd-backup',
  summary: 'etcd snapshots in the secrets bucket: list | now (snapshot, seal, upload, verify) | expire',
  configure: (c) =>
    configureBackupNowFlags(
      nodeModeOptions(
        c
          .addArgument(new Argument('<action>', 'list, now or expire').choices(['list', 'now', 'expire']))
          .addOption(optionalEnv())
          .addOption(localOption()),
      ),
    )
      .addOption(new Option('--dry-run', 'expire: show what would be deleted'))
      .addOption(new Option('--yes', 'expire: delete without asking')),
  normalize: (flags, [action]) => ({ ...flags, action }),
  handler: async () => {
    const m = await import('../../commands/etcd-backup.js');
    return async (o, context) => {
      if (o.action === 'list') return m.etcdBackupListCommand(o, context);
      if (o.action === 'now') return m.etcdBackupNowCommand(o, context);
      return m.etcdBackupExpireCommand(o, context);
    };
  },
  example: [
    'etcd-backup list -e prod',
    'etcd-backup expire -e prod --dry-run',
    'etcd-backup now --environment prod --bucket B --region eu-west-1 --cacert ca.crt --cert c.crt --key c.key --elect',
  ],
  exitCodes: [
    ...STD_EXIT,
    '4 integrity: the snapshot read back after upload did not verify',
    '130 declined at the prompt (expire)',
  ],
});

import { Option } from 'commander';
import type { EtcdRestoreOptions } from '../../commands/etcd-restore.js';
import { defineCommand, localOption, STD_EXIT } from '../common.js';
import { nodeModeOptions, optionalEnv } from './etcd-backup.js';

/** `etcd-restore SNAPSHOT --dry-run | --member ... --initial-cluster ... --token ... --data-dir ...`. */
export const etcdRestoreSpec = defineCommand<
  EtcdRestoreOptions,
  Omit<EtcdRestoreOptions, 'snapshot'>,
  [string]
>({
  name: 'etcd-restore',
  summary:
    'verify an etcd snapshot (--dry-run: restore into a scratch directory, count keys) or restore a member',
  configure: (c) =>
    nodeModeOptions(
      c
        .argument('<snapshot>', 'object key under backups/etcd/ (etcd-backup list), or "latest"')
        .addOption(optionalEnv())
        .addOption(localOption()),
    )
      .addOption(
        new Option('--dry-run', 'download, verify, restore into a scratch dir, report revision and keys'),
      )
      .addOption(new Option('--member <name>', 'restore: the member this host becomes'))
      .addOption(new Option('--initial-cluster <list>', 'restore: name=peerURL,... of the new cluster'))
      .addOption(new Option('--token <token>', 'restore: the new cluster token (the same on every member)'))
      .addOption(new Option('--data-dir <dir>', 'restore: the new data directory (must not exist)'))
      .addOption(new Option('--yes', 'restore without asking (needs --confirm ENV)'))
      .addOption(new Option('--confirm <env>', 'the environment name, typed back (with --yes)'))
      .addOption(new Option('--json', 'print JSON (dry run)')),
  normalize: (flags, [snapshot]) => ({ ...flags, snapshot }),
  handler: async () => (await import('../../commands/etcd-restore.js')).etcdRestoreCommand,
  example: [
    'etcd-restore -e prod latest --dry-run',
    'etcd-restore --environment prod --bucket B --region eu-west-1 backups/etcd/20261201T220000.000Z-etcd-a.db --member etcd-a --initial-cluster etcd-a=https://10.80.10.10:2380,... --token kp-restore-1 --data-dir /var/lib/etcd/restored',
  ],
  exitCodes: [
    ...STD_EXIT,
    '4 integrity: the snapshot is corrupted, tampered with or from another environment; nothing restored',
    '130 the environment name typed back did not match',
  ],
});

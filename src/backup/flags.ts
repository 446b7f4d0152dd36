import { type Command, Option } from 'commander';

/**
 * The flags of `etcd-backup`, shared by the toolkit's spec (src/cli/specs/etcd-backup.ts)
 * and the node agent's bundle (src/agent/main.ts, the masters' timer), which must not
 * reach src/cli/.
 */

/** Node mode: on a master, where there is no environment file. */
export function configureNodeModeBackupFlags(c: Command): Command {
  return c
    .addOption(new Option('--environment <name>', 'node mode: environment name (with --bucket and --region)'))
    .addOption(new Option('--bucket <name>', 'node mode: the secrets bucket'))
    .addOption(new Option('--region <region>', 'node mode: AWS region'))
    .addOption(
      new Option('--interval-minutes <n>', 'node mode: minutes per backup slot (--elect)').default('15'),
    )
    .addOption(
      new Option('--keep-all-hours <n>', 'node mode: keep every snapshot this many hours').default('1'),
    )
    .addOption(new Option('--hourly-days <n>', 'node mode: then one per hour this many days').default('7'))
    .addOption(new Option('--daily-days <n>', 'node mode: then one per day this many days').default('90'));
}

/** The flags of `etcd-backup now`. */
export function configureBackupNowFlags(c: Command): Command {
  return c
    .addOption(new Option('--endpoint <url>', 'now: the member client URL').default('https://127.0.0.1:2379'))
    .addOption(new Option('--cacert <file>', 'now: CA bundle of the member'))
    .addOption(new Option('--cert <file>', 'now: client certificate'))
    .addOption(new Option('--key <file>', 'now: client key'))
    .addOption(
      new Option('--member <name>', 'now: member name recorded with the snapshot (default: host name)'),
    )
    .addOption(
      new Option('--elect', 'now: claim this interval’s slot first; skip if another master holds it'),
    )
    .addOption(new Option('--no-expire', 'now: do not apply retention afterwards'))
    .addOption(new Option('--json', 'print JSON'));
}

import { type Command, Option } from 'commander';
import { seconds } from '../args.js';

/**
 * The node agent's flags (`manifest-sync` in node mode), shared by the agent's single-file
 * bundle (src/agent/main.ts) and the toolkit CLI's `manifest-sync` (src/cli/specs/
 * manifest-sync.ts), which adds the operator mode (`-e ENV`, `--local`) on top.
 */

export const AGENT_SUMMARY =
  "node agent: keep kubelet's staticPodPath (and /etc/kubernetes) in step with layers of the secrets bucket";

/** Adds the node-mode flags to `c` (`--environment`, `--bucket`, `--region`, ...). */
export function configureNodeModeFlags(c: Command): Command {
  return c
    .addOption(new Option('--environment <name>', 'node mode: environment name (with --bucket and --region)'))
    .addOption(new Option('--bucket <name>', 'node mode: the secrets bucket'))
    .addOption(new Option('--region <region>', 'node mode: AWS region'));
}

/** Adds the flags of what the agent does (`--layer`, `--dest`, `--once`, ...) to `c`. */
export function configureAgentFlags(c: Command): Command {
  return c
    .addOption(
      new Option('--layer <layer...>', 'layers to sync')
        .choices(['common', 'secure', 'compute', 'locked'])
        .default(['secure']),
    )
    .addOption(
      new Option('--dest <dir>', "where manifests/ go (kubelet's staticPodPath)").default(
        '/etc/kubernetes/manifests',
      ),
    )
    .addOption(
      new Option(
        '--root <dir>',
        'where other files go (pki/, kubeconfigs); default /etc/kubernetes unless --dest is redirected',
      ),
    )
    .addOption(
      new Option(
        '--state-dir <dir>',
        'where the agent remembers what it applied (default /var/lib/kube-platform, or beside a redirected --dest)',
      ),
    )
    .addOption(
      new Option('--interval <seconds>', 'seconds between index polls')
        .argParser(seconds(0.1, 3600))
        .default(1),
    )
    .addOption(
      new Option('--heartbeat <seconds>', 'seconds between status reports while nothing changes')
        .argParser(seconds(1, 86_400))
        .default(60),
    )
    .addOption(
      new Option(
        '--node-id <id>',
        'id to report status/<layer>/<id> under (default in node mode: the instance id from IMDSv2)',
      ),
    )
    .addOption(new Option('--no-status', 'write no status report to the bucket'))
    .addOption(
      new Option('--log-format <format>', 'stderr log lines: text, or json for machines')
        .choices(['text', 'json'])
        .default('text'),
    )
    .addOption(new Option('--once', 'one pass, then exit'))
    .addOption(
      new Option(
        '--etcd-endpoint <url>',
        'masters: the local etcd member’s client URL; the first master of a staged secure rollout snapshots it to backups/etcd/ before taking the target (none without this flag)',
      ).env('KP_ETCD_ENDPOINT'),
    )
    .addOption(
      new Option('--etcd-cacert <file>', 'with --etcd-endpoint: CA of the member').env('KP_ETCD_CACERT'),
    )
    .addOption(
      new Option('--etcd-cert <file>', 'with --etcd-endpoint: client certificate').env('KP_ETCD_CERT'),
    )
    .addOption(new Option('--etcd-key <file>', 'with --etcd-endpoint: client key').env('KP_ETCD_KEY'))
    .addOption(
      new Option(
        '--etcd-member <name>',
        'with --etcd-endpoint: member name recorded with the snapshot (default: host name)',
      ).env('KP_ETCD_MEMBER'),
    );
}

export const AGENT_EXAMPLES = [
  'manifest-sync -e prod --once --dest /tmp/manifests',
  'manifest-sync --environment prod --bucket BUCKET --region eu-west-1 --layer common secure',
];

export const AGENT_EXIT_CODES = [
  '0 success (also on SIGTERM/SIGINT)',
  '1 unexpected failure',
  '2 bad input (flag, value)',
  '4 integrity (--once): the index or an object failed verification (tampered, moved, rolled back), or a manifest was refused',
];

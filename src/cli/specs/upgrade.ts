import { Option } from 'commander';
import type { UpgradeOptions } from '../../commands/upgrade.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/**
 * `upgrade --to vX.Y.Z`: in-place Kubernetes upgrade (src/upgrade/): the version-skew
 * preflight and the plan, one confirmation, then the phases; the handler is
 * src/commands/upgrade.ts.
 */
export const upgradeSpec = defineCommand<UpgradeOptions>({
  name: 'upgrade',
  summary:
    'upgrade Kubernetes in place: preflight, etcd snapshot, etcd, API servers, controllers (staged rollouts), then roll compute',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(
        new Option('--to <version>', 'target Kubernetes release, e.g. v1.35.0').makeOptionMandatory(),
      )
      .addOption(
        new Option('--etcd <version>', "target etcd release (default: the environment's ETCD_VERSION)"),
      )
      .addOption(
        new Option('--kubeconfig <file>', 'default secrets/<env>/locked/admin.conf, else the bucket’s'),
      )
      .addOption(new Option('--plan', 'show the preflight and the phases; change nothing'))
      .addOption(new Option('--json', 'print the preflight and the plan as JSON'))
      .addOption(new Option('--yes', 'do not ask (outside play-* also --confirm ENV)'))
      .addOption(new Option('--confirm <env>', 'the environment name, typed back, for scripts'))
      .addOption(
        new Option(
          '--skip-terraform',
          'workers: do not apply Terraform (their launch template already installs the target kubelet)',
        ),
      )
      .addOption(
        new Option(
          '--etcd-endpoint <url>',
          'etcd member the snapshot is taken from (default: https://127.0.0.1:2379, on a master)',
        ).conflicts('etcdViaBastion'),
      )
      .addOption(
        new Option(
          '--etcd-via-bastion',
          'take the snapshot through an ssh tunnel through bastion-<env> to one member (needs agent-setup -e ENV)',
        ).conflicts('etcdEndpoint'),
      )
      .addOption(new Option('--etcd-cacert <file>', 'its CA (default: secrets/<env>/secure/pki/etcd/ca.crt)'))
      .addOption(
        new Option(
          '--etcd-cert <file>',
          'client certificate (default: secrets/<env>/secure/pki/apiserver-etcd-client.crt)',
        ),
      )
      .addOption(new Option('--etcd-key <file>', 'client key (default: the certificate’s .key)'))
      .addOption(
        new Option('--rollout-timeout <seconds>', 'seconds each master may take to report healthy').default(
          '300',
        ),
      )
      .addOption(
        new Option('--validate-timeout <seconds>', 'how long each validation may wait').default('900'),
      )
      .addOption(
        new Option('--validate-interval <seconds>', 'seconds between the two validations').default('10'),
      )
      .addOption(
        new Option('--replace-timeout <seconds>', 'workers: how long to wait for each replacement').default(
          '900',
        ),
      )
      .addOption(new Option('--drain-timeout <seconds>', 'workers: how long a drain may take').default('900'))
      .addOption(new Option('--poll <seconds>', 'seconds between polls while waiting').default('5'))
      .addOption(new Option('--allow-downgrade', 'act on a cluster state written by a newer toolkit')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/upgrade.js')).upgradeCommand,
  example: [
    'upgrade -e prod --to v1.35.0 --plan',
    'upgrade -e prod --to v1.35.0 --etcd v3.6.5 --plan --json',
    'upgrade -e prod --to v1.35.0 --yes --confirm prod --etcd-via-bastion',
  ],
  exitCodes: [
    ...STD_EXIT.slice(0, 2),
    '2 bad input, or the preflight refused the target (each rule named with its source), or no TTY without --yes',
    '3 conflict: another upgrade or operation in progress, a rollout not ended, a secure layer with other changes, or the tunnel through the bastion did not open (--etcd-via-bastion)',
    '5 a drain, a replacement or a validation timed out (roll compute)',
    '130 declined, or interrupted (the journal is kept: run upgrade again to resume)',
  ],
});

import { Option } from 'commander';
import type { UpgradeOptions } from '../../commands/upgrade.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** `upgrade --to vX.Y.Z --plan`: the version-skew preflight of an in-place upgrade (src/upgrade/). */
export const upgradeSpec = defineCommand<UpgradeOptions>({
  name: 'upgrade',
  summary: 'Kubernetes upgrade preflight (--plan): the version-skew policy against what the cluster runs',
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
      .addOption(new Option('--plan', 'run the preflight only (required in this release)'))
      .addOption(new Option('--json', 'print the findings as JSON')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/upgrade.js')).upgradeCommand,
  example: [
    'upgrade -e prod --to v1.35.0 --plan',
    'upgrade -e prod --to v1.35.0 --etcd v3.6.5 --plan --json',
  ],
  exitCodes: [
    ...STD_EXIT.slice(0, 2),
    '2 bad input, or the preflight refused the target (each rule named with its source)',
  ],
});

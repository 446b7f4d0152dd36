import { Option } from 'commander';
import type { SyncStatusOptions } from '../../commands/sync-status.js';
import { defineCommand, envOption, localOption, STD_EXIT, secondsArg } from '../common.js';

/**
 * `sync-status`: which generation each node's manifest-sync agent applied, per layer, from
 * the inventory and the agents' status reports; `--wait` waits for convergence.
 */
export const syncStatusSpec = defineCommand<SyncStatusOptions>({
  name: 'sync-status',
  summary:
    "each node's manifest-sync: generation applied, age of its last report, error; --wait for convergence",
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(
        new Option('--layer <layer...>', 'layers to report (default: common, secure, compute)').choices([
          'common',
          'secure',
          'compute',
          'locked',
        ]),
      )
      .addOption(new Option('--json', 'print JSON (one row per instance and layer)'))
      .addOption(new Option('--wait', "wait until every instance applied its layer's current generation"))
      .addOption(
        new Option('--timeout <seconds>', 'how long --wait waits, in total')
          .argParser(secondsArg(1, 86_400))
          .default(120),
      ),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/sync-status.js')).syncStatusCommand,
  example: ['sync-status -e prod', 'sync-status -e prod --layer secure --wait --timeout 60'],
  exitCodes: [
    ...STD_EXIT,
    '5 --wait timed out: the instances that did not converge are named with their reason',
  ],
});

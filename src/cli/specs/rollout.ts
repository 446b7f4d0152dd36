import { Argument, Option } from 'commander';
import type { RolloutOptions } from '../../commands/rollout.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** `rollout status|resume|abort`: the staged rollout of a layer (src/secrets/rollout.ts). */
export const rolloutSpec = defineCommand<
  RolloutOptions,
  Omit<RolloutOptions, 'action'>,
  [RolloutOptions['action']]
>({
  name: 'rollout',
  summary:
    'staged control-plane rollout: status | resume (promote master by master) | abort (back to the previous generation)',
  configure: (c) =>
    c
      .addArgument(new Argument('<action>', 'status, resume or abort').choices(['status', 'resume', 'abort']))
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--layer <layer>', 'the layer').choices(['secure']).default('secure'))
      .addOption(
        new Option('--timeout <seconds>', 'resume: how long each master may take to report healthy').default(
          '300',
        ),
      )
      .addOption(new Option('--yes', 'abort: do not ask'))
      .addOption(new Option('--json', 'status: print the rollout record as JSON')),
  normalize: (flags, [action]) => ({ ...flags, action }),
  handler: async () => (await import('../../commands/rollout.js')).rolloutCommand,
  example: ['rollout status -e prod', 'rollout resume -e prod --timeout 600', 'rollout abort -e prod'],
  exitCodes: [
    ...STD_EXIT,
    '1 resume: a master did not report healthy in time (named with its error); the others stay on the previous generation',
    '3 conflict: the rollout record changed meanwhile',
    '130 abort declined at the prompt',
  ],
});

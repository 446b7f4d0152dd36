import { Argument, Option } from 'commander';
import type { ScaleComputeOptions } from '../../commands/scale-compute.js';
import { defineCommand, envOption, localOption, STD_EXIT, wholeNumber } from '../common.js';

/** The `scale-compute` command's flags; the handler is src/commands/scale-compute.ts, imported when it runs. */
export const scaleComputeSpec = defineCommand<
  ScaleComputeOptions,
  Omit<ScaleComputeOptions, 'count'>,
  [number]
>({
  name: 'scale-compute',
  summary: 'set the number of workers (the desired capacity of the worker ASG)',
  configure: (c) =>
    c
      .addArgument(
        new Argument('<count>', 'desired number of workers, within the ASG bounds').argParser(wholeNumber),
      )
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--yes', 'do not ask')),
  normalize: (flags, [count]) => ({ ...flags, count }),
  handler: async () => (await import('../../commands/scale-compute.js')).scaleComputeCommand,
  example: ['scale-compute -e prod 6'],
  exitCodes: [...STD_EXIT, '130 declined at the prompt'],
});

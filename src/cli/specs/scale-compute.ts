import { Option } from 'commander';
import { type CommandSpec, envOption, localOption, STD_EXIT } from '../common.js';

/** The `scale-compute` command's flags; the handler is src/commands/scale-compute.ts, imported when it runs. */
export const scaleComputeSpec: CommandSpec = {
  name: 'scale-compute',
  summary: 'set the number of workers (the desired capacity of the worker ASG)',
  configure: (c) =>
    c
      .argument('<count>', 'desired number of workers, within the ASG bounds')
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--yes', 'do not ask')),
  run: async (o, args) =>
    (await import('../../commands/scale-compute.js')).scaleComputeCommand({
      ...(o as never as object),
      count: args[0] ?? '',
    } as never),
  example: ['scale-compute -e prod 6'],
  exitCodes: [...STD_EXIT, '130 declined at the prompt'],
};

import { Option } from 'commander';
import { type CommandSpec, envOption, localOption, STD_EXIT, secondsArg } from '../common.js';

/** The `run` command's flags; the handler is src/commands/run.ts, imported when it runs. */
export const runSpec: CommandSpec = {
  name: 'run',
  summary: 'bootstrap, render and publish manifests, then plan and apply the platform Terraform',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--yes', 'apply without asking').conflicts('plan'))
      .addOption(new Option('--plan', 'stop after showing the plan'))
      .addOption(new Option('--skip-terraform', 'bootstrap, render and publish only'))
      .addOption(
        new Option(
          '--wait',
          "after publishing, wait until every master's manifest-sync applied the new generation",
        ),
      )
      .addOption(
        new Option('--wait-timeout <seconds>', 'how long --wait waits')
          .argParser(secondsArg(1, 86_400))
          .default(300),
      ),
  run: async (o) => (await import('../../commands/run.js')).runCommand(o as never),
  example: ['run -e prod --plan', 'run -e play-alice --yes', 'run -e prod --yes --wait'],
  exitCodes: [
    ...STD_EXIT,
    '3 conflict: another publish won',
    '5 --wait timed out: not every master converged (named)',
    '130 declined at the prompt',
  ],
};

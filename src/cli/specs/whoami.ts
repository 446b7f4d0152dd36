import { Option } from 'commander';
import { type CommandSpec, envOption, localOption, STD_EXIT } from '../common.js';

/** The `whoami` command's flags; the handler is src/commands/whoami.ts, imported when it runs. */
export const whoamiSpec: CommandSpec = {
  name: 'whoami',
  summary: 'the AWS identity the environment commands act as: account and ARN',
  configure: (c) =>
    c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
  run: async (o) => (await import('../../commands/whoami.js')).whoamiCommand(o as never),
  example: ['whoami -e prod'],
  exitCodes: STD_EXIT,
};

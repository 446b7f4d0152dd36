import { Option } from 'commander';
import type { WhoamiOptions } from '../../commands/whoami.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** The `whoami` command's flags; the handler is src/commands/whoami.ts, imported when it runs. */
export const whoamiSpec = defineCommand<WhoamiOptions>({
  name: 'whoami',
  summary: 'the AWS identity the environment commands act as: account and ARN',
  configure: (c) =>
    c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/whoami.js')).whoamiCommand,
  example: ['whoami -e prod'],
  exitCodes: STD_EXIT,
});

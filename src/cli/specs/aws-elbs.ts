import { Option } from 'commander';
import type { InventoryOptions } from '../../commands/aws-instances.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** The `aws-elbs` command's flags; the handler is src/commands/aws-elbs.ts, imported when it runs. */
export const awsElbsSpec = defineCommand<InventoryOptions>({
  name: 'aws-elbs',
  summary: "the environment's load balancers: name, DNS name, type, scheme, state",
  configure: (c) =>
    c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/aws-elbs.js')).awsElbsCommand,
  example: ['aws-elbs -e prod'],
  exitCodes: STD_EXIT,
});

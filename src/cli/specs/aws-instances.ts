import { Option } from 'commander';
import type { InventoryOptions } from '../../commands/aws-instances.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** The `aws-instances` command's flags; the handler is src/commands/aws-instances.ts, imported when it runs. */
export const awsInstancesSpec = defineCommand<InventoryOptions>({
  name: 'aws-instances',
  summary: "the environment's instances: Name, private IP, public IP, instance id, state, AZ",
  configure: (c) =>
    c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/aws-instances.js')).awsInstancesCommand,
  example: ['aws-instances -e prod', 'aws-instances -e prod --json | jq -r ".[].privateIp"'],
  exitCodes: STD_EXIT,
});

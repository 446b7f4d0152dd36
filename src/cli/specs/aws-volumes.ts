import { Option } from 'commander';
import type { InventoryOptions } from '../../commands/aws-instances.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** The `aws-volumes` command's flags; the handler is src/commands/aws-volumes.ts, imported when it runs. */
export const awsVolumesSpec = defineCommand<InventoryOptions>({
  name: 'aws-volumes',
  summary: "the environment's EBS volumes: name, id, size, type, state, AZ, attachment",
  configure: (c) =>
    c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/aws-volumes.js')).awsVolumesCommand,
  example: ['aws-volumes -e prod --json'],
  exitCodes: STD_EXIT,
});

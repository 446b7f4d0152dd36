import { Option } from 'commander';
import { type CommandSpec, envOption, localOption, STD_EXIT } from '../common.js';

/** The `aws-instances` command's flags; the handler is src/commands/aws-instances.ts, imported when it runs. */
export const awsInstancesSpec: CommandSpec = {
  name: 'aws-instances',
  summary: "the environment's instances: Name, private IP, public IP, instance id, state, AZ",
  configure: (c) =>
    c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
  run: async (o) => (await import('../../commands/aws-instances.js')).awsInstancesCommand(o as never),
  example: ['aws-instances -e prod', 'aws-instances -e prod --json | jq -r ".[].privateIp"'],
  exitCodes: STD_EXIT,
};

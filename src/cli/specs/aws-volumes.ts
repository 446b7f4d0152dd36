import { Option } from 'commander';
import { type CommandSpec, envOption, localOption, STD_EXIT } from '../common.js';

/** The `aws-volumes` command's flags; the handler is src/commands/aws-volumes.ts, imported when it runs. */
export const awsVolumesSpec: CommandSpec = {
  name: 'aws-volumes',
  summary: "the environment's EBS volumes: name, id, size, type, state, AZ, attachment",
  configure: (c) =>
    c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
  run: async (o) => (await import('../../commands/aws-volumes.js')).awsVolumesCommand(o as never),
  example: ['aws-volumes -e prod --json'],
  exitCodes: STD_EXIT,
};

import { type CommandSpec, STD_EXIT } from '../common.js';

/** The `local-aws` command's flags; the handler is src/commands/local-aws.ts, imported when it runs. */
export const localAwsSpec: CommandSpec = {
  name: 'local-aws',
  summary: 'manage the embedded local AWS (moto_server): start | stop | env',
  configure: (c) =>
    c.argument('<action>', 'start (persistent), stop, or env (print export lines, starting one if needed)'),
  run: async (_o, args) => (await import('../../commands/local-aws.js')).localAwsCommand(args[0] ?? ''),
  example: ['eval "$(local-aws env)"', 'local-aws stop'],
  exitCodes: STD_EXIT,
};

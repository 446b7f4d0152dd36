import { Argument } from 'commander';
import type { LocalAwsOptions } from '../../commands/local-aws.js';
import { defineCommand, STD_EXIT } from '../common.js';

/** The `local-aws` command's flags; the handler is src/commands/local-aws.ts, imported when it runs. */
export const localAwsSpec = defineCommand<LocalAwsOptions, object, [LocalAwsOptions['action']]>({
  name: 'local-aws',
  summary: 'manage the embedded local AWS (moto_server): start | stop | env',
  configure: (c) =>
    c.addArgument(
      new Argument(
        '<action>',
        'start (persistent), stop, or env (print export lines, starting one if needed)',
      ).choices(['start', 'stop', 'env']),
    ),
  normalize: (_flags, [action]) => ({ action }),
  handler: async () => (await import('../../commands/local-aws.js')).localAwsCommand,
  example: ['eval "$(local-aws env)"', 'local-aws stop'],
  exitCodes: STD_EXIT,
});

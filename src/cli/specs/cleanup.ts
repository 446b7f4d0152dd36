import { Option } from 'commander';
import type { CleanupOptions } from '../../commands/cleanup.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** The `cleanup` command's flags; the handler is src/commands/cleanup.ts, imported when it runs. */
export const cleanupSpec = defineCommand<CleanupOptions>({
  name: 'cleanup',
  summary:
    'destroy what run created, after showing it and a confirmation; keeps state, secrets and the KMS key',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--yes', 'do not ask (outside play-* environments also needs --confirm ENV)'))
      .addOption(new Option('--confirm <env>', 'the environment name, typed back (with --yes)'))
      .addOption(
        new Option('--purge', 'also delete both buckets and schedule the KMS key deletion (asks again)'),
      ),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/cleanup.js')).cleanupCommand,
  example: ['cleanup -e play-alice', 'cleanup -e staging --yes --confirm staging'],
  exitCodes: [...STD_EXIT, '130 declined at the prompt'],
});

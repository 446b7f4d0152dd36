import { Option } from 'commander';
import {
  AGENT_EXAMPLES,
  AGENT_EXIT_CODES,
  AGENT_SUMMARY,
  configureAgentFlags,
  configureNodeModeFlags,
} from '../../agent/flags.js';
import type { ManifestSyncOptions } from '../../commands/manifest-sync.js';
import { defineCommand } from '../common.js';

/**
 * `manifest-sync` in the toolkit CLI: the node agent's flags (src/agent/flags.ts) plus the
 * operator mode, `-e ENV` (bucket and region from the environment file) and `--local`.
 */
export const manifestSyncSpec = defineCommand<ManifestSyncOptions>({
  name: 'manifest-sync',
  summary: AGENT_SUMMARY,
  configure: (c) => {
    c.addOption(
      new Option('-e, --env <name>', 'operator mode: environment file to derive bucket and region from').env(
        'PLATFORM_ENV',
      ),
    );
    configureNodeModeFlags(c);
    c.addOption(
      new Option('--local', 'run against the embedded local AWS (starts or reuses a moto_server)').env(
        'PLATFORM_LOCAL',
      ),
    );
    configureAgentFlags(c);
  },
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/manifest-sync.js')).manifestSyncCommand,
  example: AGENT_EXAMPLES,
  exitCodes: AGENT_EXIT_CODES,
});

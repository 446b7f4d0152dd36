#!/usr/bin/env node
/**
 * Entry of the node agent's single-file bundle (dist/agent/manifest-sync.mjs, built by
 * `npm run build` with esbuild): `manifest-sync` in node mode only (`--environment`,
 * `--bucket`, `--region`), none of the operator commands. Nothing here or below imports
 * from src/cli/ or src/commands/ (test/unit/layout.test.ts checks it), so the bundle
 * carries no environment-file loader, subprocess wrapper or local-AWS starter.
 */
import { Command } from 'commander';
import { setDebug } from '../log.js';
import { reportError } from '../report.js';
import {
  AGENT_EXAMPLES,
  AGENT_EXIT_CODES,
  AGENT_SUMMARY,
  configureAgentFlags,
  configureNodeModeFlags,
} from './flags.js';
import { type AgentOptions, connectNodeMode, runManifestSync } from './run.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const cmd = new Command('manifest-sync').description(AGENT_SUMMARY).option('--debug', 'verbose logs');
configureAgentFlags(configureNodeModeFlags(cmd));
cmd.addHelpText('after', `\nExample:\n  ${AGENT_EXAMPLES.join('\n  ')}`);
cmd.addHelpText('after', `\nExit codes:\n  ${AGENT_EXIT_CODES.join('\n  ')}`);
cmd.exitOverride();
cmd.action(async (opts: AgentOptions & { debug?: boolean }) => {
  setDebug(Boolean(opts.debug));
  process.exitCode = await runManifestSync(opts, () => connectNodeMode(opts));
});
try {
  await cmd.parseAsync(process.argv);
} catch (e) {
  process.exitCode = reportError(e, process.argv.includes('--debug'));
}

#!/usr/bin/env node
/**
 * Entry of the node agent's single-file bundle (dist/agent/manifest-sync.mjs, built by
 * `npm run build` with esbuild): only `manifest-sync`, none of the operator commands.
 */
import { Command } from 'commander';
import { manifestSyncSpec } from '../cli/manifest-sync-spec.js';
import { reportError } from '../cli/report.js';
import { setDebug } from '../log.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const cmd = new Command(manifestSyncSpec.name)
  .description(manifestSyncSpec.summary)
  .option('--debug', 'verbose logs');
manifestSyncSpec.configure(cmd);
cmd.exitOverride();
cmd.action(async (opts: Record<string, unknown>) => {
  setDebug(Boolean(opts.debug));
  process.exitCode = await manifestSyncSpec.run(opts, []);
});
try {
  await cmd.parseAsync(process.argv);
} catch (e) {
  process.exitCode = reportError(e, process.argv.includes('--debug'));
}

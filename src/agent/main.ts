#!/usr/bin/env node
/**
 * Entry of the node agent's single-file bundle (dist/agent/manifest-sync.mjs, built by
 * `npm run build` with esbuild): `manifest-sync` in node mode only (`--environment`,
 * `--bucket`, `--region`), none of the operator commands. Nothing here or below imports
 * from src/cli/ or src/commands/ (test/unit/layout.test.ts checks it), so the bundle
 * carries no environment-file loader, subprocess wrapper or local-AWS starter.
 *
 * `manifest-sync.mjs etcd-backup now ...` is the masters' etcd backup timer
 * (kp-etcd-backup.service; src/backup/node-command.ts: etcd's gateway, no etcdctl).
 */
import { Command } from 'commander';
import { configureBackupNowFlags, configureNodeModeBackupFlags } from '../backup/flags.js';
import { type BackupNowFlags, type NodeBackupFlags, nodeBackupNowCommand } from '../backup/node-command.js';
import { UserError } from '../errors.js';
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
const backup = process.argv[2] === 'etcd-backup';
const cmd = backup ? backupCommand() : agentCommand();
try {
  await cmd.parseAsync(
    backup ? [process.argv[0]!, process.argv[1]!, ...process.argv.slice(3)] : process.argv,
  );
} catch (e) {
  process.exitCode = reportError(e, process.argv.includes('--debug'));
}

function agentCommand(): Command {
  const cmd = new Command('manifest-sync').description(AGENT_SUMMARY).option('--debug', 'verbose logs');
  configureAgentFlags(configureNodeModeFlags(cmd));
  cmd.addHelpText('after', `\nExample:\n  ${AGENT_EXAMPLES.join('\n  ')}`);
  cmd.addHelpText('after', `\nExit codes:\n  ${AGENT_EXIT_CODES.join('\n  ')}`);
  cmd.exitOverride();
  cmd.action(async (opts: AgentOptions & { debug?: boolean }) => {
    setDebug(Boolean(opts.debug));
    process.exitCode = await runManifestSync(opts, () => connectNodeMode(opts));
  });
  return cmd;
}

function backupCommand(): Command {
  const cmd = new Command('etcd-backup')
    .description("a master's etcd snapshot to the secrets bucket (the kp-etcd-backup timer)")
    .argument('<action>', 'now')
    .option('--debug', 'verbose logs');
  configureBackupNowFlags(configureNodeModeBackupFlags(cmd));
  cmd.exitOverride();
  cmd.action(async (action: string, opts: NodeBackupFlags & BackupNowFlags & { debug?: boolean }) => {
    setDebug(Boolean(opts.debug));
    if (action !== 'now') throw new UserError(`etcd-backup ${action}: on a node only "now"`);
    process.exitCode = await nodeBackupNowCommand(opts);
  });
  return cmd;
}

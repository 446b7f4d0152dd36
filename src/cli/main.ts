#!/usr/bin/env node
/**
 * The CLI: wires commander to the command modules and turns errors into exit codes.
 * Only this file sets process.exitCode (STYLE.md §7). Command modules are imported
 * lazily inside each action so `--help` loads nothing heavy (no AWS SDK, no handlebars).
 */
import { Command, Option } from 'commander';
import { loadSdkWithRequire } from '../aws/sdk.js';
import { type CommandContext, cliContext } from '../context/command.js';
import { assertLauncherEnvironment } from './common.js';
import { commands } from './registry.js';

/**
 * Runs the CLI with `argv` (without node and script). Resolves to the exit code.
 * @param context what handlers get (tests pass their own to capture stdout); default the process's
 */
export async function main(argv: string[], context: CommandContext = cliContext()): Promise<number> {
  // The image ships a current LTS; on Node 20 the SDK's support notice would only add noise.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const program = new Command('kube-platform')
    .description('Stand up and operate self-managed Kubernetes clusters on AWS, one per environment.')
    .addOption(
      new Option('--debug', 'verbose logs and stack traces (secrets stay masked)').env('PLATFORM_DEBUG'),
    )
    // --json and --log-format also before the command name, for the commands that take them
    .addOption(new Option('--json', 'print JSON (commands that take --json)'))
    .addOption(
      new Option('--log-format <format>', 'stderr log lines (commands that take --log-format)').choices([
        'text',
        'json',
      ]),
    )
    .showHelpAfterError('(add --help for usage)')
    .enablePositionalOptions()
    .exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let code = 0;
  for (const spec of commands) {
    const cmd = program.command(spec.name).description(spec.summary);
    spec.configure(cmd);
    // README: every command takes --debug, before or after its name
    if (!cmd.options.some((opt) => opt.long === '--debug')) {
      cmd.addOption(new Option('--debug', 'verbose logs and stack traces (secrets stay masked)'));
    }
    if (spec.example) cmd.addHelpText('after', `\nExample:\n  ${spec.example.join('\n  ')}`);
    if (spec.exitCodes) cmd.addHelpText('after', `\nExit codes:\n  ${spec.exitCodes.join('\n  ')}`);
    cmd.exitOverride();
    cmd.action(async () => {
      const flags = cmd.opts();
      const { setDebug } = await import('../log.js');
      setDebug(Boolean(program.opts().debug || flags.debug));
      for (const [flag, attr] of [
        ['--json', 'json'],
        ['--log-format', 'logFormat'],
      ] as const) {
        const given = program.opts()[attr];
        if (given === undefined) continue;
        if (!cmd.options.some((opt) => opt.long === flag)) {
          const { UserError } = await import('../errors.js');
          throw new UserError(`${spec.name} does not take ${flag}`);
        }
        if (cmd.getOptionValueSource(attr) !== 'cli') flags[attr] = given;
      }
      if (cmd.options.some((opt) => opt.attributeName() === 'env')) {
        assertLauncherEnvironment(cmd.getOptionValueSource('env') === 'cli' ? String(flags.env) : undefined);
      }
      code = await spec.run(flags, cmd.processedArgs, context);
    });
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    const { reportError } = await import('../report.js');
    return reportError(err, Boolean(program.opts().debug) || debugAfterCommand(argv));
  }
}

/** True when `--debug` was given after the command name (before a `--`): stack traces for errors. */
function debugAfterCommand(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--debug');
}

/** Entry: `node main.js <command> ...` or via a scripts/<command> launcher. */
export async function runCli(argv: string[]): Promise<void> {
  // the SDK's packages are left out of the CLI bundle and loaded by require (src/aws/sdk.ts)
  loadSdkWithRequire();
  // `cmd | head` closes the pipe early: stop quietly, as Unix tools do
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const code = await main(argv);
  process.exitCode = code;
}

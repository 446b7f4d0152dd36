import { type Command, InvalidArgumentError, Option, type OptionValues } from 'commander';
import type { CommandContext, Handler } from '../context/command.js';
import { UserError } from '../errors.js';

export { seconds, wholeNumber } from '../args.js';
export type { CommandContext, Handler, ResultSink } from '../context/command.js';

/**
 * What every command spec shares: the spec shape, the common options and exit codes. A
 * module of its own so that spec modules and the registry can import it without a cycle.
 * Each spec wires flags (commander validates and normalises) and imports its handler
 * lazily; handlers live in src/commands/<name>.ts, take `(options, context)` and return
 * the exit code. Numbers are parsed by `.argParser()`, choices by `.choices()`: handlers
 * do not re-check them.
 */
/**
 * One command, typed end to end.
 * @typeParam O the handler's options
 * @typeParam F the flags as commander hands them over (after `.choices()`/`.argParser()`)
 * @typeParam A the positional arguments, after their own parsers
 */
export interface CommandSpec<O, F = O, A extends unknown[] = []> {
  name: string;
  summary: string;
  /** adds arguments and options to the command */
  configure(cmd: Command): void;
  /** the one normalisation step: commander's flags and arguments → the handler's options */
  normalize(flags: F, args: A): O;
  /** imports the handler (lazily: `--help` loads none) */
  handler(): Promise<Handler<O>>;
  example?: string[];
  exitCodes?: string[];
}

/** A command as the CLI wires it, its types closed over ({@link defineCommand}). */
export interface RegisteredCommand {
  name: string;
  summary: string;
  configure(cmd: Command): void;
  /** runs the command with commander's parsed values (`cmd.opts()`, `cmd.processedArgs`) */
  run(flags: OptionValues, args: unknown[], context: CommandContext): Promise<number>;
  example?: string[];
  exitCodes?: string[];
}

/**
 * Closes a spec over its types for the command table. The casts from commander's untyped
 * `OptionValues`/`processedArgs` to `F`/`A` are the one place the flags' types are taken
 * on trust: `configure` declares exactly those flags.
 */
export function defineCommand<O, F = O, A extends unknown[] = []>(
  spec: CommandSpec<O, F, A>,
): RegisteredCommand {
  return {
    name: spec.name,
    summary: spec.summary,
    configure: (c) => spec.configure(c),
    ...(spec.example ? { example: spec.example } : {}),
    ...(spec.exitCodes ? { exitCodes: spec.exitCodes } : {}),
    run: async (flags, args, context) => {
      const options = spec.normalize(flags as F, args as A);
      return (await spec.handler())(options, context);
    },
  };
}

/** `-e, --env` shared by every environment command (PLATFORM_ENV is set by run.kube/play.kube). */
export function envOption(): Option {
  return new Option('-e, --env <name>', 'environment (environments/<name>.env)')
    .env('PLATFORM_ENV')
    .makeOptionMandatory();
}

/** `--local`: use the embedded local AWS (moto_server) instead of AWS. */
export function localOption(): Option {
  return new Option('--local', 'run against the embedded local AWS (starts or reuses a moto_server)').env(
    'PLATFORM_LOCAL',
  );
}

export const LAYER_CHOICES = ['common', 'secure', 'compute', 'locked'];

/** The layers as a type (the values of {@link LAYER_CHOICES}). */
export type LayerChoice = 'common' | 'secure' | 'compute' | 'locked';

export const STD_EXIT = ['0 success', '1 unexpected failure', '2 bad input (environment file, flag, value)'];

/**
 * A commander argParser for a number of seconds in [min, max], so that a bad value is a
 * usage error (exit 2) while the flags are parsed, before the handler reads anything.
 * @returns the parser: value text → seconds (a number)
 */
export function secondsArg(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a number of seconds from ${min} to ${max}`);
    }
    return n;
  };
}

/**
 * Inside an environment's shell (run.kube/play.kube export PLATFORM_ENV and
 * PLATFORM_LAUNCH) the environment is fixed: a command given another `-e` would act on
 * that environment with the launcher's credentials and profile.
 * @param given the `-e` value from the command line (undefined when not given there)
 * @throws UserError (exit 2) when it names another environment than the launcher's
 */
export function assertLauncherEnvironment(
  given: string | undefined,
  launcher: { env?: string; launch?: string } = {
    env: process.env.PLATFORM_ENV,
    launch: process.env.PLATFORM_LAUNCH,
  },
): void {
  if (given === undefined || !launcher.launch || !launcher.env || given === launcher.env) return;
  throw new UserError(
    `-e ${given}: this shell is for environment ${launcher.env} (its launcher fixed it); nothing was done`,
    { hint: `for ${given}, start its own shell: ./run.kube -e ${given}` },
  );
}

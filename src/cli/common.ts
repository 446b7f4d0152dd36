import { type Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../errors.js';

/**
 * What every command spec shares: the spec shape, the common options and exit codes. A
 * module of its own so that spec modules and the registry can import it without a cycle.
 * Each spec wires flags (commander validates and normalises) and imports its handler
 * lazily; handlers live in src/commands/<name>.ts and return the exit code.
 */
export interface CommandSpec {
  name: string;
  summary: string;
  configure(cmd: Command): void;
  run(opts: Record<string, unknown>, args: string[]): Promise<number>;
  example?: string[];
  exitCodes?: string[];
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

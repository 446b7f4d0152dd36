import { type Command, Option } from 'commander';

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

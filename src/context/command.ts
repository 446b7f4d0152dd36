import type { ContextOptions, EnvContext } from './environment.js';

/**
 * The context a command's handler runs in (src/commands/<name>.ts: `(options, context)`):
 * what the CLI (src/cli/main.ts) hands every handler, and what a test hands it to run the
 * command in-process against a local AWS and capture its output.
 */

/** Where a command writes its results (tables, JSON, eval lines): stdout in the CLI. */
export interface ResultSink {
  write(text: string): void;
}

/**
 * What a handler is given besides its options, so a test can run it in-process against a
 * local AWS and capture its output.
 */
export interface CommandContext {
  /** opens an environment (file, AWS clients, identity): src/context/environment.ts */
  openEnvironment(opts: ContextOptions): Promise<EnvContext>;
  /** results; progress and logs go to stderr through src/log.ts */
  stdout: ResultSink;
}

/** A command's handler: its options and the context → exit code (errors are thrown). */
export type Handler<O> = (options: O, context: CommandContext) => Promise<number>;

/**
 * The CLI's context: the real environment opener (imported when a command first opens an
 * environment, so `--help` stays light) and the process's stdout.
 */
export function cliContext(): CommandContext {
  return {
    openEnvironment: async (opts) => (await import('./environment.js')).openEnvironment(opts),
    stdout: { write: (text) => void process.stdout.write(text) },
  };
}

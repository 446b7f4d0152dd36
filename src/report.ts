import { PlatformError } from './errors.js';
import { mask } from './log.js';

/**
 * Prints an error and its cause chain to stderr (masked), the stack only with --debug,
 * and returns the exit code it maps to (PlatformError's, else 1). Commander's own usage
 * errors (already printed by commander) map to 2, help/version to 0.
 */
export function reportError(err: unknown, debug: boolean): number {
  const e = err as { code?: string };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
      return 0;
    return 2;
  }
  let cur: unknown = err;
  let prefix = 'error: ';
  while (cur) {
    const c = cur as Error & { hint?: string };
    process.stderr.write(`${mask(`${prefix}${c.message ?? String(c)}`)}\n`);
    if (c.hint) process.stderr.write(`${mask(`hint: ${c.hint}`)}\n`);
    if (debug && c.stack) process.stderr.write(`${mask(c.stack)}\n`);
    if (!(c instanceof PlatformError) && !debug) break;
    cur = c.cause;
    prefix = 'caused by: ';
  }
  return err instanceof PlatformError ? err.exitCode : 1;
}

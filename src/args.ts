import { InvalidArgumentError } from 'commander';

/**
 * Parsers for flag and argument values (commander's `.argParser()`), shared by the toolkit's
 * command specs (src/cli/specs/) and the node agent's flags (src/agent/flags.ts). Commander
 * prints the error with the flag it belongs to and exits 2.
 */

/**
 * An argParser for a number of seconds in [min, max] (`--timeout 60`, `--interval 0.5`),
 * or in (min, max] with `exclusiveMin`.
 * @throws InvalidArgumentError (commander prints it with the flag; exit 2)
 */
export function seconds(min: number, max: number, exclusiveMin = false): (value: string) => number {
  return (value) => {
    const n = Number(value);
    const low = exclusiveMin ? n <= min : n < min;
    if (value.trim() === '' || !Number.isFinite(n) || low || n > max)
      throw new InvalidArgumentError(
        `must be a number of seconds ${exclusiveMin ? `> ${min}${max === Infinity ? '' : ` and ≤ ${max}`}` : `between ${min} and ${max}`}`,
      );
    return n;
  };
}

/**
 * An argParser for a whole number ≥ 0 (`scale-compute 6`).
 * @throws InvalidArgumentError (exit 2)
 */
export function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a whole number');
  return Number(value);
}

import { AbortError, UserError } from './errors.js';

/**
 * Confirmations, through @inquirer/prompts. Without a TTY on stdin a prompt cannot be
 * answered, so instead of waiting forever these fail at once with a UserError telling the
 * operator which flag to use (kops' habit).
 */

function requireTty(flagHint: string): void {
  if (!process.stdin.isTTY) {
    throw new UserError(`confirmation needed but stdin is not a terminal`, { hint: flagHint });
  }
}

/**
 * Asks a yes/no question (default no).
 * @throws UserError without a TTY; AbortError (exit 130) when declined or interrupted
 */
export async function confirmOrAbort(message: string, flagHint: string): Promise<void> {
  requireTty(flagHint);
  const { confirm } = await import('@inquirer/prompts');
  let ok = false;
  try {
    ok = await confirm({ message, default: false }, { output: process.stderr });
  } catch {
    ok = false;
  }
  if (!ok) throw new AbortError('declined: nothing was changed');
}

/**
 * Asks the operator to type `expected` back (e.g. the environment name before a destroy).
 * @throws UserError without a TTY; AbortError when the answer differs
 */
export async function typeBackOrAbort(message: string, expected: string, flagHint: string): Promise<void> {
  requireTty(flagHint);
  const { input } = await import('@inquirer/prompts');
  let answer = '';
  try {
    answer = await input({ message }, { output: process.stderr });
  } catch {
    answer = '';
  }
  if (answer.trim() !== expected)
    throw new AbortError(`"${answer.trim()}" is not "${expected}": nothing was changed`);
}

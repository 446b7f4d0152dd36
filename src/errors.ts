/**
 * Typed errors and the exit codes they map to. Only `main()` (src/cli/main.ts) turns an
 * error into an exit code; everything else throws one of these.
 *
 * Exit codes (documented in README "Exit codes"):
 *   0  success
 *   1  unexpected failure (a bug, or an AWS/terraform failure we did not classify)
 *   2  bad input: an environment file, a template, a flag or a value ({@link UserError})
 *   3  conflict: someone else changed the same thing first ({@link ConflictError})
 *   4  integrity: data failed verification (tampered, moved, rolled back) ({@link IntegrityError})
 *   5  not converged / timed out waiting ({@link TimeoutError})
 *   6  refused by policy: a rule failed outside play-* ({@link PolicyError})
 *   7  `run --plan --exit-code`: changes are pending (not an error)
 *   130 aborted by the operator ({@link AbortError})
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  conflict: 3,
  integrity: 4,
  timeout: 5,
  policy: 6,
  changesPending: 7,
  aborted: 130,
} as const;

/** Base class: carries the exit code and an optional hint printed under the message. */
export class PlatformError extends Error {
  readonly exitCode: number = ExitCode.failure;
  /** A line of advice shown to the operator under the message, e.g. "run with --native". */
  hint?: string;
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.hint) this.hint = options.hint;
  }
}

/** Bad input from the operator: a file, line, key, flag or value. Exit code 2. */
export class UserError extends PlatformError {
  override readonly exitCode: number = ExitCode.usage;
}

/** A concurrent writer won (e.g. the conditional write of an index failed). Exit code 3. */
export class ConflictError extends PlatformError {
  override readonly exitCode: number = ExitCode.conflict;
}

/** Data failed verification: a digest, an authentication tag, a generation. Exit code 4. */
export class IntegrityError extends PlatformError {
  override readonly exitCode: number = ExitCode.integrity;
}

/** A wait ran out of time (e.g. nodes did not converge). Exit code 5. */
export class TimeoutError extends PlatformError {
  override readonly exitCode: number = ExitCode.timeout;
}

/** A policy rule failed on an environment that enforces policy (not play-*). Exit code 6. */
export class PolicyError extends PlatformError {
  override readonly exitCode: number = ExitCode.policy;
}

/** The operator declined a confirmation or interrupted. Exit code 130. */
export class AbortError extends PlatformError {
  override readonly exitCode: number = ExitCode.aborted;
}

/** One problem found while validating input: where it is and what is wrong. */
export interface Problem {
  /** path of the file, relative to the working directory where possible */
  file: string;
  /** 1-based line number, when the problem has one */
  line?: number;
  /** the key or field concerned */
  key?: string;
  message: string;
}

/** Formats a problem as `file:line: KEY: message`, the shape editors and CI annotate. */
export function formatProblem(p: Problem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return p.key ? `${where}: ${p.key}: ${p.message}` : `${where}: ${p.message}`;
}

/** At most this many problems are printed; the rest are counted (a junk file must not flood the terminal). */
export const MAX_SHOWN_PROBLEMS = 50;
/** Longest problem line printed, in characters; longer ones are cut with an ellipsis. */
export const MAX_PROBLEM_LINE = 300;

/**
 * Shortens a value echoed in a message to at most `max` characters (with the number of
 * characters left out), so a 10 MB value is never printed whole.
 */
export function clip(text: string, max = 80): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/**
 * Several input problems reported together, exit code 2. All of them are kept in
 * `problems`; the message shows the first {@link MAX_SHOWN_PROBLEMS}, each line at most
 * {@link MAX_PROBLEM_LINE} characters, and counts the rest.
 */
export class ValidationError extends UserError {
  readonly problems: Problem[];
  constructor(summary: string, problems: Problem[]) {
    const shown = problems
      .slice(0, MAX_SHOWN_PROBLEMS)
      .map((p) => `  ${clip(formatProblem(p), MAX_PROBLEM_LINE)}`);
    const more = problems.length - shown.length;
    if (more > 0)
      shown.push(`  … and ${more} more problem${more === 1 ? '' : 's'} (${problems.length} in all)`);
    super(`${summary}\n${shown.join('\n')}`);
    this.problems = problems;
  }
}

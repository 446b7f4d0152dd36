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
 *   130 aborted by the operator ({@link AbortError})
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  conflict: 3,
  integrity: 4,
  timeout: 5,
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

/** Several input problems reported together (all of them, not just the first). Exit code 2. */
export class ValidationError extends UserError {
  readonly problems: Problem[];
  constructor(summary: string, problems: Problem[]) {
    super(`${summary}\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.problems = problems;
  }
}

/**
 * Logging and progress to stderr, with secret masking.
 *
 * Results go to stdout (tables, JSON); everything here goes to stderr so that
 * `cmd --json | jq` stays clean. Any string registered with {@link registerSecret} is
 * replaced by `***` in everything this module writes, including with `--debug`.
 */

const secrets = new Set<string>();
let debugEnabled = false;
let sink: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

/** Marks a value as secret: it is masked in all log output from now on. Ignores values < 6 chars. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

/** Replaces every registered secret in `text` with `***`. */
export function mask(text: string): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***');
  return out;
}

/** Enables debug lines (set by `--debug` or PLATFORM_DEBUG=1). */
export function setDebug(on: boolean): void {
  debugEnabled = on;
}

export function isDebug(): boolean {
  return debugEnabled;
}

/** Redirects log output (tests). Returns a function restoring the previous sink. */
export function setLogSink(fn: (line: string) => void): () => void {
  const prev = sink;
  sink = fn;
  return () => {
    sink = prev;
  };
}

function emit(prefix: string, msg: string): void {
  sink(mask(prefix + msg));
}

export const log = {
  /** A progress step, e.g. `==> bootstrap`. */
  step: (msg: string) => emit('==> ', msg),
  info: (msg: string) => emit('    ', msg),
  warn: (msg: string) => emit('warning: ', msg),
  error: (msg: string) => emit('error: ', msg),
  debug: (msg: string) => {
    if (debugEnabled) emit('debug: ', msg);
  },
};

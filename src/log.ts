/**
 * Logging and progress to stderr, with secret masking.
 *
 * Results go to stdout (tables, JSON); everything here goes to stderr so that
 * `cmd --json | jq` stays clean. Any string registered with {@link registerSecret} is
 * replaced by `***` in everything this module writes, including with `--debug`.
 */

const secrets = new Set<string>();
let debugEnabled = false;

/** One log entry, before it is formatted. `step` is a progress headline (`==> name`). */
export interface LogEntry {
  level: 'step' | 'info' | 'warn' | 'error' | 'debug';
  /** the message, already masked ({@link mask}) */
  msg: string;
  /** when it was logged */
  time: Date;
}

/** A formatter turns an entry into one line (without the newline). */
export type LogFormatter = (e: LogEntry) => string;

const TEXT_PREFIX: Record<LogEntry['level'], string> = {
  step: '==> ',
  info: '    ',
  warn: 'warning: ',
  error: 'error: ',
  debug: 'debug: ',
};

/** The text format operators read: `==> step`, indented info, `warning: `/`error: `/`debug: ` prefixes. */
export const textFormat: LogFormatter = (e) => TEXT_PREFIX[e.level] + e.msg;

/**
 * JSON lines for machines (journald, log shippers): `{"time","level","msg"}`, level one of
 * info (steps too), warn, error, debug.
 */
export const jsonFormat: LogFormatter = (e) =>
  JSON.stringify({ time: e.time.toISOString(), level: e.level === 'step' ? 'info' : e.level, msg: e.msg });

let format: LogFormatter = textFormat;
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

/** Chooses how entries become lines (`--log-format text|json`). Returns a function restoring the previous one. */
export function setLogFormat(f: 'text' | 'json' | LogFormatter): () => void {
  const prev = format;
  format = f === 'text' ? textFormat : f === 'json' ? jsonFormat : f;
  return () => {
    format = prev;
  };
}

/** Redirects the formatted lines (tests). Returns a function restoring the previous sink. */
export function setLogSink(fn: (line: string) => void): () => void {
  const prev = sink;
  sink = fn;
  return () => {
    sink = prev;
  };
}

function emit(level: LogEntry['level'], msg: string): void {
  sink(format({ level, msg: mask(msg), time: new Date() }));
}

/** The one output channel for progress and diagnostics (stderr); results go to the command's stdout. */
export const log = {
  /** A progress step, e.g. `==> bootstrap`. */
  step: (msg: string) => emit('step', msg),
  info: (msg: string) => emit('info', msg),
  warn: (msg: string) => emit('warn', msg),
  error: (msg: string) => emit('error', msg),
  debug: (msg: string) => {
    if (debugEnabled) emit('debug', msg);
  },
};

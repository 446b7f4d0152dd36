import { PlatformError } from '../errors.js';
import { log, mask } from '../log.js';

/**
 * The one wrapper for subprocesses (terraform/tofu, moto_server, ssh-agent, ssh-add,
 * ssh-keygen). Nothing else imports execa. Arguments are always an array (no shell),
 * `cwd` is always explicit, and what is logged passes through the secret mask. Secrets
 * are handed to children through `input` (stdin) or `env`, never through arguments.
 */

/** Where the programs the toolkit runs come from, for the error when one is missing. */
const INSTALL_HINTS: Record<string, string> = {
  'ssh-keygen':
    'install OpenSSH (Debian/Ubuntu: apt-get install openssh-client; macOS has it): run uses it for the environment SSH key',
  'ssh-agent': 'install OpenSSH (Debian/Ubuntu: apt-get install openssh-client)',
  'ssh-add': 'install OpenSSH (Debian/Ubuntu: apt-get install openssh-client)',
  terraform: 'install Terraform >= 1.10 or OpenTofu >= 1.10 (PLATFORM_TF_BINARY=tofu)',
  ssh: 'install OpenSSH (Debian/Ubuntu: apt-get install openssh-client)',
  moto_server: "install the local AWS: pip install 'moto[server]'",
};

export interface ExecOptions {
  /** working directory (required: no command runs "wherever we happen to be") */
  cwd: string;
  /** extra environment variables, merged over process.env */
  env?: Record<string, string | undefined>;
  /** text written to the child's stdin */
  input?: string;
  /**
   * 'inherit' streams the child's output to our stderr (progress); 'passthrough' gives the
   * child our stdin, stdout and stderr (a command the operator runs through us, e.g.
   * `terraform -e ENV -- state list`); default 'pipe' captures
   */
  stdio?: 'pipe' | 'inherit' | 'passthrough';
  /** don't throw on a non-zero exit; the caller inspects `exitCode` */
  reject?: boolean;
  /** milliseconds before the child is killed; default none */
  timeoutMs?: number;
  /** called once the child process is spawned */
  onSpawn?: () => void;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Thrown when a subprocess exits non-zero (and `reject` is not false). */
export class ExecError extends PlatformError {
  readonly result: ExecResult;
  constructor(command: string, result: ExecResult) {
    const tail = mask(result.stderr.trim().split('\n').slice(-20).join('\n'));
    super(`${command} exited with code ${result.exitCode}${tail ? `:\n${tail}` : ''}`);
    this.result = result;
  }
}

/**
 * Runs a command to completion.
 *
 * @param file the program (looked up on PATH)
 * @param args its arguments (never secrets: they show in `ps`)
 * @throws ExecError on a non-zero exit unless `reject: false`; PlatformError when the
 *   program cannot be started (e.g. not installed)
 */
export async function exec(file: string, args: string[], opts: ExecOptions): Promise<ExecResult> {
  const { execa } = await import('execa');
  const shown = mask([file, ...args].join(' '));
  log.debug(`exec: ${shown} (cwd ${opts.cwd})`);
  const through = opts.stdio === 'passthrough';
  const inherit = opts.stdio === 'inherit' || through;
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    input: opts.input,
    stdin: opts.input === undefined ? (inherit ? 'inherit' : 'ignore') : undefined,
    stdout: through ? ['pipe', 'inherit'] : inherit ? ['pipe', process.stderr] : 'pipe',
    stderr: inherit ? ['pipe', process.stderr] : 'pipe',
    reject: false,
    timeout: opts.timeoutMs,
    all: false,
  });
  opts.onSpawn?.();
  const r = await child;
  if (r.failed && r.exitCode === undefined) {
    if ((r.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new PlatformError(`${file} is not installed (not found on PATH)`, {
        cause: r.cause,
        hint: INSTALL_HINTS[file] ?? `install ${file}, or put it on PATH`,
      });
    }
    throw new PlatformError(`cannot run ${file}: ${mask(r.shortMessage ?? String(r.cause))}`, {
      cause: r.cause,
    });
  }
  const result: ExecResult = {
    exitCode: r.exitCode ?? 1,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
  };
  if (result.exitCode !== 0 && opts.reject !== false) throw new ExecError(shown, result);
  return result;
}

/** Returns true when `file` can be found on PATH (or is an existing path). */
export async function which(file: string): Promise<string | undefined> {
  const { access } = await import('node:fs/promises');
  const path = await import('node:path');
  const { constants } = await import('node:fs');
  if (file.includes('/'))
    return access(file, constants.X_OK).then(
      () => file,
      () => undefined,
    );
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, file);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

export interface BackgroundProcess {
  pid: number;
  /** sends SIGTERM and waits for the exit (SIGKILL after `graceMs`, default 5000) */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a long-running process in the background with its output appended to `logFile`.
 *
 * @param detached true: the child outlives this process (own process group, unref'd)
 */
export async function spawnBackground(
  file: string,
  args: string[],
  opts: { cwd: string; logFile: string; env?: Record<string, string | undefined>; detached?: boolean },
): Promise<BackgroundProcess> {
  const { execa } = await import('execa');
  const { openSync, closeSync } = await import('node:fs');
  log.debug(`spawn: ${mask([file, ...args].join(' '))}`);
  // A plain file descriptor (not an execa file target, which execa pipes through this
  // process): a detached child must not hold this process's event loop open.
  const fd = openSync(opts.logFile, 'a');
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    stdin: 'ignore',
    // execa's types omit raw file descriptors, which Node's spawn() accepts (stdio: [fd])
    stdout: fd as unknown as 'ignore',
    stderr: fd as unknown as 'ignore',
    detached: opts.detached ?? false,
    reject: false,
    cleanup: !opts.detached,
  });
  closeSync(fd);
  if (child.pid === undefined) {
    const r = await child;
    throw new PlatformError(`cannot start ${file}: ${r.shortMessage ?? 'unknown error'}`);
  }
  if (opts.detached) child.unref();
  const done = child.then(
    () => undefined,
    () => undefined,
  );
  return {
    pid: child.pid,
    async stop(graceMs = 5000) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await done;
      clearTimeout(timer);
    },
  };
}

/** A long-running child whose exit is watched and whose stderr is kept (see {@link spawnWatched}). */
export interface WatchedProcess {
  pid: number;
  /** what the child wrote to stderr so far (the last 64 KiB), through the secret mask */
  stderr(): string;
  /** resolves with the exit code (null when killed by a signal) once the child has exited */
  exited: Promise<number | null>;
  /** whether the child is still running */
  running(): boolean;
  /** sends SIGTERM and waits for the exit (SIGKILL after `graceMs`, default 5000); idempotent */
  stop(graceMs?: number): Promise<void>;
}

const STDERR_KEEP = 64 * 1024;

/**
 * Starts a long-running child (e.g. an `ssh -N` tunnel) with stdin closed and stdout
 * discarded, keeping its stderr in memory for error messages. The child is killed when this
 * process exits (execa's cleanup), and never outlives it by design: no detached mode.
 *
 * @param args its arguments (never secrets: they show in `ps`)
 * @throws PlatformError when the program cannot be started (e.g. not installed)
 */
export async function spawnWatched(
  file: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string | undefined> },
): Promise<WatchedProcess> {
  const { execa } = await import('execa');
  log.debug(`spawn: ${mask([file, ...args].join(' '))}`);
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
    reject: false,
    cleanup: true,
    buffer: false,
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString('utf8')).slice(-STDERR_KEEP);
  });
  let alive = child.pid !== undefined;
  const exited = child.then(
    (r) => {
      alive = false;
      if (r.failed && r.exitCode === undefined && r.signal === undefined) {
        const code = (r.cause as NodeJS.ErrnoException | undefined)?.code;
        err +=
          code === 'ENOENT' ? `${file} is not installed (not found on PATH)` : String(r.shortMessage ?? '');
      }
      return r.exitCode ?? null;
    },
    () => {
      alive = false;
      return null;
    },
  );
  if (child.pid === undefined) {
    await exited;
    throw new PlatformError(`cannot start ${file}: ${mask(err.trim()) || 'unknown error'}`, {
      hint: INSTALL_HINTS[file] ?? `install ${file}, or put it on PATH`,
    });
  }
  return {
    pid: child.pid,
    stderr: () => mask(err),
    exited,
    running: () => alive,
    async stop(graceMs = 5000) {
      if (!alive) {
        await exited;
        return;
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

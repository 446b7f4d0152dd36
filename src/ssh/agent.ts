import os from 'node:os';
import path from 'node:path';
import { PlatformError, UserError } from '../errors.js';
import { exec } from '../exec/index.js';
import { SSH_ENV_VAR } from './config.js';

/**
 * The operator's ssh-agent (ssh-agent(1), ssh-add(1)), driven through the exec() wrapper.
 * Keys are added by path (a path is not a secret); no key material is ever an argument.
 */

/** An agent as a shell knows it. */
export interface Agent {
  /** SSH_AUTH_SOCK: the agent's Unix socket */
  sock: string;
  /** SSH_AGENT_PID, when known (an agent we did not start may have none, e.g. a forwarded one) */
  pid?: number;
  /** true when this run started it */
  started: boolean;
}

/**
 * Parses the Bourne-shell lines of `ssh-agent -s`:
 * `SSH_AUTH_SOCK=/tmp/ssh-XXXX/agent.123; export SSH_AUTH_SOCK;` and
 * `SSH_AGENT_PID=124; export SSH_AGENT_PID;` (ssh-agent(1) -s).
 *
 * @throws PlatformError when either is missing
 */
export function parseAgentOutput(text: string): { sock: string; pid: number } {
  const sock = /^SSH_AUTH_SOCK=([^;\n]+); export SSH_AUTH_SOCK;$/m.exec(text)?.[1];
  const pid = /^SSH_AGENT_PID=(\d+); export SSH_AGENT_PID;$/m.exec(text)?.[1];
  if (!sock || !pid)
    throw new PlatformError(`unexpected output from ssh-agent -s: ${JSON.stringify(text.slice(0, 200))}`);
  return { sock, pid: Number(pid) };
}

/** Quotes a word for a POSIX shell (single quotes; `'` as `'\''`), leaving plain words bare. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The lines a shell evaluates (`eval "$(agent-setup -e ENV)"`), in ssh-agent's own format:
 * SSH_AUTH_SOCK, SSH_AGENT_PID when known, and PLATFORM_SSH_ENV=<env> (which environment
 * `ssh bastion` means in that shell, see config.ts).
 */
export function agentEvalLines(agent: Pick<Agent, 'sock' | 'pid'>, env: string): string {
  const lines = [`SSH_AUTH_SOCK=${shellWord(agent.sock)}; export SSH_AUTH_SOCK;`];
  if (agent.pid !== undefined) lines.push(`SSH_AGENT_PID=${agent.pid}; export SSH_AGENT_PID;`);
  lines.push(`${SSH_ENV_VAR}=${shellWord(env)}; export ${SSH_ENV_VAR};`);
  return `${lines.join('\n')}\n`;
}

/**
 * The agent of `env` when it answers: SSH_AUTH_SOCK is set and `ssh-add -l` exits 0 (keys
 * listed) or 1 (no keys); 2 means it cannot reach an agent (ssh-add(1) EXIT STATUS).
 */
export async function liveAgent(env: NodeJS.ProcessEnv): Promise<Agent | undefined> {
  const sock = env.SSH_AUTH_SOCK;
  if (!sock) return undefined;
  const r = await exec('ssh-add', ['-l'], { cwd: os.tmpdir(), env: { SSH_AUTH_SOCK: sock }, reject: false });
  if (r.exitCode !== 0 && r.exitCode !== 1) return undefined;
  const pid = env.SSH_AGENT_PID && /^\d+$/.test(env.SSH_AGENT_PID) ? Number(env.SSH_AGENT_PID) : undefined;
  return { sock, ...(pid !== undefined ? { pid } : {}), started: false };
}

/**
 * Starts an agent (`ssh-agent -s`); it daemonises and outlives this process.
 * @throws PlatformError when ssh-agent is missing or fails
 */
export async function startAgent(): Promise<Agent> {
  const r = await exec('ssh-agent', ['-s'], { cwd: os.tmpdir(), timeoutMs: 10_000 });
  return { ...parseAgentOutput(r.stdout), started: true };
}

/**
 * The SHA256 fingerprint of a key file (`ssh-keygen -l -E sha256 -f FILE`, public or
 * OpenSSH private key), e.g. `SHA256:n3Fd…`.
 * @throws UserError when the file is not a key ssh-keygen can read
 */
export async function keyFingerprint(file: string): Promise<string> {
  const r = await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], {
    cwd: path.dirname(file),
    reject: false,
  });
  const fp = /\b(SHA256:[A-Za-z0-9+/]+)/.exec(r.stdout)?.[1];
  if (r.exitCode !== 0 || !fp) {
    throw new UserError(`${file} is not an SSH key ssh-keygen can read`, {
      hint: 'fetch it again with fetch-secrets --layer locked --force',
    });
  }
  return fp;
}

/** The SHA256 fingerprints of the keys an agent holds (`ssh-add -l -E sha256`). */
export async function agentFingerprints(agent: Pick<Agent, 'sock'>): Promise<string[]> {
  const r = await exec('ssh-add', ['-l', '-E', 'sha256'], {
    cwd: os.tmpdir(),
    env: { SSH_AUTH_SOCK: agent.sock },
    reject: false,
  });
  return [...r.stdout.matchAll(/\b(SHA256:[A-Za-z0-9+/]+)/g)].map((m) => m[1]!);
}

/**
 * Adds a private key file to the agent (`ssh-add [-t lifetime] FILE`) and checks that the
 * agent then lists its fingerprint.
 *
 * @param lifetime how long the agent keeps the key, in ssh-add(1) -t time format
 *   (sshd_config(5) TIME FORMATS: `8h`, `90m`, `1h30m`, seconds); undefined = until the agent stops
 * @returns the key's fingerprint
 * @throws ExecError when ssh-add fails; PlatformError when the agent does not list the key
 */
export async function addKey(agent: Pick<Agent, 'sock'>, file: string, lifetime?: string): Promise<string> {
  const fp = await keyFingerprint(file);
  const args = lifetime ? ['-t', lifetime, file] : [file];
  await exec('ssh-add', args, {
    cwd: path.dirname(file),
    env: { SSH_AUTH_SOCK: agent.sock },
    timeoutMs: 30_000,
  });
  if (!(await agentFingerprints(agent)).includes(fp)) {
    throw new PlatformError(`the agent at ${agent.sock} does not list ${fp} after ssh-add`);
  }
  return fp;
}

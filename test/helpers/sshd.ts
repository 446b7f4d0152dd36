import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/aws/local.js';
import { type BackgroundProcess, exec, spawnBackground } from '../../src/exec/index.js';

/**
 * Real OpenSSH servers for the ssh tests, on loopback only (Linux routes all of 127/8 to
 * `lo`, so 127.0.0.2 is a second "host"). Each has its own host key made by ssh-keygen at
 * test time, key authentication only (no password, no PAM), logs to a file (`sshd -D -e`).
 * They log in the current user; `StrictModes no` because everything lives in temp dirs.
 */

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  /** listen address, e.g. 127.0.0.2 */
  host: string;
  port: number;
  /** the server's host public key, `ssh-ed25519 AAAA…` (no comment) */
  hostKey: { type: string; key: string };
  dir: string;
  /** what sshd has logged so far */
  log(): string;
  stop(): Promise<void>;
}

/** Resolves when something on host:port sends an SSH identification string (RFC 4253 §4.2). */
function banner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('data', (d) => done(d.toString('latin1').startsWith('SSH-2.0-')));
    s.once('error', () => done(false));
  });
}

/**
 * Starts `sshd -D -e -f <generated sshd_config>` on `host` (a free port).
 *
 * @param authorizedKeys the public key line(s) allowed to log in
 * @param logLevel VERBOSE logs logins; DEBUG1 also logs direct-tcpip (ProxyJump) requests
 * @throws Error when sshd is not installed or does not answer within 10 s
 */
export async function startSshd(opts: {
  host: string;
  authorizedKeys: string;
  logLevel?: 'VERBOSE' | 'DEBUG1';
}): Promise<Sshd> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} is missing: apt-get update && apt-get install -y openssh-server`);
  }
  // sshd running as root needs its privilege-separation directory (created by the package's init script)
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kp-sshd-'));
  const hostKeyFile = path.join(dir, 'ssh_host_ed25519_key');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', hostKeyFile], { cwd: dir });
  const [type, key] = readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(/\s+/);
  writeFileSync(path.join(dir, 'authorized_keys'), opts.authorizedKeys, { mode: 0o600 });
  const port = await freePort();
  const config = [
    `ListenAddress ${opts.host}:${port}`,
    `HostKey ${hostKeyFile}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'UsePAM no',
    'StrictModes no',
    'AllowAgentForwarding yes',
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    `LogLevel ${opts.logLevel ?? 'VERBOSE'}`,
    '',
  ].join('\n');
  const configFile = path.join(dir, 'sshd_config');
  writeFileSync(configFile, config, { mode: 0o600 });
  const logFile = path.join(dir, 'sshd.log');
  const proc: BackgroundProcess = await spawnBackground(SSHD, ['-D', '-e', '-f', configFile], {
    cwd: dir,
    logFile,
  });
  const deadline = Date.now() + 10_000;
  while (!(await banner(opts.host, port))) {
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`sshd did not start on ${opts.host}:${port}:\n${readFileSync(logFile, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: opts.host,
    port,
    hostKey: { type: type!, key: key! },
    dir,
    log: () => readFileSync(logFile, 'utf8'),
    stop: () => proc.stop(),
  };
}

/** The current user's login name (the sshd servers log this user in). */
export function currentUser(): string {
  return os.userInfo().username;
}

/**
 * An environment file whose VPC is 127.0.0.0/16 (so 127.0.0.2 is a "private host") and whose
 * SSH_USER is the current user.
 */
export function loopbackEnvFile(): string {
  return [
    'AWS_REGION=eu-west-1',
    'AVAILABILITY_ZONES=eu-west-1a',
    'VPC_CIDR=127.0.0.0/16',
    'SECURE_SUBNETS=127.0.10.0/24',
    'COMPUTE_SUBNETS=127.0.20.0/24',
    'ELB_SUBNETS=127.0.100.0/24',
    'MGMT_SUBNETS=127.0.110.0/24',
    'SSH_ACCESS_LIST=127.0.0.0/8',
    'KUBEAPI_ACCESS_LIST=127.0.0.0/8',
    'PUBLIC_DNS_ZONE=example.com',
    `SSH_USER=${currentUser()}`,
    '',
  ].join('\n');
}

/**
 * Makes the environment's key pair the way fetch-secrets leaves it:
 * `<secretsDir>/locked/ssh/<env>` (0600) and `<secretsDir>/common/ssh/<env>.pub`.
 * @returns the private key path and the public key line
 */
export async function makeEnvKey(secrets: string, env: string): Promise<{ file: string; publicKey: string }> {
  const file = path.join(secrets, 'locked', 'ssh', env);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  mkdirSync(path.join(secrets, 'common', 'ssh'), { recursive: true, mode: 0o700 });
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', env, '-f', file], {
    cwd: path.dirname(file),
  });
  const publicKey = readFileSync(`${file}.pub`, 'utf8');
  writeFileSync(path.join(secrets, 'common', 'ssh', `${env}.pub`), publicKey, { mode: 0o644 });
  return { file, publicKey };
}

/**
 * Runs the `agent-setup` command through the CLI's main() in a child Node process: real
 * argument parsing, real stdout (what `eval` reads) and stderr, exit code from reportError.
 */
export async function runAgentSetup(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dist = path.resolve(import.meta.dirname, '..', '..', 'src');
  const script = `
import { main } from ${JSON.stringify(path.join(dist, 'cli', 'main.js'))};
process.exitCode = await main(process.argv.slice(1));
`;
  const r = await exec(process.execPath, ['--input-type=module', '-e', script, 'agent-setup', ...args], {
    cwd: path.resolve(dist, '..', '..'), // the repository, where `commander` resolves
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    reject: false,
    timeoutMs: 120_000,
  });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exec } from '../../src/exec/index.js';
import { parseAgentOutput } from '../../src/ssh/agent.js';
import { workspace } from '../helpers/cli.js';
import { loopbackEnvFile, makeEnvKey, runAgentSetup, type Sshd, startSshd } from '../helpers/sshd.js';

/**
 * agent-setup against real OpenSSH: a bastion sshd on 127.0.0.1 and a private node sshd on
 * 127.0.0.2, an environment whose VPC is 127.0.0.0/16, the environment's key generated here.
 */

const ENV = 'ssh-test';
let ws: { dir: string; home: string };
let keyFile: string;
let keyFp: string;
let bastion: Sshd;
let node: Sshd;
const agentPids: number[] = [];

/** The environment a child process gets: the workspace, its HOME, no inherited agent or environment selection. */
function baseEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    PLATFORM_WORKDIR: ws.dir,
    HOME: ws.home,
    PLATFORM_SECRETS_DIR: undefined,
    SSH_AUTH_SOCK: undefined,
    SSH_AGENT_PID: undefined,
    PLATFORM_ENV: undefined,
    PLATFORM_SSH_ENV: undefined,
    AWS_ENDPOINT_URL: undefined,
    ...extra,
  };
}

const setupArgs = () => [
  '-e',
  ENV,
  '--bastion',
  '127.0.0.1',
  '--bastion-port',
  String(bastion.port),
  '--port',
  String(node.port),
];

/** The SHA256 fingerprint ssh-keygen prints for a key file. */
async function fingerprintOf(file: string): Promise<string> {
  const r = await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { cwd: os.tmpdir() });
  return r.stdout.split(/\s+/)[1]!;
}

/** ssh with the generated environment config (`-F`: ssh reads ~/.ssh from the password database, not $HOME). */
function ssh(args: string[], env: Record<string, string | undefined>) {
  const config = path.join(ws.home, '.ssh', 'kube-platform', `${ENV}.config`);
  return exec('ssh', ['-F', config, ...args], { cwd: os.tmpdir(), env, reject: false, timeoutMs: 20_000 });
}

beforeAll(async () => {
  ws = workspace({ [ENV]: loopbackEnvFile() });
  const key = await makeEnvKey(path.join(ws.dir, 'secrets', ENV), ENV);
  keyFile = key.file;
  keyFp = await fingerprintOf(`${keyFile}.pub`);
  [bastion, node] = await Promise.all([
    startSshd({ host: '127.0.0.1', authorizedKeys: key.publicKey, logLevel: 'DEBUG1' }),
    startSshd({ host: '127.0.0.2', authorizedKeys: key.publicKey }),
  ]);
  // the user's own ssh config, which must survive untouched below our Include line
  mkdirSync(path.join(ws.home, '.ssh'), { mode: 0o700 });
  writeFileSync(path.join(ws.home, '.ssh', 'config'), '# mine\nHost *\n  ServerAliveInterval 30 # keep\n', {
    mode: 0o644,
  });
}, 30_000);

afterAll(async () => {
  for (const pid of agentPids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await Promise.all([bastion?.stop(), node?.stop()]);
});

test('bad input exits 2 before any agent is started: missing key, key readable by others, bad flag values', async () => {
  const missing = await runAgentSetup(['-e', 'play', '--bastion', '127.0.0.1'], baseEnv());
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('locked/ssh/play does not exist');
  expect(missing.stderr).toContain('hint: fetch it with: fetch-secrets -e play --layer locked');
  expect(missing.stdout).toBe('');

  chmodSync(keyFile, 0o644);
  try {
    const open = await runAgentSetup(setupArgs(), baseEnv());
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/has mode 0644: an SSH private key must be readable by you only \(0600\)/);
    expect(open.stdout).toBe('');
  } finally {
    chmodSync(keyFile, 0o600);
  }

  const badLifetime = await runAgentSetup([...setupArgs(), '--lifetime', '8 hours'], baseEnv());
  expect(badLifetime.code).toBe(2);
  expect(badLifetime.stderr).toMatch(/--lifetime.*must be a positive ssh time/);
  const badHost = await runAgentSetup(['-e', ENV, '--bastion', 'x;rm -rf ~'], baseEnv());
  expect(badHost.code).toBe(2);
  expect(badHost.stderr).toMatch(/--bastion.*must be an IP address or a host name/);
  const badPort = await runAgentSetup([...setupArgs(), '--port', '70000'], baseEnv());
  expect(badPort.code).toBe(2);
});

test('starts an agent, pins host keys, and ssh reaches the node through the bastion with the agent forwarded to the bastion only', async () => {
  const r = await runAgentSetup([...setupArgs(), '--pin', 'keyscan', '--node', '127.0.0.2'], baseEnv());
  expect(r.stderr).toContain('started ssh-agent');
  expect(r.code).toBe(0);
  // stdout is exactly the lines to eval
  expect(r.stdout).toMatch(
    new RegExp(
      `^SSH_AUTH_SOCK=\\S+; export SSH_AUTH_SOCK;\\nSSH_AGENT_PID=\\d+; export SSH_AGENT_PID;\\nPLATFORM_SSH_ENV=${ENV}; export PLATFORM_SSH_ENV;$`,
    ),
  );
  const agent = parseAgentOutput(r.stdout);
  agentPids.push(agent.pid);

  // eval "$(agent-setup ...)" gives the shell the agent, holding the environment's key
  const evaled = await exec('sh', ['-c', 'eval "$1"; ssh-add -l -E sha256', 'sh', r.stdout], {
    cwd: os.tmpdir(),
    env: baseEnv(),
  });
  expect(evaled.stdout).toContain(`${keyFp} ${ENV} (ED25519)`);

  // files and modes
  const dir = path.join(ws.home, '.ssh', 'kube-platform');
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(statSync(path.join(dir, `${ENV}.config`)).mode & 0o777).toBe(0o600);
  expect(statSync(path.join(dir, `${ENV}.known_hosts`)).mode & 0o777).toBe(0o600);
  const userConfig = readFileSync(path.join(ws.home, '.ssh', 'config'), 'utf8');
  expect(userConfig).toMatch(
    /^# kube-platform environments \(agent-setup\)[^\n]*\nInclude ~\/\.ssh\/kube-platform\/\*\.config\n\n# mine\nHost \*\n {2}ServerAliveInterval 30 # keep\n$/,
  );
  expect(statSync(path.join(ws.home, '.ssh', 'config')).mode & 0o777).toBe(0o644);

  // the pins are the servers' real host keys, the bastion's under its alias
  const knownHosts = readFileSync(path.join(dir, `${ENV}.known_hosts`), 'utf8');
  expect(knownHosts).toBe(
    `bastion-${ENV} ${bastion.hostKey.type} ${bastion.hostKey.key}\n` +
      `[127.0.0.2]:${node.port} ${node.hostKey.type} ${node.hostKey.key}\n`,
  );
  expect(r.stderr).toContain(
    `pinned bastion-${ENV}: ssh-ed25519 ${await fingerprintOf(path.join(bastion.dir, 'ssh_host_ed25519_key.pub'))}`,
  );
  expect(r.stderr).toContain(
    `pinned [127.0.0.2]:${node.port}: ssh-ed25519 ${await fingerprintOf(path.join(node.dir, 'ssh_host_ed25519_key.pub'))}`,
  );

  const shellEnv = {
    HOME: ws.home,
    SSH_AUTH_SOCK: agent.sock,
    PLATFORM_SSH_ENV: ENV,
    PLATFORM_ENV: undefined,
  };

  // the node, through the bastion: the command runs on 127.0.0.2 and has no agent
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a remote shell's parameter expansion
  const onNode = await ssh(['127.0.0.2', 'echo "$SSH_CONNECTION"; echo "${SSH_AUTH_SOCK:-none}"'], shellEnv);
  expect(onNode.stderr).toBe('');
  expect(onNode.exitCode).toBe(0);
  const [connection, nodeSock] = onNode.stdout.split('\n');
  expect(connection).toMatch(new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.2 ${node.port}$`));
  expect(nodeSock).toBe('none');
  // ... and it came from the bastion: the bastion's sshd opened the direct-tcpip channel to it
  expect(bastion.log()).toMatch(
    new RegExp(`direct_tcpip: originator \\S+ port \\d+, target 127\\.0\\.0\\.2 port ${node.port}\\b`),
  );
  expect(node.log()).toMatch(
    new RegExp(
      `Accepted publickey for \\S+ from 127\\.0\\.0\\.1 port \\d+ ssh2: ED25519 ${keyFp.replace(/[+/]/g, '\\$&')}`,
    ),
  );

  // the bastion has the forwarded agent (its own socket, listing our key)
  const onBastion = await ssh(
    ['bastion', 'test -n "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" && ssh-add -l -E sha256'],
    shellEnv,
  );
  expect(onBastion.exitCode).toBe(0);
  const [remoteSock, ...listed] = onBastion.stdout.split('\n');
  expect(remoteSock).not.toBe(agent.sock);
  expect(listed.join('\n')).toContain(`${keyFp} ${ENV} (ED25519)`);

  // the effective settings ssh computes for each name
  const effective = async (host: string, env: Record<string, string | undefined>) => {
    const g = await ssh(['-G', host], env);
    return Object.fromEntries(
      g.stdout.split('\n').map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)]),
    );
  };
  const b = await effective('bastion', shellEnv);
  expect([b.hostname, b.port, b.forwardagent, b.hostkeyalias, b.stricthostkeychecking]).toEqual([
    '127.0.0.1',
    String(bastion.port),
    'yes',
    `bastion-${ENV}`,
    'true',
  ]);
  const n = await effective('127.0.0.2', shellEnv);
  expect([n.proxyjump, n.forwardagent, n.identitiesonly, n.stricthostkeychecking]).toEqual([
    `bastion-${ENV}`,
    'no',
    'yes',
    'true',
  ]);
  // PLATFORM_ENV (the environment's shell of run.kube/play.kube) selects the environment too
  expect(
    (await effective('bastion', { ...shellEnv, PLATFORM_SSH_ENV: undefined, PLATFORM_ENV: ENV })).hostname,
  ).toBe('127.0.0.1');
  // in a shell of another environment, or none, the generic names are not ours
  for (const other of [{ PLATFORM_SSH_ENV: 'prod' }, { PLATFORM_SSH_ENV: undefined }]) {
    const g = await effective('bastion', { ...shellEnv, ...other });
    expect(g.hostname).toBe('bastion');
    expect((await effective('127.0.0.2', { ...shellEnv, ...other })).proxyjump).toBeUndefined();
  }
  // the environment-qualified name works in any shell
  expect((await effective(`bastion-${ENV}`, { ...shellEnv, PLATFORM_SSH_ENV: undefined })).hostname).toBe(
    '127.0.0.1',
  );
}, 60_000);

test('reuses a live agent, honours --lifetime, and is idempotent', async () => {
  const started = await exec('ssh-agent', ['-s'], { cwd: os.tmpdir() });
  const agent = parseAgentOutput(started.stdout);
  agentPids.push(agent.pid);
  const env = baseEnv({ SSH_AUTH_SOCK: agent.sock, SSH_AGENT_PID: String(agent.pid) });
  const before = readFileSync(path.join(ws.home, '.ssh', 'config'), 'utf8');
  const knownHosts = readFileSync(path.join(ws.home, '.ssh', 'kube-platform', `${ENV}.known_hosts`), 'utf8');

  const r = await runAgentSetup([...setupArgs(), '--lifetime', '3s'], env);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`using the running ssh-agent at ${agent.sock}`);
  expect(r.stderr).toContain('config unchanged');
  expect(r.stderr).not.toContain('not pinned');
  expect(parseAgentOutput(r.stdout)).toEqual(agent);
  // nothing duplicated or rewritten
  expect(readFileSync(path.join(ws.home, '.ssh', 'config'), 'utf8')).toBe(before);
  expect(readFileSync(path.join(ws.home, '.ssh', 'kube-platform', `${ENV}.known_hosts`), 'utf8')).toBe(
    knownHosts,
  );

  const list = () => exec('ssh-add', ['-l', '-E', 'sha256'], { cwd: os.tmpdir(), env, reject: false });
  expect((await list()).stdout).toContain(keyFp);
  // the agent drops the key after its lifetime (ssh-add -t)
  const deadline = Date.now() + 10_000;
  while ((await list()).stdout.includes(keyFp) && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 250));
  expect((await list()).exitCode).toBe(1); // "The agent has no identities."
}, 30_000);

test('an SSH_AUTH_SOCK that does not answer is replaced by a new agent', async () => {
  const r = await runAgentSetup(
    setupArgs(),
    baseEnv({ SSH_AUTH_SOCK: path.join(ws.dir, 'no-such-agent.sock') }),
  );
  expect(r.code).toBe(0);
  const agent = parseAgentOutput(r.stdout);
  agentPids.push(agent.pid);
  expect(agent.sock).not.toContain('no-such-agent');
  expect(r.stderr).toContain(`started ssh-agent (pid ${agent.pid})`);
});

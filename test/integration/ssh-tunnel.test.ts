import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/aws/local.js';
import { dryRunRestore } from '../../src/backup/restore.js';
import { BackupStore } from '../../src/backup/store.js';
import { rollBackups, throughTunnel } from '../../src/commands/roll.js';
import { parseEnvironment } from '../../src/config/load.js';
import { etcdMembers } from '../../src/config/topology.js';
import { ConflictError } from '../../src/errors.js';
import { type BackgroundProcess, exec, spawnBackground } from '../../src/exec/index.js';
import { ensurePki, pkiPlanFor } from '../../src/secrets/pki/index.js';
import { envSshPaths, renderEnvSshConfig } from '../../src/ssh/config.js';
import { openBastionTunnel } from '../../src/ssh/tunnel.js';
import { cli } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';
import { currentUser, loopbackEnvFile, type Sshd, startSshd } from '../helpers/sshd.js';

/**
 * `--etcd-via-bastion` (src/ssh/tunnel.ts) end to end on loopback: a real OpenSSH server as
 * the bastion (127.0.0.2), a real etcd (Debian's 3.4) on the member's "ENI address"
 * 127.0.10.10 with client-certificate TLS from the environment's PKI made at test time
 * (ensurePki), the ssh config as agent-setup writes it, and the local AWS. The snapshot is
 * taken through the tunnel with the roll's own code (rollBackups → takeBackup: save, seal,
 * upload, verify), then restored by the dry run; the tunnel's ssh is gone after close and
 * after SIGTERM of its owner; a bastion that is down or unpinned is refused by name.
 */
const ENV = 'tn-test';
const moto = useMoto({ resetEach: false });
let env: TestEnvironment;
let store: BackupStore;
let work: string;
let home: string;
let secrets: string;
let sshd: Sshd;
let etcd: BackgroundProcess;
let etcdPort: number;
const cfg = parseEnvironment(ENV, loopbackEnvFile(), `environments/${ENV}.env`);
const member = etcdMembers(cfg)[0]!;
const pki = () => path.join(secrets, 'secure', 'pki');
const tls = () => ({
  etcdCacert: path.join(pki(), 'etcd', 'ca.crt'),
  etcdCert: path.join(pki(), 'apiserver-etcd-client.crt'),
  etcdKey: path.join(pki(), 'apiserver-etcd-client.key'),
});
/** the same files as the tunnel's handshake takes them */
const probe = () => ({ caFile: tls().etcdCacert, certFile: tls().etcdCert, keyFile: tls().etcdKey });

/** etcdctl against the member directly (not through the tunnel), with the API server's client certificate. */
function etcdctl(args: string[]) {
  const t = tls();
  return exec(
    'etcdctl',
    [
      `--endpoints=https://${member.ip}:${etcdPort}`,
      `--cacert=${t.etcdCacert}`,
      `--cert=${t.etcdCert}`,
      `--key=${t.etcdKey}`,
      ...args,
    ],
    { cwd: work, env: { ETCDCTL_API: '3' }, reject: false },
  );
}

/** Writes `<home>/.ssh/kube-platform/<name>.config` and its known_hosts as agent-setup does. */
function sshFiles(
  name: string,
  bastion: { host: string; port: number },
  pin?: { type: string; key: string },
) {
  const p = envSshPaths(name, home);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  writeFileSync(
    p.config,
    renderEnvSshConfig({
      env: name,
      bastion,
      user: currentUser(),
      identityFile: path.join(secrets, 'locked', 'ssh', ENV),
      knownHostsFile: p.knownHosts,
      privatePatterns: ['127.0.*'],
      privatePort: 22,
    }),
    { mode: 0o600 },
  );
  writeFileSync(p.knownHosts, pin ? `bastion-${name} ${pin.type} ${pin.key}\n` : '', { mode: 0o600 });
}

/** ssh processes on this host whose command line forwards local port `port`. */
function sshForwarding(port: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        return path.basename(argv[0] ?? '') === 'ssh' &&
          argv.includes(`127.0.0.1:${port}:${member.ip}:${etcdPort}`)
          ? [Number(d)]
          : [];
      } catch {
        return [];
      }
    });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'kp-tunnel-'));
  home = path.join(work, 'home');
  secrets = path.join(work, 'secrets');
  mkdirSync(home);
  env = await bootstrapEnvironment(moto.endpoint, ENV);
  store = new BackupStore({
    s3: await env.aws.s3(),
    keys: env.keys,
    bucket: env.names.secretsBucket,
    environment: ENV,
    kmsKeyId: env.kmsKeyArn,
  });
  // the environment's PKI (etcd CA, the members' server certificates, the API server's
  // etcd client certificate) and its SSH key, as run makes them
  await ensurePki(secrets, pkiPlanFor(cfg));
  const server = path.join(pki(), 'etcd', 'members', member.name);
  etcdPort = await freePort();
  const peer = `http://127.0.0.1:${await freePort()}`;
  const client = `https://${member.ip}:${etcdPort}`;
  etcd = await spawnBackground(
    'etcd',
    [
      `--name=${member.name}`,
      `--data-dir=${path.join(work, 'etcd-data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--cert-file=${path.join(server, 'server.crt')}`,
      `--key-file=${path.join(server, 'server.key')}`,
      `--trusted-ca-file=${tls().etcdCacert}`,
      '--client-cert-auth',
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${member.name}=${peer}`,
      '--initial-cluster-state=new',
      '--log-level=warn',
    ],
    { cwd: work, logFile: path.join(work, 'etcd.log') },
  );
  const deadline = Date.now() + 60_000;
  while ((await etcdctl(['endpoint', 'health'])).exitCode !== 0) {
    if (Date.now() > deadline)
      throw new Error(`etcd did not start:\n${readFileSync(path.join(work, 'etcd.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  for (let i = 0; i < 25; i++)
    expect((await etcdctl(['put', `/registry/tunnel/k${i}`, `v${i}`])).exitCode).toBe(0);
  const publicKey = readFileSync(path.join(secrets, 'common', 'ssh', `${ENV}.pub`), 'utf8');
  sshd = await startSshd({ host: '127.0.0.2', authorizedKeys: publicKey, logLevel: 'DEBUG1' });
  sshFiles(ENV, { host: sshd.host, port: sshd.port }, sshd.hostKey);
}, 120_000);

afterAll(async () => {
  await sshd?.stop();
  await etcd?.stop();
  env?.aws.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a snapshot through the tunnel: taken by the roll’s code, sealed, uploaded, verified, restorable; ssh gone after close', async () => {
  const tunnel = await openBastionTunnel({ env: ENV, member, remotePort: etcdPort, home, tls: probe() });
  try {
    process.stderr.write(`tunnel open in ${tunnel.openedMs} ms\n`);
    expect(tunnel.url).toBe(`https://127.0.0.1:${tunnel.localPort}`);
    expect(tunnel.localPort).not.toBe(etcdPort);
    expect(tunnel.route).toContain(`bastion-${ENV} (${envSshPaths(ENV, home).config}) to etcd-0 127.0.10.10`);
    expect(sshForwarding(tunnel.localPort)).toEqual([tunnel.pid()]);
    const backups = throughTunnel(
      await rollBackups({ ...tls(), etcdEndpoint: tunnel.url }, ENV, store),
      tunnel,
    );
    expect(backups.route).toBe(tunnel.route);
    const before = (await store.list()).length;
    const s = await backups.take!();
    expect(s.key).toMatch(/^backups\/etcd\/\d{8}T\d{6}\.\d{3}Z-pre-roll\.db$/);
    expect((await store.list()).map((b) => b.key)).toContain(s.key);
    expect((await store.list()).length).toBe(before + 1);
    // the bastion opened the channel to the member (sshd logs direct-tcpip at DEBUG1)
    expect(sshd.log()).toContain(`server_request_direct_tcpip: originator 127.0.0.1 port`);
    expect(sshd.log()).toContain(`target 127.0.10.10 port ${etcdPort}`);
    const dry = await dryRunRestore(store, s.key, { scratchParent: work });
    expect(dry.keys).toBe(25);
  } finally {
    await tunnel.close();
  }
  expect(alive(tunnel.pid())).toBe(false);
  expect(sshForwarding(tunnel.localPort)).toEqual([]);
  expect(tunnel.alive()).toBe(false);
}, 120_000);

test('a tunnel whose ssh exited is opened again on the same port before the next snapshot', async () => {
  const tunnel = await openBastionTunnel({ env: ENV, member, remotePort: etcdPort, home, tls: probe() });
  try {
    const first = tunnel.pid();
    process.kill(first, 'SIGTERM');
    for (let i = 0; i < 100 && tunnel.alive(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(tunnel.alive()).toBe(false);
    const backups = throughTunnel(
      await rollBackups({ ...tls(), etcdEndpoint: tunnel.url }, ENV, store),
      tunnel,
    );
    const s = await backups.take!();
    expect(s.key).toMatch(/-pre-roll\.db$/);
    expect(tunnel.pid()).not.toBe(first);
    expect(sshForwarding(tunnel.localPort)).toEqual([tunnel.pid()]);
  } finally {
    await tunnel.close();
  }
  expect(sshForwarding(tunnel.localPort)).toEqual([]);
}, 120_000);

test('the bastion up but the member down: refused at once (exit 3) with the bastion’s “connect failed”, no ssh left', async () => {
  // etcd-1's address: nothing listens there. Without the handshake check etcdctl 3.4 would
  // retry the tunnel's accepted-then-dropped connections until its 300 s deadline.
  const down = etcdMembers(cfg)[1]!;
  const before = (await store.list()).length;
  const started = Date.now();
  const err = await openBastionTunnel({
    env: ENV,
    member: down,
    remotePort: etcdPort,
    home,
    tls: probe(),
    consequence: 'nothing was terminated',
  }).catch((e: unknown) => e);
  expect(Date.now() - started).toBeLessThan(5000);
  expect(err).toBeInstanceOf(ConflictError);
  expect((err as ConflictError).exitCode).toBe(3);
  expect((err as Error).message).toMatch(
    new RegExp(
      `the bastion bastion-${ENV} does not reach etcd-1 ${down.ip.replaceAll('.', '\\.')}:${etcdPort} through the tunnel: .*\\(ssh: .*open failed: connect failed: Connection refused\\); nothing was terminated`,
    ),
  );
  expect((await store.list()).length).toBe(before);
  expect(
    readdirSync('/proc').some((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`:${down.ip}:${etcdPort}`);
      } catch {
        return false;
      }
    }),
  ).toBe(false);
}, 60_000);

test('the handshake through the tunnel is verified: trusting another CA (the Kubernetes CA) it refuses the member', async () => {
  const err = await openBastionTunnel({
    env: ENV,
    member,
    remotePort: etcdPort,
    home,
    tls: { ...probe(), caFile: path.join(pki(), 'ca.crt') },
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConflictError);
  expect((err as Error).message).toMatch(
    /does not reach etcd-0 127\.0\.10\.10:\d+ through the tunnel: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|.*unable to verify)/i,
  );
}, 60_000);

test('the bastion down: ConflictError (exit 3) naming it and the fix, no snapshot, no ssh left', async () => {
  const closed = await freePort(); // nothing listens there
  sshFiles('tn-down', { host: '127.0.0.3', port: closed }, sshd.hostKey);
  const before = (await store.list()).length;
  const started = Date.now();
  const err = await openBastionTunnel({ env: 'tn-down', member, remotePort: etcdPort, home }).catch(
    (e: unknown) => e,
  );
  expect(Date.now() - started).toBeLessThan(15_000);
  expect(err).toBeInstanceOf(ConflictError);
  expect((err as ConflictError).exitCode).toBe(3);
  const msg = (err as Error).message;
  expect(msg).toContain(`bastion bastion-tn-down (127.0.0.3:${closed})`);
  expect(msg).toMatch(/ssh exited with code 255: .*Connection refused/);
  expect((err as ConflictError).hint).toContain('eval "$(agent-setup -e tn-down)"');
  expect((await store.list()).length).toBe(before);
  expect(
    readdirSync('/proc').some((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`bastion-tn-down`);
      } catch {
        return false;
      }
    }),
  ).toBe(false);
}, 60_000);

test('a bastion whose host key is not pinned: refused without a prompt (BatchMode, StrictHostKeyChecking)', async () => {
  sshFiles('tn-unpinned', { host: sshd.host, port: sshd.port });
  const err = await openBastionTunnel({ env: 'tn-unpinned', member, remotePort: etcdPort, home }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConflictError);
  expect((err as Error).message).toContain(`bastion bastion-tn-unpinned (${sshd.host}:${sshd.port})`);
  expect((err as Error).message).toMatch(/Host key verification failed|No .* host key is known/);
}, 60_000);

test('SIGTERM to the process holding the tunnel: its ssh goes too', async () => {
  const dist = path.resolve(import.meta.dirname, '..', '..', 'src');
  const script = `
import { openBastionTunnel } from ${JSON.stringify(path.join(dist, 'ssh', 'tunnel.js'))};
const t = await openBastionTunnel(${JSON.stringify({ env: ENV, member, remotePort: etcdPort, home })});
process.stdout.write(JSON.stringify({ pid: t.pid(), port: t.localPort }) + '\\n');
setInterval(() => {}, 1000);
`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
  });
  const { pid, port } = JSON.parse(line) as { pid: number; port: number };
  expect(sshForwarding(port)).toEqual([pid]);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  expect(alive(pid)).toBe(false);
  expect(sshForwarding(port)).toEqual([]);
}, 60_000);

test('roll and upgrade: --etcd-via-bastion and --etcd-endpoint together are refused by the CLI (exit 2)', async () => {
  for (const args of [
    ['roll', '-e', ENV, 'secure', '--etcd-via-bastion', '--etcd-endpoint', 'https://127.0.0.1:2379'],
    [
      'upgrade',
      '-e',
      ENV,
      '--to',
      'v1.35.0',
      '--etcd-via-bastion',
      '--etcd-endpoint',
      'https://127.0.0.1:2379',
    ],
  ]) {
    const r = await cli(args, {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--etcd-via-bastion.*cannot be used with.*--etcd-endpoint|--etcd-endpoint.*cannot be used with.*--etcd-via-bastion/,
    );
  }
}, 60_000);

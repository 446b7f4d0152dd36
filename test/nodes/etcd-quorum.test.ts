import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { etcdMembers } from '../../src/config/topology.js';
import { setLogSink } from '../../src/log.js';
import { Harness } from './harness.js';
import { claim, fromSecrets, type Masters, nodeTestTools, prepareMasters, startEtcd } from './masters.js';

/**
 * A master's boot-time network and etcd steps, run for real (issue 9; DESIGN.md §6): for an
 * environment of 3 masters (then 1, then 5), platform/terraform is applied against a local
 * AWS, test hosts are laid out from what the apply made (./harness.ts), each host runs the
 * claim script exactly as its launch template ships it (kp-etcd-claim from the gunzipped
 * user data: its AWS steps against the local AWS with the awscli, its `ip` steps in the
 * host's namespace, its volume step on a loop device), then Debian's etcd runs with the
 * command line and mounts of the rendered etcd static pod, reading the PKI from
 * /etc/kubernetes where manifest-sync puts `secure/` and `common/`.
 *
 * etcd here is Debian's 3.4.23; the nodes run v3.6.4. What 3.4 cannot show: the metrics
 * listener's /livez and /readyz (the static pod's probes) exist only from v3.5.11, so the
 * probes are not exercised here; /health on the same listener is checked instead.
 * The sandbox has no udev: `udevadm settle` is a no-op stand-in on the script's PATH.
 */

const work = mkdtempSync(path.join(os.tmpdir(), 'kp-nodes-'));
const harness = new Harness(work);
const QUORUM_TIMEOUT_MS = 60_000;
let restoreLog: () => void;
let stubBin: string;
let sshPublicKey: string;

const etcdLog = (env: Masters, member: string) =>
  readFile(path.join(work, `etcd-${env.tag}-${member}.log`), 'utf8').catch(() => '');

/** etcdctl as the API server uses etcd: its client certificate, CA and --etcd-servers, from master 0. */
function etcdctl(
  env: Masters,
  args: string[],
  opts: { endpoints?: string[]; cert?: string; key?: string } = {},
) {
  return (async () => {
    const endpoints = opts.endpoints ?? env.apiserver.get('etcd-servers')!.split(',');
    const file = (flag: string) => fromSecrets(env.secrets, env.apiserver.get(flag)!);
    return harness.inNs(
      env.hosts[0]!.ns,
      'etcdctl',
      [
        `--endpoints=${endpoints.join(',')}`,
        `--cacert=${await file('etcd-cafile')}`,
        `--cert=${opts.cert ?? (await file('etcd-certfile'))}`,
        `--key=${opts.key ?? (await file('etcd-keyfile'))}`,
        '--dial-timeout=2s',
        '--command-timeout=3s',
        ...args,
      ],
      { env: { ETCDCTL_API: '3' }, reject: false },
    );
  })();
}

const urlOf = (env: Masters, member: string) =>
  `https://${etcdMembers(env.cfg).find((m) => m.name === member)!.ip}:2379`;

/** Waits until every --etcd-servers endpoint is healthy; returns seconds, or throws with what etcd logged. */
async function waitForQuorum(env: Masters, t0: number): Promise<number> {
  for (;;) {
    const r = await etcdctl(env, ['endpoint', 'health']);
    if (r.exitCode === 0) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > QUORUM_TIMEOUT_MS) {
      const rejected: string[] = [];
      for (const h of env.hosts)
        rejected.push(
          ...(await etcdLog(env, h.member))
            .split('\n')
            .filter((l) => /rejected connection|panic:| C \| /.test(l))
            .slice(0, 2),
        );
      throw new Error(
        `no quorum of ${env.hosts.length} within ${QUORUM_TIMEOUT_MS / 1000} s:\n${r.stdout}${r.stderr}\netcd logged:\n${rejected.join('\n') || '(no rejected connection, no panic)'}`,
      );
    }
    await new Promise((res) => setTimeout(res, 250));
  }
}

async function bringUp(env: Masters): Promise<number> {
  const claims = await claim(harness, env, stubBin);
  for (const c of claims)
    expect([c.member, c.exitCode, c.stderr.split('\n').at(-1)]).toEqual([
      c.member,
      0,
      expect.stringMatching(`^kp-etcd-claim: claimed ${c.member}: ENI eni-`),
    ]);
  const t0 = Date.now();
  for (const h of env.hosts) await startEtcd(harness, env, h);
  const seconds = await waitForQuorum(env, t0);
  process.stderr.write(
    `etcd ${env.hosts.length}/${env.hosts.length} members (${env.cfg.name}): quorum ${seconds.toFixed(2)} s after start; terraform init+apply ${env.applied.applySeconds.toFixed(1)} s\n`,
  );
  return seconds;
}

async function tearDown(env: Masters | undefined): Promise<void> {
  if (!env) return;
  for (const p of env.etcd.values()) await p.stop(3000);
  await harness.removeHosts(env.hosts);
}

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  ({ stubBin, sshPublicKey } = await nodeTestTools(harness, work, 'kp-nodes'));
  await harness.start();
}, 120_000);

afterAll(async () => {
  await harness.destroy();
  restoreLog();
  await rm(work, { recursive: true, force: true });
}, 120_000);

describe('3 masters', () => {
  let env: Masters;
  beforeAll(async () => {
    env = await prepareMasters(harness, work, 3, '3', sshPublicKey);
  }, 300_000);
  afterAll(() => tearDown(env), 60_000);

  test('the claim script, as shipped, claims each member ENI and volume and writes the etcd config', async () => {
    const claims = await claim(harness, env, stubBin);
    for (const c of claims)
      expect([c.member, c.exitCode, c.stderr]).toEqual([
        c.member,
        0,
        expect.stringContaining(`kp-etcd-claim: claimed ${c.member}: ENI eni-`),
      ]);
    for (const h of env.hosts) {
      // the ENI and volume are attached to this instance in the local AWS
      const eni = await harness.aws<{
        NetworkInterfaces: { Attachment?: { InstanceId: string; DeviceIndex: number } }[];
      }>(['ec2', 'describe-network-interfaces', '--network-interface-ids', h.eni.id]);
      expect(eni.NetworkInterfaces[0]!.Attachment).toMatchObject({
        InstanceId: h.instance.id,
        DeviceIndex: 1,
      });
      // the ENI interface carries the member address, with a src route to every other member
      const addr = await harness.onHost(h, 'ip', ['-o', '-4', 'addr', 'show']);
      expect(addr.stdout).toContain(`inet ${h.eni.ip}/24`);
      for (const peer of env.hosts.filter((p) => p !== h)) {
        const route = await harness.onHost(h, 'ip', ['route', 'get', peer.eni.ip]);
        expect([peer.member, route.stdout]).toEqual([
          peer.member,
          expect.stringContaining(`src ${h.eni.ip}`),
        ]);
      }
      // its etcd config, as etcd will read it, and its volume mounted on /var/lib/etcd
      const cfg = parseYaml(await readFile(path.join(h.etcKubernetes, 'etcd', 'config.yaml'), 'utf8'));
      expect(cfg).toMatchObject({
        name: h.member,
        'listen-peer-urls': `https://${h.eni.ip}:2380`,
        'initial-cluster': etcdMembers(env.cfg)
          .map((m) => `${m.name}=https://${m.ip}:2380`)
          .join(','),
        'peer-transport-security': { 'client-cert-auth': true },
        'client-transport-security': { 'client-cert-auth': true },
      });
      const mount = await harness.onHost(h, 'findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '/var/lib/etcd']);
      expect(mount.stdout.trim()).toBe(`${h.device} ext4`);
    }
  }, 300_000);

  test('the members form a quorum with mutual TLS; put and get through the API server --etcd-servers', async () => {
    const t0 = Date.now();
    for (const h of env.hosts) await startEtcd(harness, env, h);
    const seconds = await waitForQuorum(env, t0);
    process.stderr.write(
      `etcd 3/3 members (${env.cfg.name}): quorum ${seconds.toFixed(2)} s after start; terraform init+apply ${env.applied.applySeconds.toFixed(1)} s\n`,
    );
    expect((await etcdctl(env, ['put', '/registry/kp-nodes/a', 'one'])).stdout.trim()).toBe('OK');
    const got = await etcdctl(env, ['get', '/registry/kp-nodes/a', '--print-value-only']);
    expect(got.stdout.trim()).toBe('one');
    const members = JSON.parse((await etcdctl(env, ['member', 'list', '-w', 'json'])).stdout);
    expect(members.members.map((m: { name: string }) => m.name).sort()).toEqual([
      'etcd-0',
      'etcd-1',
      'etcd-2',
    ]);
    // the metrics listener on the host's loopback (3.4: /health; /livez and /readyz from 3.5.11)
    const health = await harness.onHost(env.hosts[0]!, 'curl', ['-sf', 'http://127.0.0.1:2381/health']);
    expect(JSON.parse(health.stdout)).toMatchObject({ health: 'true' });
  }, 120_000);

  test('a client certificate of the Kubernetes CA is refused', async () => {
    const kubelet = await fromSecrets(env.secrets, env.apiserver.get('kubelet-client-certificate')!);
    const kubeletKey = await fromSecrets(env.secrets, env.apiserver.get('kubelet-client-key')!);
    const r = await etcdctl(env, ['put', '/registry/kp-nodes/b', 'x'], {
      cert: kubelet,
      key: kubeletKey,
      endpoints: [urlOf(env, 'etcd-0')],
    });
    expect(r.exitCode).not.toBe(0);
    expect(await etcdLog(env, 'etcd-0')).toMatch(
      /rejected connection from .*(bad certificate|unknown authority)/,
    );
  }, 60_000);

  test('one member killed: the other two keep serving writes; restarted on the same volume it is the same member with the data', async () => {
    const victim = env.hosts[2]!;
    const before = JSON.parse(
      (await etcdctl(env, ['endpoint', 'status', '-w', 'json'], { endpoints: [urlOf(env, victim.member)] }))
        .stdout,
    );
    const id = before[0].Status.header.member_id;
    await harness.run('kill', ['-KILL', String(env.etcd.get(victim.member)!.pid)]);
    await env.etcd.get(victim.member)!.stop();
    const rest = env.hosts.slice(0, 2).map((h) => urlOf(env, h.member));
    // if the victim led, the two elect a new leader first (election timeout, then a vote): a
    // write is retried until then, bounded; the quorum of two must then take it
    const putDeadline = Date.now() + 30_000;
    let put = await etcdctl(env, ['put', '/registry/kp-nodes/while-down', 'two'], { endpoints: rest });
    while (put.exitCode !== 0 && Date.now() < putDeadline) {
      await new Promise((res) => setTimeout(res, 500));
      put = await etcdctl(env, ['put', '/registry/kp-nodes/while-down', 'two'], { endpoints: rest });
    }
    expect([put.exitCode, put.stdout.trim(), put.exitCode ? put.stderr : '']).toEqual([0, 'OK', '']);

    await startEtcd(harness, env, victim);
    const deadline = Date.now() + 30_000;
    let value = '';
    while (Date.now() < deadline) {
      // a serializable read answers from the member's own data
      const r = await etcdctl(
        env,
        ['get', '/registry/kp-nodes/while-down', '--print-value-only', '--consistency=s'],
        { endpoints: [urlOf(env, victim.member)] },
      );
      value = r.stdout.trim();
      if (value === 'two') break;
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(value).toBe('two');
    const old = await etcdctl(env, ['get', '/registry/kp-nodes/a', '--print-value-only', '--consistency=s'], {
      endpoints: [urlOf(env, victim.member)],
    });
    expect(old.stdout.trim()).toBe('one');
    const after = JSON.parse(
      (await etcdctl(env, ['endpoint', 'status', '-w', 'json'], { endpoints: [urlOf(env, victim.member)] }))
        .stdout,
    );
    expect(after[0].Status.header.member_id).toBe(id);
    expect((await etcdctl(env, ['member', 'list', '-w', 'json'])).stdout).not.toContain('"isLearner":true');
    expect(JSON.parse((await etcdctl(env, ['member', 'list', '-w', 'json'])).stdout).members).toHaveLength(3);
  }, 120_000);

  test('two members down: writes fail (no quorum)', async () => {
    for (const h of env.hosts.slice(1)) {
      await env.etcd.get(h.member)!.stop();
      env.etcd.delete(h.member);
    }
    const r = await etcdctl(env, ['put', '/registry/kp-nodes/no-quorum', 'x'], {
      endpoints: [urlOf(env, 'etcd-0')],
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/context deadline exceeded|timed out|no leader/);
  }, 60_000);
});

describe.each([1, 5])('%i master(s)', (masters) => {
  let env: Masters | undefined;
  afterAll(() => tearDown(env), 60_000);

  test('the shipped claim script and the rendered etcd pod form a cluster of every member', async () => {
    env = await prepareMasters(harness, work, masters, String(masters), sshPublicKey);
    expect(env.hosts).toHaveLength(masters);
    await bringUp(env);
    const members = JSON.parse((await etcdctl(env, ['member', 'list', '-w', 'json'])).stdout).members;
    expect(members).toHaveLength(masters);
    expect((await etcdctl(env, ['put', '/registry/kp-nodes/n', String(masters)])).stdout.trim()).toBe('OK');
  }, 420_000);
});

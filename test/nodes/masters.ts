import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import path from 'node:path';
import {
  DescribeInstancesCommand,
  DetachNetworkInterfaceCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import { parse as parseYaml } from 'yaml';
import type { AwsClients } from '../../src/aws/clients.js';
import { describeFleetInstances } from '../../src/aws/fleet.js';
import { type EnvConfig, parseEnvironment } from '../../src/config/load.js';
import { etcdMembers } from '../../src/config/topology.js';
import type { BackgroundProcess } from '../../src/exec/index.js';
import { manifestValues, renderTree } from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { ensurePki, pkiPlanFor } from '../../src/secrets/pki/index.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';
import { type Applied, type Harness, type Host, masterEtcFiles, REGION, writeFileOf } from './harness.js';

/**
 * Masters on the node harness (./harness.ts), shared by the tests that drive them: an
 * environment applied and laid out, the shipped claim script, etcd run as its static pod
 * says, each master's real agent (dist/agent/manifest-sync.mjs) reporting its member's
 * health to the bucket, and {@link MasterCloud}: what EC2 does to a master the roll
 * terminates — its processes stop (SIGTERM, as at shutdown: etcd hands its leadership on),
 * its ENI and volume are detached — and what the ASG's replacement does when it boots on the
 * same test host: the new instance's address on the primary interface, the claim script
 * (the member's ENI address and volume, so etcd starts again from the same data directory),
 * etcd, the agent.
 */

const root = toolkitRoot();
const PLAY_ENV = readFileSync(path.join(root, 'environments', 'play.env'), 'utf8');

/** The rendered etcd static pod, as startEtcd needs it. */
export interface EtcdPod {
  spec: {
    containers: {
      command: string[];
      volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
    }[];
    volumes: { name: string; hostPath: { path: string; type: string } }[];
  };
}

/** One environment of masters under test. */
export interface Masters {
  cfg: EnvConfig;
  tag: string;
  secrets: string;
  applied: Applied;
  hosts: Host[];
  etcd: Map<string, BackgroundProcess>;
  agents: Map<string, BackgroundProcess>;
  apiserver: Map<string, string>;
  etcdPod: EtcdPod;
  /** the rendered secure-layer manifests (what `run` publishes), path → text */
  secureManifests: Map<string, string>;
}

/**
 * What every node test needs before its harness starts: `<work>/bin` with a no-op `udevadm`
 * (the sandbox has no udev: the claim script's `udevadm settle` has nothing to wait for) and
 * an ed25519 key pair generated now, `<work>/id{,.pub}` (comment `comment`).
 * @returns the stub directory (for {@link claim}) and the public key (for {@link prepareMasters})
 */
export async function nodeTestTools(
  h: Harness,
  work: string,
  comment: string,
): Promise<{ stubBin: string; sshPublicKey: string }> {
  const stubBin = path.join(work, 'bin');
  await mkdir(stubBin);
  await writeFile(
    path.join(stubBin, 'udevadm'),
    '#!/bin/sh\n# no udev in the sandbox: nothing to settle\nexit 0\n',
  );
  await chmod(path.join(stubBin, 'udevadm'), 0o755);
  await h.run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path.join(work, 'id')]);
  return { stubBin, sshPublicKey: await readFile(path.join(work, 'id.pub'), 'utf8') };
}

/** environments/play.env with MASTER_COUNT set, named `kpn-<suffix>-<tag>` */
export function mastersConfig(h: Harness, masters: number, tag: string): EnvConfig {
  const text = PLAY_ENV.replace(/^MASTER_COUNT=.*$/m, `MASTER_COUNT=${masters}`);
  return parseEnvironment(`kpn-${h.suffix}-${tag}`, text, 'environments/play.env');
}

/** Applies and lays out `masters` masters with the PKI and rendered pods of `run`. */
export async function prepareMasters(
  h: Harness,
  work: string,
  masters: number,
  tag: string,
  sshPublicKey: string,
): Promise<Masters> {
  const cfg = mastersConfig(h, masters, tag);
  const secrets = path.join(work, `secrets-${tag}`);
  await ensurePki(secrets, pkiPlanFor(cfg));
  const files = await renderTree(path.join(root, 'platform', 'manifests'), manifestValues(cfg, FIXTURE_PKI));
  const pod = (name: string) =>
    parseYaml(files.find((f) => f.path === `secure/manifests/${name}.yaml`)!.content);
  const apiserver = new Map<string, string>(
    (pod('kube-apiserver').spec.containers[0].command as string[])
      .slice(1)
      .map((a) => /^--([^=]+)=(.*)$/.exec(a)!.slice(1) as [string, string]),
  );
  const applied = await h.apply(cfg, sshPublicKey);
  const hosts = await h.layout(tag, applied, await masterEtcFiles(secrets));
  const secureManifests = new Map(
    files.filter((f) => f.path.startsWith('secure/manifests/')).map((f) => [f.path.slice(7), f.content]),
  );
  return {
    cfg,
    tag,
    secrets,
    applied,
    hosts,
    etcd: new Map(),
    agents: new Map(),
    apiserver,
    etcdPod: pod('etcd'),
    secureManifests,
  };
}

/** Runs the shipped kp-etcd-claim on `hosts` (default all) at once. */
export async function claim(h: Harness, m: Masters, stubBin: string, hosts = m.hosts) {
  const file = path.join(h.work, `kp-etcd-claim-${m.tag}`);
  await writeFile(file, writeFileOf(m.applied.masterUserData, '/usr/local/sbin/kp-etcd-claim'), {
    mode: 0o755,
  });
  const results = await Promise.all(
    hosts.map((host) =>
      h.onHost(host, 'timeout', ['120', file], { env: h.claimEnv(host, stubBin), reject: false }),
    ),
  );
  return results.map((r, i) => ({ member: hosts[i]!.member, ...r }));
}

/**
 * Starts a member's etcd as the kubelet would run the rendered static pod: each volumeMount
 * bind-mounted from its hostPath in a mount namespace of its own on the host, then the
 * container's command (see etcd-quorum.test.ts).
 */
export async function startEtcd(h: Harness, m: Masters, host: Host): Promise<void> {
  const container = m.etcdPod.spec.containers[0]!;
  const lines = ['set -eu'];
  for (const vm of container.volumeMounts) {
    const v = m.etcdPod.spec.volumes.find((v) => v.name === vm.name)!.hostPath;
    if (v.type === 'DirectoryOrCreate') lines.push(`mkdir -p ${v.path}`);
    else lines.push(`[ -d ${v.path} ] || { echo "hostPath ${v.path} (${v.type}) missing" >&2; exit 1; }`);
    lines.push(`mkdir -p ${vm.mountPath}`, `mount --bind ${v.path} ${vm.mountPath}`);
    if (vm.readOnly) lines.push(`mount -o remount,bind,ro ${vm.mountPath}`);
  }
  lines.push('exec "$@"');
  const p = await h.spawnOnHost(host, `etcd-${m.tag}-${host.member}`, 'unshare', [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    lines.join('\n'),
    'sh',
    ...container.command,
  ]);
  m.etcd.set(host.member, p);
}

/**
 * Starts the master's node agent, as its systemd unit does (node mode: instance id from the
 * IMDS double, the bucket through the subnet's router), syncing the secure layer into a
 * scratch --dest and reporting status with the local member's health every `heartbeatS`.
 */
export async function startAgent(
  h: Harness,
  m: Masters,
  host: Host,
  o: { bucket: string; stubBin: string; heartbeatS: number },
): Promise<void> {
  const dir = path.join(h.work, host.ns, 'agent');
  await mkdir(path.join(dir, 'manifests'), { recursive: true });
  await mkdir(path.join(dir, 'state'), { recursive: true });
  // the agent asks IMDS for its instance id (the double answers by source address)
  const env = { ...h.claimEnv(host, o.stubBin), AWS_EC2_METADATA_DISABLED: 'false' };
  const p = await h.spawnOnHost(
    host,
    `agent-${m.tag}-${host.member}`,
    process.execPath,
    [
      path.join(root, 'dist', 'agent', 'manifest-sync.mjs'),
      '--environment',
      m.cfg.name,
      '--bucket',
      o.bucket,
      '--region',
      REGION,
      '--layer',
      'secure',
      '--dest',
      path.join(dir, 'manifests'),
      '--state-dir',
      path.join(dir, 'state'),
      '--interval',
      '1',
      '--heartbeat',
      String(o.heartbeatS),
    ],
    env,
  );
  m.agents.set(host.member, p);
}

/** The file manifest-sync installs at `/etc/kubernetes/<rest>`, in the secrets working copy. */
export async function fromSecrets(secrets: string, nodePath: string): Promise<string> {
  const rest = nodePath.replace(/^\/etc\/kubernetes\//, '');
  for (const layer of ['secure', 'common']) {
    const p = path.join(secrets, layer, rest);
    if (
      await readFile(p).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  throw new Error(`${nodePath} comes from no layer of ${secrets}`);
}

/** The member's client URL (its ENI address). */
export const clientUrl = (m: Masters, member: string) =>
  `https://${etcdMembers(m.cfg).find((x) => x.name === member)!.ip}:2379`;

/** The API server's etcd client files (CA, certificate, key) in the working copy. */
export async function etcdClientFiles(m: Masters) {
  const f = (flag: string) => fromSecrets(m.secrets, m.apiserver.get(flag)!);
  return { cacert: await f('etcd-cafile'), cert: await f('etcd-certfile'), key: await f('etcd-keyfile') };
}

/**
 * etcdctl from the router namespace (it reaches every member's ENI address), with the API
 * server's etcd client certificate; `endpoints` default: every member.
 */
export async function etcdctl(h: Harness, m: Masters, args: string[], endpoints?: string[]) {
  const files = await etcdClientFiles(m);
  return h.inNs(
    h.router,
    'etcdctl',
    [
      `--endpoints=${(endpoints ?? m.hosts.map((x) => clientUrl(m, x.member))).join(',')}`,
      `--cacert=${files.cacert}`,
      `--cert=${files.cert}`,
      `--key=${files.key}`,
      '--dial-timeout=1s',
      '--command-timeout=2s',
      ...args,
    ],
    { env: { ETCDCTL_API: '3' }, reject: false, timeoutMs: 10_000 },
  );
}

/**
 * How many members answer `etcdctl endpoint health` (a linearizable read through each
 * member: it fails on a member without a leader), and which.
 */
export async function healthyMembers(h: Harness, m: Masters): Promise<string[]> {
  const r = await etcdctl(h, m, ['endpoint', 'health', '-w', 'json']);
  let rows: { endpoint: string; health: boolean }[] = [];
  try {
    rows = JSON.parse(r.stdout) as typeof rows;
  } catch {
    return [];
  }
  return rows
    .filter((x) => x.health)
    .map((x) => m.hosts.find((host) => clientUrl(m, host.member) === x.endpoint)?.member ?? x.endpoint)
    .sort();
}

/** Waits until every member is healthy; @returns seconds */
export async function waitForAllHealthy(h: Harness, m: Masters, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if ((await healthyMembers(h, m)).length === m.hosts.length) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`not every etcd member of ${m.cfg.name} healthy in time`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A loopback TCP port in this process's namespace piped to a Unix socket (the far end of
 * ./unix-bridge.ts in the router namespace).
 */
export async function tcpToUnix(socket: string): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<import('node:net').Socket>();
  const server: Server = createServer((c) => {
    const up = connect(socket);
    open.add(c).add(up);
    c.on('close', () => open.delete(c));
    up.on('close', () => open.delete(up));
    c.pipe(up).pipe(c);
    const close = () => {
      c.destroy();
      up.destroy();
    };
    c.on('error', close);
    up.on('error', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const x of open) x.destroy();
      }),
  };
}

/**
 * A route from this process to `host:port` of the router namespace: the forwarder there
 * and a loopback port here. @returns the local port
 */
export async function bridge(
  h: Harness,
  name: string,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const socket = path.join(h.work, `${name}.sock`);
  await h.spawnInRouter(`bridge-${name}`, process.execPath, [
    path.join(root, 'dist', 'test', 'nodes', 'unix-bridge.js'),
    socket,
    host,
    String(port),
  ]);
  for (let i = 0; ; i++) {
    const up = await readFile(path.join(h.work, `bridge-${name}.log`), 'utf8').catch(() => '');
    if (up.includes('bridge ')) break;
    if (i > 100) throw new Error(`the bridge to ${host}:${port} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return tcpToUnix(socket);
}

/** One master replacement as {@link MasterCloud} played it. */
export interface CloudEvent {
  member: string;
  old: string;
  new: string;
  /** ms since the epoch: the old instance seen terminated, its processes stopped, the new one's etcd started */
  terminatedAt: number;
  stoppedAt: number;
  startedAt: number;
}

/**
 * EC2 and the ASGs' replacements for the masters (see the module comment). Polls the local
 * AWS every `pollMs`; a host whose instance is no longer running is "shut down" and its
 * ASG's new instance "booted" on it.
 */
export class MasterCloud {
  readonly events: CloudEvent[] = [];
  readonly errors: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = new Set<string>();
  #stopped = false;
  #running: Promise<unknown>[] = [];

  constructor(
    private readonly h: Harness,
    private readonly m: Masters,
    private readonly aws: AwsClients,
    private readonly o: { bucket: string; stubBin: string; heartbeatS: number; pollMs?: number },
  ) {}

  start(): void {
    const tick = async () => {
      if (this.#stopped) return;
      try {
        const instances = await describeFleetInstances(this.aws, this.m.cfg.name);
        for (const host of this.m.hosts) {
          if (this.#busy.has(host.member)) continue;
          const i = instances.find((x) => x.instanceId === host.instance.id);
          if (i && i.state === 'running') continue;
          this.#busy.add(host.member);
          const p = this.#replace(host, i?.asg ?? null)
            .catch((e) => this.errors.push(`${host.member}: ${(e as Error).message}`))
            .finally(() => this.#busy.delete(host.member));
          this.#running.push(p);
        }
      } catch (e) {
        this.errors.push(`poll: ${(e as Error).message}`);
      }
      if (!this.#stopped) this.#timer = setTimeout(() => void tick(), this.o.pollMs ?? 500);
    };
    void tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await Promise.all(this.#running);
  }

  async #replace(host: Host, asg: string | null): Promise<void> {
    const terminatedAt = Date.now();
    const old = host.instance.id;
    // shutdown: SIGTERM to the agent and etcd (etcd transfers its leadership when it leads)
    await this.m.agents.get(host.member)?.stop(5000);
    await this.m.etcd.get(host.member)?.stop(10_000);
    this.m.etcd.delete(host.member);
    // what detaching takes away on EC2: the volume's mount, the ENI's address
    await this.h.onHost(host, 'umount', ['/var/lib/etcd'], { reject: false });
    const links = (await this.h.onHost(host, 'ip', ['-o', 'link'])).stdout;
    const eniIface = links
      .split('\n')
      .find((l) => l.includes(host.eni.mac))
      ?.split(':')[1]
      ?.trim()
      .split('@')[0];
    if (eniIface) {
      await this.h.onHost(host, 'ip', ['addr', 'flush', 'dev', eniIface], { reject: false });
      await this.h.onHost(host, 'ip', ['link', 'set', eniIface, 'down'], { reject: false });
    }
    const stoppedAt = Date.now();
    // EC2 detaches what was attached to a terminated instance (moto may keep the attachments)
    const ec2 = await this.aws.ec2();
    const { DescribeNetworkInterfacesCommand, DescribeVolumesCommand } = await import('@aws-sdk/client-ec2');
    const eni = (await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [host.eni.id] })))
      .NetworkInterfaces?.[0];
    if (eni?.Attachment?.InstanceId === old && eni.Attachment.AttachmentId) {
      await ec2.send(
        new DetachNetworkInterfaceCommand({ AttachmentId: eni.Attachment.AttachmentId, Force: true }),
      );
    }
    const vols = (
      await ec2.send(
        new DescribeVolumesCommand({
          Filters: [
            { Name: 'tag:Environment', Values: [this.m.cfg.name] },
            { Name: 'tag:EtcdMember', Values: [host.member] },
          ],
        }),
      )
    ).Volumes;
    for (const v of vols ?? []) {
      if (v.Attachments?.[0]?.InstanceId === old) {
        await ec2.send(new DetachVolumeCommand({ VolumeId: v.VolumeId!, InstanceId: old, Force: true }));
      }
    }
    // the ASG's replacement boots on this host
    const deadline = Date.now() + 120_000;
    let fresh: { id: string; ip: string; mac: string } | undefined;
    while (!fresh) {
      const all = await describeFleetInstances(this.aws, this.m.cfg.name);
      const known = new Set([...this.m.hosts.map((x) => x.instance.id), ...this.events.map((e) => e.old)]);
      // the member's ASG's new instance (its EtcdMember tag propagated from the ASG)
      const n = all.find(
        (x) =>
          (x.asg === asg || x.etcdMember === host.member) &&
          x.state === 'running' &&
          !known.has(x.instanceId),
      );
      if (n) {
        const d = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [n.instanceId] }));
        const inst = d.Reservations![0]!.Instances![0]!;
        fresh = {
          id: n.instanceId,
          ip: inst.PrivateIpAddress!,
          mac: inst.NetworkInterfaces![0]!.MacAddress!,
        };
        break;
      }
      if (Date.now() > deadline) throw new Error(`no replacement for ${old} in ${asg}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await this.h.reassign(host, { ...host.instance, id: fresh.id, ip: fresh.ip, mac: fresh.mac });
    const [c] = await claim(this.h, this.m, this.o.stubBin, [host]);
    if (c!.exitCode !== 0) throw new Error(`the claim script failed on ${fresh.id}: ${c!.stderr}`);
    await startEtcd(this.h, this.m, host);
    await startAgent(this.h, this.m, host, this.o);
    this.events.push({
      member: host.member,
      old,
      new: fresh.id,
      terminatedAt,
      stoppedAt,
      startedAt: Date.now(),
    });
  }
}

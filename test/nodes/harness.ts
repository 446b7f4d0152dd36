import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse as parseYaml } from 'yaml';
import type { EnvConfig } from '../../src/config/load.js';
import {
  type BackgroundProcess,
  type ExecResult,
  exec,
  spawnBackground,
  which,
} from '../../src/exec/index.js';
import { listFiles } from '../../src/fsutil.js';
import { toolkitRoot } from '../../src/paths.js';
import { type TfVars, tfVars } from '../../src/terraform/vars.js';

/**
 * The node harness: test hosts made of Linux network namespaces (plus a mount namespace
 * each), laid out from a real `terraform apply` against a local AWS, on which a master's
 * boot-time steps run for real (issue 9). Everything it creates is named `kpn<suffix>...`
 * with a random per-run suffix, and removed by {@link Harness.destroy}. Traffic stays in
 * the namespaces it made:
 *
 *   router namespace  `kpn<s>-r`: stands in for the VPC. moto_server listens on 0.0.0.0:5000
 *                     here (terraform and the awscli reach it on 127.0.0.1, test hosts on
 *                     their subnet's router address), an IMDSv2 double on 169.254.169.254:80
 *                     (an address of this namespace's loopback), and one bridge per secure
 *                     subnet holding the subnet's router address (its first host, as in a VPC);
 *   test host         `kpn<s>-<env>m<i>`, one per master: the primary interface (the
 *                     instance's MAC and private address, default route via the subnet's
 *                     router) and a second interface with the MAC of the member's ENI, down
 *                     and unaddressed until the claim script configures it (on EC2 it appears
 *                     when the script attaches the ENI; here it is there from the start, and
 *                     the script finds it by MAC either way). A long-lived `sleep` holds a
 *                     private mount namespace per host, where /etc/kubernetes is the host's
 *                     directory and the member's volume (a loop device on an image file) is
 *                     mounted by the script on /var/lib/etcd.
 *
 * Needs root, iproute2, util-linux (unshare, nsenter, losetup), e2fsprogs, moto_server, the
 * awscli, terraform with the AWS provider mirror, and etcd (`.ci/check-tools`).
 */

export const REGION = 'eu-west-1';
const MOTO_PORT = 5000;
export const IMDS_ADDRESS = '169.254.169.254';
const AWS_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_DEFAULT_REGION: REGION,
  AWS_EC2_METADATA_DISABLED: 'true',
};

/** One instance as the local AWS reports it after the apply. */
export interface Instance {
  id: string;
  ip: string;
  mac: string;
  subnetCidr: string;
  member: string;
}

/** One etcd member's ENI. */
export interface Eni {
  id: string;
  ip: string;
  mac: string;
  subnetCidr: string;
  member: string;
}

/** A test host: a master's network namespace, mount namespace and volume. */
export interface Host {
  member: string;
  ns: string;
  instance: Instance;
  eni: Eni;
  /** pid of the process holding the host's mount namespace (nsenter -t) */
  holder: number;
  /** the host's /etc/kubernetes, on this machine's disk */
  etcKubernetes: string;
  /** the loop device standing for the member's EBS volume */
  device: string;
  /** the subnet router's address, where the host reaches the local AWS */
  gateway: string;
  /** the primary interface's name inside the host's namespace */
  primaryIface: string;
}

/** What an environment's apply produced, read back from the local AWS. */
export interface Applied {
  instances: Instance[];
  enis: Eni[];
  /** the masters' user data as shipped in their launch template: base64 → gunzip → text */
  masterUserData: string;
  /** seconds the init + apply took */
  applySeconds: number;
}

const cidrHost = (cidr: string, n: number): string => {
  const [base, bits] = cidr.split('/') as [string, string];
  const v = base.split('.').reduce((a, o) => a * 256 + Number(o), 0) + n;
  void bits;
  return [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
};
const prefixOf = (cidr: string) => cidr.split('/')[1]!;

/**
 * The directories every harness on this machine shares: the mount points of the hosts'
 * /etc/kubernetes and /var/lib/etcd (bind-mounted in their private mount namespaces) and
 * /etc/netns (read by `ip netns exec`). Removing a directory that is a mount point in another
 * mount namespace detaches that mount there (rmdir(2), Linux ≥ 3.18), so a harness that removed
 * them while another test file's hosts ran took their /etc/kubernetes and /var/lib/etcd away
 * (the roll-secure test failed so under two jest workers). Made by the first harness, removed
 * by the last: users are registered under {@link SHARED_STATE}/users, what a harness made under
 * .../made, both changed only under a mkdir lock.
 */
export const SHARED_DIRS = ['/etc/kubernetes', '/var/lib/etcd', '/etc/netns'] as const;
const SHARED_STATE = '/run/kp-node-harness';

/** Where the registry lives and which directories it covers (tests point both elsewhere). */
export interface SharedDirsPlace {
  state: string;
  dirs: readonly string[];
}
const SHARED: SharedDirsPlace = { state: SHARED_STATE, dirs: SHARED_DIRS };

async function underSharedLock<T>(state: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${state}.lock`;
  const t0 = Date.now();
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // a lock left by a killed test run: held for milliseconds, never 30 s
      const st = await stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 30_000) await rmdir(lock).catch(() => undefined);
      if (Date.now() - t0 > 60_000) throw new Error(`${lock}: held for over 60 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Registers harness `id` (of this process) as a user of {@link SHARED_DIRS}, making the missing ones. */
export async function acquireSharedDirs(id: string, at: SharedDirsPlace = SHARED): Promise<void> {
  await mkdir(`${at.state}/users`, { recursive: true });
  await mkdir(`${at.state}/made`, { recursive: true });
  await underSharedLock(at.state, async () => {
    await writeFile(`${at.state}/users/${process.pid}-${id}`, '');
    for (const dir of at.dirs) {
      if (await stat(dir).catch(() => undefined)) continue;
      await mkdir(dir, { recursive: true });
      await writeFile(`${at.state}/made/${encodeURIComponent(dir)}`, '');
    }
  });
}

/**
 * Unregisters harness `id`; when no live harness is left, removes the {@link SHARED_DIRS} a
 * harness made (rmdir: only while empty) and the registry.
 * @returns the directories removed
 */
export async function releaseSharedDirs(id: string, at: SharedDirsPlace = SHARED): Promise<string[]> {
  return underSharedLock(at.state, async () => {
    await rm(`${at.state}/users/${process.pid}-${id}`, { force: true });
    const users = await readdir(`${at.state}/users`).catch(() => [] as string[]);
    if (users.some((u) => alive(Number(u.split('-')[0])))) return [];
    const removed: string[] = [];
    for (const m of await readdir(`${at.state}/made`).catch(() => [] as string[])) {
      const dir = decodeURIComponent(m);
      if (
        await rmdir(dir).then(
          () => true,
          () => false,
        )
      )
        removed.push(dir);
    }
    await rm(at.state, { recursive: true, force: true });
    return removed;
  });
}

export class Harness {
  readonly suffix = randomBytes(2).toString('hex');
  readonly prefix = `kpn${this.suffix}`;
  readonly router = `${this.prefix}-r`;
  private readonly namespaces: string[] = [];
  private readonly loops: string[] = [];
  private readonly background: BackgroundProcess[] = [];
  private sharedDirs = false;
  private bridges = new Map<string, string>();
  private imdsMap: Record<string, Record<string, string>> = {};
  /** environment for terraform and the awscli inside the router namespace */
  readonly awsEnv = { ...AWS_CREDENTIALS, AWS_ENDPOINT_URL: `http://127.0.0.1:${MOTO_PORT}` };

  constructor(readonly work: string) {}

  run(
    file: string,
    args: string[],
    opts: { env?: Record<string, string>; reject?: boolean; timeoutMs?: number } = {},
  ) {
    return exec(file, args, { cwd: this.work, ...opts });
  }

  /** Runs a command in a network namespace (`ip netns exec`). */
  inNs(
    ns: string,
    file: string,
    args: string[],
    opts: { env?: Record<string, string>; reject?: boolean; timeoutMs?: number } = {},
  ) {
    return this.run('ip', ['netns', 'exec', ns, file, ...args], opts);
  }

  /** The awscli in the router namespace, against the local AWS; parsed JSON output. */
  async aws<T>(args: string[]): Promise<T> {
    const r = await this.inNs(this.router, 'aws', [...args, '--output', 'json'], { env: this.awsEnv });
    return JSON.parse(r.stdout) as T;
  }

  private async addNs(ns: string): Promise<void> {
    await this.run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc: a resolver on the namespace's
    // own loopback (none listens), so that no lookup (etcd resolves a peer's SAN DNS names
    // when its address does not match) is sent towards this machine's resolver
    await mkdir(`/etc/netns/${ns}`, { recursive: true });
    await writeFile(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  }

  private async delNs(ns: string): Promise<void> {
    await this.run('ip', ['netns', 'del', ns], { reject: false });
    await rm(`/etc/netns/${ns}`, { recursive: true, force: true });
  }

  private async spawn(name: string, file: string, args: string[], env?: Record<string, string>) {
    const p = await spawnBackground(file, args, {
      cwd: this.work,
      logFile: path.join(this.work, `${name}.log`),
      ...(env ? { env } : {}),
    });
    this.background.push(p);
    return p;
  }

  /** The router namespace with the local AWS and the IMDS double. */
  async start(): Promise<void> {
    await acquireSharedDirs(this.suffix);
    this.sharedDirs = true;
    await this.addNs(this.router);
    await this.run('ip', ['netns', 'exec', this.router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await this.run('ip', ['-n', this.router, 'addr', 'add', `${IMDS_ADDRESS}/32`, 'dev', 'lo']);
    await this.spawn('moto', 'ip', [
      'netns',
      'exec',
      this.router,
      'moto_server',
      '-H',
      '0.0.0.0',
      '-p',
      String(MOTO_PORT),
    ]);
    await this.writeImdsMap();
    const double = path.join(toolkitRoot(), 'dist', 'test', 'nodes', 'imds-double.js');
    await this.spawn('imds', 'ip', [
      'netns',
      'exec',
      this.router,
      process.execPath,
      double,
      this.imdsFile,
      IMDS_ADDRESS,
    ]);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const up = await this.inNs(
        this.router,
        'curl',
        ['-sf', '-o', '/dev/null', `http://127.0.0.1:${MOTO_PORT}/moto-api/`],
        { reject: false },
      );
      const imds = await this.inNs(
        this.router,
        'curl',
        ['-s', '-o', '/dev/null', `http://${IMDS_ADDRESS}/`],
        { reject: false },
      );
      if (up.exitCode === 0 && imds.exitCode === 0) break;
      if (Date.now() > deadline)
        throw new Error(`moto_server or the IMDS double did not start in ${this.router} (see ${this.work})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const aws = await which('aws');
    if (!aws) throw new Error('the awscli is not on PATH');
    this.awsCli = aws;
  }

  private get imdsFile() {
    return path.join(this.work, 'imds.json');
  }
  private async writeImdsMap() {
    await writeFile(this.imdsFile, JSON.stringify(this.imdsMap));
  }

  /**
   * `terraform apply -target=module.masters` of platform/terraform (a copy without the S3
   * backend, so the state is local) for `cfg`, in the router namespace against the local
   * AWS: the network, IAM, the masters' launch template and ASGs, each member's ENI and
   * volume (the load balancers are left out: the masters need only their target groups).
   */
  async apply(cfg: EnvConfig, sshPublicKey: string): Promise<Applied> {
    const t0 = Date.now();
    const dir = path.join(this.work, `tf-${cfg.name}`);
    await cp(path.join(toolkitRoot(), 'platform', 'terraform'), dir, { recursive: true });
    await rm(path.join(dir, 'backend.tf'));
    const image = await this.aws<{ ImageId: string }>([
      'ec2',
      'register-image',
      '--name',
      `${cfg.name}-node`,
      '--architecture',
      'x86_64',
      '--root-device-name',
      '/dev/sda1',
      '--virtualization-type',
      'hvm',
      '--block-device-mappings',
      'DeviceName=/dev/sda1,Ebs={VolumeSize=8}',
    ]);
    const sha = 'ab'.repeat(32);
    const vars: TfVars = tfVars(cfg, {
      amiId: image.ImageId,
      sshPublicKey,
      secretsBucket: `kp-${cfg.name}-secrets`,
      kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/01234567-89ab-cdef-0123-456789abcdef',
      agentBucket: `kp-${cfg.name}-state`,
      agentObjectKey: `agent/manifest-sync-${sha}.mjs`,
      agentSha256: sha,
    });
    await writeFile(path.join(dir, 'terraform.tfvars.json'), JSON.stringify(vars));
    const mirror = process.env.PLATFORM_TF_MIRROR ?? '/opt/tf-plugins';
    await writeFile(
      path.join(dir, 'cli.tfrc'),
      `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(mirror)}\n  }\n}\n`,
    );
    const env = {
      ...this.awsEnv,
      TF_CLI_CONFIG_FILE: path.join(dir, 'cli.tfrc'),
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
    };
    const tf = (args: string[]) =>
      exec('ip', ['netns', 'exec', this.router, 'terraform', ...args], { cwd: dir, env });
    await tf(['init', '-input=false', '-no-color']);
    await tf(['apply', '-auto-approve', '-input=false', '-no-color', '-target=module.masters']);
    const applySeconds = (Date.now() - t0) / 1000;

    const subnets = await this.aws<{ Subnets: { SubnetId: string; CidrBlock: string }[] }>([
      'ec2',
      'describe-subnets',
    ]);
    const cidrOf = new Map(subnets.Subnets.map((s) => [s.SubnetId, s.CidrBlock]));
    type Tags = { Key: string; Value: string }[] | undefined;
    const tag = (tags: Tags, key: string) => tags?.find((t) => t.Key === key)?.Value ?? '';
    const described = await this.aws<{
      Reservations: {
        Instances: {
          InstanceId: string;
          PrivateIpAddress: string;
          SubnetId: string;
          Tags: Tags;
          NetworkInterfaces: { MacAddress: string }[];
        }[];
      }[];
    }>([
      'ec2',
      'describe-instances',
      '--filters',
      `Name=tag:Environment,Values=${cfg.name}`,
      'Name=instance-state-name,Values=running',
      'Name=tag:Layer,Values=secure',
    ]);
    const instances = described.Reservations.flatMap((r) => r.Instances).map((i) => ({
      id: i.InstanceId,
      ip: i.PrivateIpAddress,
      mac: i.NetworkInterfaces[0]!.MacAddress,
      subnetCidr: cidrOf.get(i.SubnetId)!,
      member: tag(i.Tags, 'EtcdMember'),
    }));
    const nis = await this.aws<{
      NetworkInterfaces: {
        NetworkInterfaceId: string;
        PrivateIpAddress: string;
        MacAddress: string;
        SubnetId: string;
        TagSet: Tags;
      }[];
    }>([
      'ec2',
      'describe-network-interfaces',
      '--filters',
      `Name=tag:Environment,Values=${cfg.name}`,
      'Name=tag-key,Values=EtcdMember',
    ]);
    const enis = nis.NetworkInterfaces.map((n) => ({
      id: n.NetworkInterfaceId,
      ip: n.PrivateIpAddress,
      mac: n.MacAddress,
      subnetCidr: cidrOf.get(n.SubnetId)!,
      member: tag(n.TagSet, 'EtcdMember'),
    }));
    const versions = await this.aws<{
      LaunchTemplateVersions: { LaunchTemplateData: { UserData: string } }[];
    }>([
      'ec2',
      'describe-launch-template-versions',
      '--launch-template-name',
      `${cfg.name}-secure`,
      '--versions',
      '$Latest',
    ]);
    const shipped = Buffer.from(versions.LaunchTemplateVersions[0]!.LaunchTemplateData.UserData, 'base64');
    return { instances, enis, masterUserData: gunzipSync(shipped).toString('utf8'), applySeconds };
  }

  /**
   * Lays out one test host per master of `applied` (namespaces, interfaces, bridges, the
   * volume's loop device, the mount namespace), with `etc` (layer-relative path → bytes,
   * the files manifest-sync installs under /etc/kubernetes) in its /etc/kubernetes.
   */
  async layout(tag: string, applied: Applied, etc: Map<string, Buffer>): Promise<Host[]> {
    const hosts: Host[] = [];
    for (const [i, instance] of applied.instances
      .sort((a, b) => a.member.localeCompare(b.member))
      .entries()) {
      const eni = applied.enis.find((e) => e.member === instance.member);
      if (!eni) throw new Error(`no ENI tagged EtcdMember=${instance.member}`);
      const bridge = await this.bridge(instance.subnetCidr);
      const ns = `${this.prefix}-${tag}m${i}`;
      await this.addNs(ns);
      for (const [kind, mac, addr] of [
        ['p', instance.mac, instance.ip],
        ['e', eni.mac, ''],
      ] as const) {
        const inside = `${this.prefix}-${tag}${kind}${i}`;
        const outside = `${inside}r`;
        await this.run('ip', [
          '-n',
          this.router,
          'link',
          'add',
          outside,
          'type',
          'veth',
          'peer',
          'name',
          inside,
          'netns',
          ns,
        ]);
        await this.run('ip', ['-n', this.router, 'link', 'set', outside, 'master', bridge, 'up']);
        await this.run('ip', ['-n', ns, 'link', 'set', inside, 'address', mac]);
        if (addr) {
          await this.run('ip', [
            '-n',
            ns,
            'addr',
            'add',
            `${addr}/${prefixOf(instance.subnetCidr)}`,
            'dev',
            inside,
          ]);
          await this.run('ip', ['-n', ns, 'link', 'set', inside, 'up']);
          await this.run('ip', [
            '-n',
            ns,
            'route',
            'add',
            'default',
            'via',
            cidrHost(instance.subnetCidr, 1),
          ]);
        }
      }
      const root = path.join(this.work, ns);
      const etcKubernetes = path.join(root, 'etc-kubernetes');
      for (const [rel, bytes] of etc) {
        await mkdir(path.dirname(path.join(etcKubernetes, rel)), { recursive: true, mode: 0o700 });
        await writeFile(path.join(etcKubernetes, rel), bytes, { mode: 0o600 });
      }
      const image = path.join(root, 'volume.img');
      await this.run('truncate', ['-s', '512M', image]);
      const device = (await this.run('losetup', ['-f', '--show', image])).stdout.trim();
      this.loops.push(device);
      const holder = await this.spawn(`${ns}-holder`, 'ip', [
        'netns',
        'exec',
        ns,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sleep',
        'infinity',
      ]);
      // wait until the holder is in its own mount namespace (unshare has exec'd sleep)
      for (let n = 0; ; n++) {
        const comm = await readFile(`/proc/${holder.pid}/comm`, 'utf8').catch(() => '');
        if (comm.trim() === 'sleep') break;
        if (n > 100) throw new Error(`the mount namespace holder of ${ns} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await this.run('nsenter', [
        '-t',
        String(holder.pid),
        '-m',
        '--',
        'mount',
        '--bind',
        etcKubernetes,
        '/etc/kubernetes',
      ]);
      this.imdsMap[instance.ip] = { 'instance-id': instance.id, 'tags/instance/EtcdMember': instance.member };
      hosts.push({
        member: instance.member,
        ns,
        instance,
        eni,
        holder: holder.pid,
        etcKubernetes,
        device,
        gateway: cidrHost(instance.subnetCidr, 1),
        primaryIface: `${this.prefix}-${tag}p${i}`,
      });
    }
    await this.writeImdsMap();
    return hosts;
  }

  private async bridge(subnetCidr: string): Promise<string> {
    const known = this.bridges.get(subnetCidr);
    if (known) return known;
    const name = `${this.prefix}-b${this.bridges.size}`;
    await this.run('ip', ['-n', this.router, 'link', 'add', name, 'type', 'bridge']);
    await this.run('ip', [
      '-n',
      this.router,
      'addr',
      'add',
      `${cidrHost(subnetCidr, 1)}/${prefixOf(subnetCidr)}`,
      'dev',
      name,
    ]);
    await this.run('ip', ['-n', this.router, 'link', 'set', name, 'up']);
    this.bridges.set(subnetCidr, name);
    return name;
  }

  /** the awscli on PATH (the script's default is Ubuntu's snap, /snap/bin/aws) */
  awsCli = 'aws';

  /** Runs a command on a host: its network and mount namespaces. */
  onHost(
    host: Host,
    file: string,
    args: string[],
    opts: { env?: Record<string, string>; reject?: boolean; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    return this.run('nsenter', ['-t', String(host.holder), '-m', '-n', '--', file, ...args], opts);
  }

  /**
   * Starts a long-running command on a host, its output in <work>/<name>.log (appended to);
   * `env`: variables added to this process's environment.
   */
  spawnOnHost(
    host: Host,
    name: string,
    file: string,
    args: string[],
    env?: Record<string, string>,
  ): Promise<BackgroundProcess> {
    return this.spawn(name, 'nsenter', ['-t', String(host.holder), '-m', '-n', '--', file, ...args], env);
  }

  /** Starts a long-running command in the router namespace, its output in <work>/<name>.log. */
  spawnInRouter(name: string, file: string, args: string[]): Promise<BackgroundProcess> {
    return this.spawn(name, 'ip', ['netns', 'exec', this.router, file, ...args]);
  }

  /**
   * A replacement instance boots on `host` (the same test host: its member's ENI and volume
   * are what carries the identity): the primary interface takes the new instance's MAC and
   * address (same subnet, the ASG's), and the IMDS double answers for it.
   */
  async reassign(host: Host, instance: Instance): Promise<void> {
    const ns = host.ns;
    const dev = host.primaryIface;
    await this.run('ip', ['-n', ns, 'addr', 'flush', 'dev', dev]);
    await this.run('ip', ['-n', ns, 'link', 'set', dev, 'down']);
    await this.run('ip', ['-n', ns, 'link', 'set', dev, 'address', instance.mac]);
    await this.run('ip', [
      '-n',
      ns,
      'addr',
      'add',
      `${instance.ip}/${prefixOf(instance.subnetCidr)}`,
      'dev',
      dev,
    ]);
    await this.run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    await this.run('ip', ['-n', ns, 'route', 'replace', 'default', 'via', cidrHost(instance.subnetCidr, 1)]);
    delete this.imdsMap[host.instance.ip];
    this.imdsMap[instance.ip] = { 'instance-id': instance.id, 'tags/instance/EtcdMember': instance.member };
    await this.writeImdsMap();
    host.instance = instance;
  }

  /** The environment the claim script gets on a host: the local AWS through the subnet's router. */
  claimEnv(host: Host, stubBin: string): Record<string, string> {
    return {
      ...AWS_CREDENTIALS,
      AWS_ENDPOINT_URL: `http://${host.gateway}:${MOTO_PORT}`,
      PATH: `${stubBin}:${process.env.PATH}`,
      KP_ETCD_VOLUME_DEVICE: host.device,
      KP_AWS_CLI: this.awsCli,
    };
  }

  /** Removes one environment's hosts and bridges (the router and the local AWS stay). */
  async removeHosts(hosts: Host[]): Promise<void> {
    for (const h of hosts) {
      await this.run('kill', [String(h.holder)], { reject: false });
      await this.delNs(h.ns);
      this.namespaces.splice(this.namespaces.indexOf(h.ns), 1);
      await this.run('losetup', ['-d', h.device], { reject: false });
      this.loops.splice(this.loops.indexOf(h.device), 1);
      delete this.imdsMap[h.instance.ip];
    }
    for (const b of this.bridges.values())
      await this.run('ip', ['-n', this.router, 'link', 'del', b], { reject: false });
    this.bridges.clear();
    await this.writeImdsMap();
  }

  /** Stops everything started and deletes every namespace, loop device and mount point made. */
  async destroy(): Promise<void> {
    for (const p of this.background.reverse()) await p.stop(2000).catch(() => undefined);
    for (const ns of this.namespaces.reverse()) await this.delNs(ns);
    for (const l of this.loops) await this.run('losetup', ['-d', l], { reject: false });
    if (this.sharedDirs) await releaseSharedDirs(this.suffix);
    this.sharedDirs = false;
  }
}

/** The files manifest-sync installs under /etc/kubernetes on a master: `<layer>/<rest>` → `<rest>` for common and secure. */
export async function masterEtcFiles(secrets: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const layer of ['common', 'secure']) {
    for (const rel of await listFiles(path.join(secrets, layer)))
      out.set(rel, await readFile(path.join(secrets, layer, rel)));
  }
  return out;
}

/** A write_files entry of a cloud-config. */
export function writeFileOf(userData: string, file: string): string {
  const cfg = parseYaml(userData) as { write_files: { path: string; content: string }[] };
  const entry = cfg.write_files.find((f) => f.path === file);
  if (!entry) throw new Error(`the user data writes no ${file}`);
  return entry.content;
}

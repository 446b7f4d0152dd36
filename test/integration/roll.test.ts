import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UpdateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateVersionCommand,
  DescribeLaunchTemplatesCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { describeFleetInstances } from '../../src/aws/fleet.js';
import { freePort } from '../../src/aws/local.js';
import { renderEnvSshConfig } from '../../src/ssh/config.js';
import { openClusterState } from '../../src/state/store.js';
import { CLI, cli, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { createFleetAsgs, type FakeFleet, startFakeFleet } from '../helpers/fake-fleet.js';
import { type KubeDouble, startKubeDouble } from '../helpers/kube-api-double.js';
import { type RecordedRequest, useMoto } from '../helpers/moto.js';

/**
 * `roll` through the built CLI against real ASGs and instances in the local AWS (moto
 * replaces an instance terminated in its ASG at once), the Kubernetes API double and
 * fake-but-running nodes (test/helpers/fake-fleet.ts: Nodes join, masters' agents report).
 * Covers: --plan from the instances' aws:ec2launchtemplate:version tags; a drain blocked by
 * a PDB, named within 10 s; a second operator getting the conflict exit code; a roll
 * killed after a termination and rerun, terminating nobody twice; the master quorum gate.
 */

const moto = useMoto({ resetEach: false });
const ENV = 'roll-it';

let t: TestEnvironment;
let kube: KubeDouble;
let fleet: FakeFleet;
let env: Record<string, string | undefined>;

const FAST = [
  '--poll',
  '0.2',
  '--validate-interval',
  '0.2',
  '--validate-timeout',
  '30',
  '--replace-timeout',
  '60',
];

/** The CLI as a child whose stderr can be awaited line by line. */
function start(args: string[]): {
  child: ChildProcess;
  stderr: () => string;
  waitFor(re: RegExp, ms?: number): Promise<number>;
  done: Promise<number>;
} {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  child.stdout!.resume();
  const done = new Promise<number>((resolve) =>
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1))),
  );
  return {
    child,
    stderr: () => err,
    done,
    waitFor: async (re, ms = 60_000) => {
      const t0 = Date.now();
      while (!re.test(err)) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${re} in:\n${err}`);
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before ${re}:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return Date.now() - t0;
    },
  };
}

async function bumpLaunchTemplate(layer: string): Promise<number> {
  const ec2 = await t.aws.ec2();
  const lt = (
    await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [`${ENV}-${layer}`] }))
  ).LaunchTemplates![0]!;
  const v = await ec2.send(
    new CreateLaunchTemplateVersionCommand({
      LaunchTemplateId: lt.LaunchTemplateId,
      SourceVersion: String(lt.LatestVersionNumber),
      LaunchTemplateData: { InstanceType: 't3.large' },
    }),
  );
  const n = v.LaunchTemplateVersion!.VersionNumber!;
  // as the platform's launch templates do (update_default_version = true); moto launches an
  // ASG's replacements from the template's default version
  await ec2.send(
    new ModifyLaunchTemplateCommand({ LaunchTemplateId: lt.LaunchTemplateId, DefaultVersion: String(n) }),
  );
  await (await t.aws.autoscaling()).send(
    new UpdateAutoScalingGroupCommand({
      AutoScalingGroupName: `${ENV}-${layer}`,
      LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplateId, Version: String(n) },
    }),
  );
  return n;
}

function terminations(requests: RecordedRequest[]): string[] {
  return requests
    .map((r) => (r.body_encoded ? Buffer.from(r.body, 'base64').toString() : (r.body ?? '')))
    .filter((b) => b.includes('Action=TerminateInstanceInAutoScalingGroup'))
    .map((b) => /InstanceId=([^&]+)/.exec(b)![1]!);
}

beforeAll(async () => {
  t = await bootstrapEnvironment(moto.endpoint, ENV);
  await t.store.publish('secure', [
    {
      path: 'manifests/x.yaml',
      content: Buffer.from('x'),
      sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
      size: 1,
      mode: 0o600,
    },
  ]);
  await createFleetAsgs(t.aws, ENV, [
    { layer: 'secure', desired: 1 },
    { layer: 'compute', desired: 2 },
  ]);
  kube = await startKubeDouble();
  fleet = startFakeFleet({
    aws: t.aws,
    environment: ENV,
    store: t.store,
    kube,
    intervalMs: 200,
    joinDelayMs: 500,
  });
  await new Promise((r) => setTimeout(r, 700));
  await fleet.tick();
  const ws = workspace({ [ENV]: '' });
  env = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await kube?.close();
  t?.aws.destroy();
});

test('roll compute: --plan lists exactly the workers with launch template N→N+1; the roll drains (a PDB named within 10 s), replaces them one at a time, a second operator gets exit 3', async () => {
  const workers = (await describeFleetInstances(t.aws, ENV)).filter((i) => i.layer === 'compute');
  expect(workers).toHaveLength(2);
  const n = await bumpLaunchTemplate('compute');
  const plan = await cli(['roll', '-e', ENV, 'compute', '--plan', '--json'], env);
  expect(plan.code).toBe(0);
  const rows = JSON.parse(plan.stdout) as { instanceId: string; reasons: string[] }[];
  expect(rows.map((r) => r.instanceId).sort()).toEqual(workers.map((w) => w.instanceId).sort());
  for (const r of rows) expect(r.reasons).toEqual([`launch template ${n - 1}→${n}`]);
  expect((await cli(['roll', '-e', ENV, 'secure', '--plan', '--json'], env)).stdout.trim()).toBe('[]');

  // a web pod on the first worker, guarded by a PDB that forbids any disruption
  const first = rows[0]!.instanceId;
  const firstIp = workers.find((w) => w.instanceId === first)!.privateIp!;
  const node = fleet.nodeName({ privateIp: firstIp });
  kube.pods.push({ namespace: 'web', name: 'web-0', nodeName: node, labels: { app: 'web' } });
  kube.pdbs.push({ namespace: 'web', name: 'web-pdb', matchLabels: { app: 'web' }, minAvailable: 1 });

  const { result: requests } = await moto
    .record(async () => {
      const roll = start([
        'roll',
        '-e',
        ENV,
        'compute',
        '--yes',
        '--kubeconfig',
        kube.kubeconfigFile,
        ...FAST,
      ]);
      await roll.waitFor(/cordoned; draining/);
      const named = await roll.waitFor(
        /eviction of pod web\/web-0 refused by PodDisruptionBudget web-pdb/,
        10_000,
      );
      process.stderr.write(`PDB named ${named} ms after the drain began\n`);
      expect(kube.nodes.get(node)!.unschedulable).toBe(true);

      const second = await cli(
        ['roll', '-e', ENV, 'compute', '--yes', '--kubeconfig', kube.kubeconfigFile, ...FAST],
        env,
      );
      expect(second.code).toBe(3);
      expect(second.stderr).toMatch(/roll compute \(operation [0-9a-f-]+\) is in progress/);

      kube.pdbs[0]!.minAvailable = 0; // the owner scales up elsewhere: the eviction goes through
      const code = await roll.done;
      expect(roll.stderr()).toMatch(/roll compute: 2 replaced/);
      expect(code).toBe(0);
      return roll.stderr();
    })
    .then((r) => ({ result: r.requests }));
  const terms = terminations(requests);
  expect(terms.sort()).toEqual(workers.map((w) => w.instanceId).sort());

  const after = (await describeFleetInstances(t.aws, ENV)).filter(
    (i) => i.layer === 'compute' && i.state === 'running',
  );
  expect(after).toHaveLength(2);
  for (const i of after) expect(i.launchTemplateVersion).toBe(n);
  const state = await openClusterState(t.aws, {
    environment: ENV,
    bucket: t.names.stateBucket,
    kmsKeyId: t.kmsKeyArn,
    toolkitVersion: '0.1.0',
  });
  const s = (await state.read()).state;
  expect(s.operation).toBeNull();
  expect(s.lastRollout).toMatchObject({ layer: 'compute', result: 'completed' });
  expect(s.lastRollout!.replaced.sort()).toEqual(workers.map((w) => w.instanceId).sort());
  expect((await cli(['roll', '-e', ENV, 'compute', '--plan', '--json'], env)).stdout.trim()).toBe('[]');
});

test('a roll killed after a termination resumes on rerun and terminates nobody twice', async () => {
  const workers = (await describeFleetInstances(t.aws, ENV)).filter(
    (i) => i.layer === 'compute' && i.state === 'running',
  );
  await bumpLaunchTemplate('compute');
  const { requests } = await moto.record(async () => {
    const roll = start(['roll', '-e', ENV, 'compute', '--yes', '--kubeconfig', kube.kubeconfigFile, ...FAST]);
    await roll.waitFor(/terminating \(the ASG/);
    roll.child.kill('SIGKILL');
    await roll.done;
    const rerun = await cli(
      ['roll', '-e', ENV, 'compute', '--yes', '--kubeconfig', kube.kubeconfigFile, ...FAST],
      env,
    );
    if (rerun.code !== 0) process.stderr.write(`rerun:\n${rerun.stderr}\n`);
    expect(rerun.stderr).toMatch(/resuming roll compute/);
    expect(rerun.stderr).toMatch(/its termination is in the journal; not terminating again/);
    expect(rerun.code).toBe(0);
  });
  const terms = terminations(requests);
  expect(terms.sort()).toEqual(workers.map((w) => w.instanceId).sort());
  expect(new Set(terms).size).toBe(terms.length);
});

test('roll secure refuses when an etcd member is down, naming it (exit 3); terminate-layer secure refuses without --all-at-once', async () => {
  await bumpLaunchTemplate('secure');
  const master = (await describeFleetInstances(t.aws, ENV)).find(
    (i) => i.layer === 'secure' && i.state === 'running',
  )!;
  fleet.etcdDown.add(master.instanceId);
  await fleet.tick();
  try {
    const r = await cli(
      ['roll', '-e', ENV, 'secure', '--yes', '--kubeconfig', kube.kubeconfigFile, ...FAST],
      env,
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      `refusing to take down master ${master.instanceId}: etcd member not healthy: ${master.instanceId}: unhealthy`,
    );
    expect(
      (await describeFleetInstances(t.aws, ENV)).find((i) => i.instanceId === master.instanceId)!.state,
    ).toBe('running');
  } finally {
    fleet.etcdDown.clear();
  }
  const tl = await cli(['terminate-layer', '-e', ENV, 'secure', '--yes', '--confirm', ENV], env);
  expect(tl.code).toBe(2);
  expect(tl.stderr).toMatch(/every etcd member, at once: the cluster loses quorum; nothing was terminated/);
  const tl2 = await cli(['terminate-layer', '-e', ENV, 'secure', '--all-at-once', '--yes'], env);
  expect(tl2.code).toBe(2);
  expect(tl2.stderr).toMatch(/also needs --confirm roll-it/);
});

test('roll secure --etcd-via-bastion: --plan names the tunnel; without agent-setup, or with the bastion down, refused by name (exit 3), nothing terminated, no snapshot', async () => {
  const home = env.HOME!;
  const sshDir = path.join(home, '.ssh', 'kube-platform');
  const config = path.join(sshDir, `${ENV}.config`);
  const master = (await describeFleetInstances(t.aws, ENV)).find(
    (i) => i.layer === 'secure' && i.state === 'running',
  )!;
  const plan = await cli(['roll', '-e', ENV, 'secure', '--plan', '--etcd-via-bastion'], env);
  expect(plan.code).toBe(0);
  expect(plan.stdout).toContain(master.instanceId);
  expect(plan.stderr).toMatch(
    new RegExp(
      `etcd snapshots would be taken through an ssh tunnel through bastion-${ENV} \\(${config.replaceAll('.', '\\.')}\\) to etcd-\\d`,
    ),
  );
  expect(plan.stderr).toContain(`${config} does not exist: the roll would refuse`);
  // the etcd TLS files must exist (else exit 2 naming the flag); the tunnel fails before they are read
  const pkiDir = path.join(home, 'pki');
  mkdirSync(pkiDir, { recursive: true });
  const tlsFlags = ['cacert', 'cert', 'key'].flatMap((f) => {
    writeFileSync(path.join(pkiDir, f), 'not read\n');
    return [`--etcd-${f}`, path.join(pkiDir, f)];
  });
  const args = [
    'roll',
    '-e',
    ENV,
    'secure',
    '--yes',
    '--etcd-via-bastion',
    ...tlsFlags,
    '--kubeconfig',
    kube.kubeconfigFile,
    ...FAST,
  ];
  const noSetup = await moto.record(() => cli(args, env));
  expect(noSetup.result.code).toBe(3);
  expect(noSetup.result.stderr).toMatch(
    /does not exist \(agent-setup has not been run for roll-it in this container\); nothing was terminated/,
  );
  expect(noSetup.result.stderr).toContain(`${config} does not exist`);
  expect(noSetup.result.stderr).toContain(`eval "$(agent-setup -e ${ENV})"`);
  expect(terminations(noSetup.requests)).toEqual([]);
  // the bastion down: an ssh config as agent-setup writes it, pointing at a port nobody listens on
  const closed = await freePort();
  mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    config,
    renderEnvSshConfig({
      env: ENV,
      bastion: { host: '127.0.0.3', port: closed },
      user: 'ops',
      identityFile: path.join(home, 'no-key'),
      knownHostsFile: path.join(sshDir, `${ENV}.known_hosts`),
      privatePatterns: ['10.*'],
      privatePort: 22,
    }),
    { mode: 0o600 },
  );
  try {
    const down = await moto.record(() => cli(args, env));
    expect(down.result.code).toBe(3);
    expect(down.result.stderr).toContain(
      `bastion bastion-${ENV} (127.0.0.3:${closed}): ssh exited with code 255`,
    );
    expect(down.result.stderr).toMatch(/Connection refused; nothing was terminated/);
    expect(terminations(down.requests)).toEqual([]);
    expect(down.requests.filter((r) => r.method === 'PUT' && r.url.includes('backups/etcd/'))).toEqual([]);
  } finally {
    rmSync(config);
  }
  expect(
    (await describeFleetInstances(t.aws, ENV)).find((i) => i.instanceId === master.instanceId)!.state,
  ).toBe('running');
}, 120_000);

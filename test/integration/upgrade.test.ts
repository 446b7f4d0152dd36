import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UpdateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateVersionCommand,
  DescribeLaunchTemplatesCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { listInstances } from '../../src/aws/inventory.js';
import {
  type LocalMember,
  planLocalMembers,
  startLocalMembers,
  stopLocalMembers,
} from '../../src/backup/member.js';
import { BackupStore } from '../../src/backup/store.js';
import { setLogSink } from '../../src/log.js';
import { statusesOf } from '../../src/secrets/rollout.js';
import { type LocalHealth, type NodeStatus, parseStatus } from '../../src/secrets/status.js';
import { openClusterState } from '../../src/state/store.js';
import { PHASES } from '../../src/upgrade/phases.js';
import { CLI, cli, sharedEnvFile, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { createFleetAsgs, type FakeFleet, startFakeFleet } from '../helpers/fake-fleet.js';
import { type KubeDouble, startKubeDouble } from '../helpers/kube-api-double.js';
import { startMasterAgents, until } from '../helpers/master-agents.js';
import { useMoto, writes } from '../helpers/moto.js';

/**
 * `upgrade --to` end to end through the built CLI (issue 14 item 2), against the local AWS:
 * three masters and two workers in real ASGs (moto), each master with a real agent (runAgent
 * with the rollout gate, as on the masters) applying the secure layer into its own directory
 * and reporting health the test controls; the Kubernetes API double, whose control-plane
 * mirror pods run the images the masters' agents applied (test/helpers/fake-fleet.ts), and
 * whose Nodes register with the kubelet their launch template installs; a real etcd member
 * on loopback for the snapshot. Terraform is not run (`--skip-terraform`): the test plays its
 * part by moving the workers' launch template to a new version before the upgrade.
 *
 * Covers: an illegal target refused with its rule before any write (moto's request recorder
 * and the double's request log); no TTY without --yes refused before any write; the phases in
 * order with validate between them (from the cluster state's journal and the agents' own
 * status timestamps: controller-manager/scheduler reach a master only after every master runs
 * the new API server); an upgrade killed in the API-server phase and rerun resumes there,
 * taking no second snapshot and redoing no finished phase; `run` refused meanwhile.
 */
const moto = useMoto({ resetEach: false });
const ENV = 'upg-it';
const FROM = 'v1.34.2';
const TO = 'v1.35.0';
let t: TestEnvironment;
let kube: KubeDouble;
let fleet: FakeFleet;
let work: string;
let masters: string[];
let ws: { dir: string; home: string };
let vars: Record<string, string | undefined>;
let etcd: LocalMember[];
let backups: BackupStore;
const stop = new AbortController();
const running: Promise<void>[] = [];
/** nodes whose probe fails once their kube-apiserver manifest names the new version */
const sickOnNewApiserver = new Set<string>();
let restoreLog: () => void;

const manifest = (node: string, component: string) =>
  readFile(path.join(work, node, 'manifests', `${component}.yaml`), 'utf8').catch(() => '');
const imageIn = (text: string) => text.match(/image: "?([^"\s]+)/)?.[1];
const probe = (node: string) => async (): Promise<LocalHealth> => {
  const checkedAt = new Date().toISOString();
  const newApiserver =
    imageIn(await manifest(node, 'kube-apiserver')) === `registry.k8s.io/kube-apiserver:${TO}`;
  const ok = !(sickOnNewApiserver.has(node) && newApiserver);
  const tag = imageIn(await manifest(node, 'etcd'))?.match(/:(\d+\.\d+\.\d+)-0$/)?.[1] ?? null;
  return {
    etcd: {
      checkedAt,
      healthy: ok,
      reason: ok ? '' : 'member has no leader',
      hasLeader: ok,
      isLeader: node === masters[0],
      version: tag,
    },
    apiserver: { checkedAt, ready: ok, detail: ok ? '' : 'HTTP 500: [-]etcd failed' },
  };
};
const statuses = () => statusesOf(t.store, 'secure', parseStatus);
const upgradeArgs = (...extra: string[]) => [
  'upgrade',
  '-e',
  ENV,
  '--to',
  TO,
  '--etcd',
  'v3.6.5',
  '--kubeconfig',
  kube.kubeconfigFile,
  '--skip-terraform',
  '--etcd-endpoint',
  etcd[0]!.clientUrl,
  '--rollout-timeout',
  '60',
  '--validate-interval',
  '0.2',
  '--validate-timeout',
  '60',
  '--replace-timeout',
  '60',
  '--poll',
  '0.2',
  ...extra,
];
const state = async () =>
  (
    await (
      await openClusterState(t.aws, {
        environment: ENV,
        bucket: t.names.stateBucket,
        kmsKeyId: t.kmsKeyArn,
        toolkitVersion: '0.0.0',
      })
    ).read()
  ).state;

/** The CLI as a child whose stderr can be awaited. */
function start(args: string[]): { child: ChildProcess; stderr: () => string; done: Promise<number> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...vars },
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
  return { child, stderr: () => err, done };
}

/** What Terraform does to the workers at the target: a new launch template version installing its kubelet. */
async function bumpWorkerLaunchTemplate(): Promise<void> {
  const ec2 = await t.aws.ec2();
  const lt = (await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [`${ENV}-compute`] })))
    .LaunchTemplates![0]!;
  const v = await ec2.send(
    new CreateLaunchTemplateVersionCommand({
      LaunchTemplateId: lt.LaunchTemplateId,
      SourceVersion: String(lt.LatestVersionNumber),
      // any change makes a new version; the kubelet it installs is played by fleet.setKubeletVersion
      LaunchTemplateData: { InstanceType: 't3.large' },
    }),
  );
  const n = String(v.LaunchTemplateVersion!.VersionNumber!);
  await ec2.send(
    new ModifyLaunchTemplateCommand({ LaunchTemplateId: lt.LaunchTemplateId, DefaultVersion: n }),
  );
  await (await t.aws.autoscaling()).send(
    new UpdateAutoScalingGroupCommand({
      AutoScalingGroupName: `${ENV}-compute`,
      LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplateId, Version: n },
    }),
  );
  fleet.setKubeletVersion(TO);
}

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  t = await bootstrapEnvironment(moto.endpoint, ENV);
  await createFleetAsgs(t.aws, ENV, [
    { layer: 'secure', desired: 3 },
    { layer: 'compute', desired: 2 },
  ]);
  masters = (await listInstances(t.aws, ENV)).filter((r) => r.layer === 'secure').map((r) => r.instanceId);
  expect(masters).toHaveLength(3);
  work = await mkdtemp(path.join(os.tmpdir(), 'kp-upg-'));
  kube = await startKubeDouble();
  fleet = startFakeFleet({
    aws: t.aws,
    environment: ENV,
    store: t.store,
    kube,
    intervalMs: 200,
    joinDelayMs: 300,
    kubernetesVersion: FROM,
    masterStatus: false,
    imageOf: async (node, component) => imageIn(await manifest(node, component)),
  });
  ws = workspace({ [ENV]: sharedEnvFile() });
  vars = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  // generation 1 of the secure layer, rendered at the environment file's FROM
  const first = await cli(['run', '-e', ENV, '--skip-terraform', '--yes', '--confirm', ENV], vars);
  expect([first.code, first.code ? first.stderr : '']).toEqual([0, '']);
  running.push(
    ...startMasterAgents({
      store: t.store,
      environment: ENV,
      nodes: masters,
      work,
      signal: stop.signal,
      probe: probe,
    }),
  );
  await until('every master on generation 1', async () => {
    const s = await statuses();
    return masters.every((n) => s.get(n)?.generation === 1);
  });
  await fleet.tick();
  expect(kube.pods.find((p) => p.labels?.component === 'kube-apiserver')?.image).toBe(
    `registry.k8s.io/kube-apiserver:${FROM}`,
  );
  etcd = await planLocalMembers(['m1'], path.join(work, 'etcd'));
  await startLocalMembers(etcd, { token: 'upg-it', logDir: work });
  backups = new BackupStore({
    s3: await t.aws.s3(),
    keys: t.keys,
    bucket: t.names.secretsBucket,
    environment: ENV,
    kmsKeyId: t.kmsKeyArn,
  });
}, 300_000);

afterAll(async () => {
  stop.abort();
  await Promise.all(running);
  await fleet?.stop();
  await kube?.close();
  if (etcd) await stopLocalMembers(etcd);
  t?.aws.destroy();
  restoreLog?.();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Writes the local AWS saw, leaving out the agents' own status reports (the nodes write those all along). */
const toolkitWrites = (requests: Parameters<typeof writes>[0]) =>
  writes(requests).filter((w) => !/\/status\/secure\//.test(w));

test('an illegal target is refused with its rule before any write; so is a run without a TTY or --yes', async () => {
  const envBefore = await readFile(path.join(ws.dir, 'environments', `${ENV}.env`), 'utf8');
  const kubeWritesBefore = kube.requests.filter((r) => r.method !== 'GET').length;
  const skip = await moto.record(() =>
    cli(
      [...upgradeArgs('--yes', '--confirm', ENV)].map((a) => (a === TO ? 'v1.36.0' : a)),
      vars,
    ),
  );
  expect(skip.result.code).toBe(2);
  expect(skip.result.stderr).toContain('[kube-minor-skip]');
  expect(skip.result.stderr).toContain('upgrade refused by the version-skew policy');
  expect(toolkitWrites(skip.requests)).toEqual([]);

  const down = await moto.record(() =>
    cli(
      [...upgradeArgs('--yes', '--confirm', ENV)].map((a) => (a === TO ? 'v1.34.1' : a)),
      vars,
    ),
  );
  expect(down.result.code).toBe(2);
  expect(down.result.stderr).toContain('[kube-downgrade]');
  expect(toolkitWrites(down.requests)).toEqual([]);

  const noTty = await moto.record(() => cli(upgradeArgs(), vars));
  expect(noTty.result.code).toBe(2);
  expect(noTty.result.stderr).toMatch(/stdin is not a terminal; nothing was changed/);
  // the plan was shown first: every phase with what it changes
  for (const p of PHASES) expect(noTty.result.stdout).toContain(p);
  expect(noTty.result.stdout).toContain(`kube-apiserver:${FROM} → registry.k8s.io/kube-apiserver:${TO}`);
  expect(toolkitWrites(noTty.requests)).toEqual([]);

  const plan = await moto.record(() => cli(upgradeArgs('--plan', '--json'), vars));
  expect([plan.result.code, plan.result.code ? plan.result.stderr : '']).toEqual([0, '']);
  expect(plan.result.stderr).toContain('plan only: nothing was written');
  const planJson = JSON.parse(plan.result.stdout) as { phases: { phase: string; state: string }[] };
  expect(planJson.phases.map((r) => [r.phase, r.state])).toEqual(PHASES.map((p) => [p, 'to run']));
  expect(toolkitWrites(plan.requests)).toEqual([]);

  // --etcd-via-bastion: the plan names the tunnel it would open; without agent-setup's ssh
  // config the upgrade is refused (exit 3) naming the file, before anything is written
  const viaBastion = (args: string[]) => {
    const i = args.indexOf('--etcd-endpoint');
    return [...args.slice(0, i), ...args.slice(i + 2), '--etcd-via-bastion'];
  };
  const sshConfig = path.join(ws.home, '.ssh', 'kube-platform', `${ENV}.config`);
  const bastionPlan = await moto.record(() => cli(viaBastion(upgradeArgs('--plan')), vars));
  expect([bastionPlan.result.code, bastionPlan.result.code ? bastionPlan.result.stderr : '']).toEqual([
    0,
    '',
  ]);
  expect(bastionPlan.result.stdout.replace(/\s+/g, ' ')).toContain(
    `etcd snapshot through an ssh tunnel through bastion-${ENV} (${sshConfig}) to etcd-0`,
  );
  expect(bastionPlan.result.stderr).toContain(`${sshConfig} does not exist: the upgrade would refuse`);
  expect(toolkitWrites(bastionPlan.requests)).toEqual([]);
  const noSetup = await moto.record(() => cli(viaBastion(upgradeArgs('--yes', '--confirm', ENV)), vars));
  expect(noSetup.result.code).toBe(3);
  expect(noSetup.result.stderr).toContain(`${sshConfig} does not exist`);
  expect(noSetup.result.stderr).toContain('in this container); nothing was written');
  expect(noSetup.result.stderr).toContain(`eval "$(agent-setup -e ${ENV})"`);
  expect(toolkitWrites(noSetup.requests)).toEqual([]);

  // a working copy whose secure layer holds something the bucket does not: refused (exit 3)
  const stray = path.join(ws.dir, 'secrets', ENV, 'secure', 'stray.txt');
  await writeFile(stray, 'not published\n', { mode: 0o600 });
  const strayRun = await cli(upgradeArgs('--plan'), vars);
  await rm(stray);
  expect(strayRun.code).toBe(3);
  expect(strayRun.stderr).toMatch(/secure differs from the bucket's generation 1: stray\.txt/);

  expect(kube.requests.filter((r) => r.method !== 'GET').length).toBe(kubeWritesBefore);
  expect(await readFile(path.join(ws.dir, 'environments', `${ENV}.env`), 'utf8')).toBe(envBefore);
  expect((await state()).upgrade ?? null).toBeNull();
  expect(await backups.list()).toEqual([]);
}, 120_000);

test('the phases run in order with validate between them; killed in the API-server phase, a rerun resumes there', async () => {
  await bumpWorkerLaunchTemplate();
  const [a, b, c] = masters as [string, string, string];
  const seen: NodeStatus[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const st of (await statuses().catch(() => new Map<string, NodeStatus>())).values()) seen.push(st);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    // first run: B reports unhealthy once it runs the new API server (its probe reads its
    // manifest, so no timing decides it); killed while the upgrade waits on B
    sickOnNewApiserver.add(b);
    const first = start(upgradeArgs('--yes', '--confirm', ENV));
    await until(
      'the API-server phase',
      async () => first.stderr().includes(`upgrade ${TO}: apiservers`),
      120_000,
    );
    const since = first.stderr().indexOf(`upgrade ${TO}: apiservers`);
    await until(
      `${b} allowed the API-server generation`,
      async () => first.stderr().slice(since).includes(`${b} may take generation`),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    first.child.kill('SIGKILL');
    await first.done;

    const mid = (await state()).upgrade!;
    expect(mid.done).toEqual(['preflight', 'snapshot', 'etcd']);
    expect(mid.started).toBe('apiservers');
    expect(mid.desired).toMatchObject({
      etcd: 'v3.6.5',
      'kube-apiserver': TO,
      'kube-scheduler': FROM,
      kubelet: FROM,
    });
    expect(await backups.list()).toHaveLength(1);
    // C never got the new API server; every master runs the new etcd
    expect(imageIn(await manifest(c, 'kube-apiserver'))).toBe(`registry.k8s.io/kube-apiserver:${FROM}`);
    expect(imageIn(await manifest(a, 'kube-apiserver'))).toBe(`registry.k8s.io/kube-apiserver:${TO}`);
    for (const n of masters) expect(imageIn(await manifest(n, 'etcd'))).toBe('registry.k8s.io/etcd:3.6.5-0');

    // meanwhile run is refused: it would render the versions the upgrade started from
    const run = await cli(['run', '-e', ENV, '--skip-terraform', '--yes', '--confirm', ENV], vars);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`an upgrade to ${TO} is in progress`);

    // the rerun resumes at the API servers
    sickOnNewApiserver.delete(b);
    const second = await cli(upgradeArgs('--yes', '--confirm', ENV), vars);
    watching = false;
    await watcher;
    expect([second.code, second.code ? second.stderr : '']).toEqual([0, '']);
    expect(second.stderr).toContain('resuming the upgrade of');
    expect(second.stdout).toMatch(/apiservers.*resumes here/);
    expect(second.stderr).not.toContain(`upgrade ${TO}: snapshot`);
    expect(second.stderr).not.toContain(`upgrade ${TO}: etcd\n`);
    expect(await backups.list()).toHaveLength(1);

    const done = (await state()).upgrade!;
    expect(done.done).toEqual([...PHASES]);
    expect(done.started).toBeNull();
    // the journal: each phase started, then done, in order; apiservers started twice (the kill), nothing else redone
    const events = done.events.map((e) => `${e.event} ${e.phase}`);
    expect(events).toEqual([
      ...['preflight', 'snapshot', 'etcd'].flatMap((p) => [`started ${p}`, `done ${p}`]),
      'started apiservers',
      'started apiservers',
      'done apiservers',
      ...PHASES.slice(4).flatMap((p) => [`started ${p}`, `done ${p}`]),
    ]);
    const at = (ev: string) => Date.parse(done.events.find((e) => `${e.event} ${e.phase}` === ev)!.at);
    expect(at('done validate-apiservers')).toBeLessThanOrEqual(at('started controllers'));
    expect(at('done validate-controllers')).toBeLessThanOrEqual(at('started workers'));
    const s = await state();
    expect(s.lastValidation?.passed).toBe(true);
    expect(s.versions.secure?.desired).toEqual({ kubernetes: TO, etcd: 'v3.6.5' });

    // from the agents' own reports: the controllers' generation reached a master only after
    // every master ran the new API server's generation
    const gens = [...new Set(seen.map((x) => x.generation))].sort((x, y) => x - y);
    const apiGen = gens.at(-2)!;
    const ctlGen = gens.at(-1)!;
    const appliedAt = (n: string, g: number) =>
      Math.min(
        ...seen.filter((x) => x.node === n && x.generation === g).map((x) => Date.parse(x.appliedAt!)),
      );
    const lastApi = Math.max(...masters.map((n) => appliedAt(n, apiGen)));
    for (const n of masters) expect(appliedAt(n, ctlGen)).toBeGreaterThanOrEqual(lastApi);
    for (const n of masters) {
      expect(imageIn(await manifest(n, 'kube-apiserver'))).toBe(`registry.k8s.io/kube-apiserver:${TO}`);
      expect(imageIn(await manifest(n, 'kube-scheduler'))).toBe(`registry.k8s.io/kube-scheduler:${TO}`);
      expect(imageIn(await manifest(n, 'kube-controller-manager'))).toBe(
        `registry.k8s.io/kube-controller-manager:${TO}`,
      );
    }
    // the workers were replaced by roll compute and run the target kubelet
    const workers = (await listInstances(t.aws, ENV)).filter(
      (i) => i.layer === 'compute' && i.state === 'running',
    );
    expect(workers).toHaveLength(2);
    for (const wk of workers) {
      const node = kube.nodes.get(fleet.nodeName(wk));
      expect(node?.kubeletVersion).toBe(TO);
    }
    expect(s.lastRollout).toMatchObject({ layer: 'compute', result: 'completed' });
    expect(s.lastRollout?.replaced).toHaveLength(2);
    // the environment file now names the target
    const envText = await readFile(path.join(ws.dir, 'environments', `${ENV}.env`), 'utf8');
    expect(envText).toMatch(new RegExp(`^KUBERNETES_VERSION=${TO}$`, 'm'));
    expect(envText).toMatch(/^ETCD_VERSION=v3\.6\.5$/m);
  } finally {
    watching = false;
    await watcher;
  }
}, 480_000);

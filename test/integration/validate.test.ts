import { openClusterState } from '../../src/state/store.js';
import { cli, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { createFleetAsgs, type FakeFleet, startFakeFleet } from '../helpers/fake-fleet.js';
import { type KubeDouble, startKubeDouble } from '../helpers/kube-api-double.js';
import { useMoto } from '../helpers/moto.js';

/**
 * `validate` through the built CLI: real ASGs and instances in the local AWS, the
 * Kubernetes API double (through the real client), fake-but-running agents writing the
 * masters' status records with their health. Healthy → 0 after --count passes; a NotReady
 * node and an unhealthy etcd member → 5 naming them; --wait times out with 5; an
 * unreachable API → 5 at once.
 */

const moto = useMoto({ resetEach: false });
const ENV = 'val-it';

let t: TestEnvironment;
let kube: KubeDouble;
let fleet: FakeFleet;
let env: Record<string, string | undefined>;

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
  fleet = startFakeFleet({ aws: t.aws, environment: ENV, store: t.store, kube, intervalMs: 200 });
  await fleet.tick();
  const ws = workspace({ [ENV]: '' });
  env = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await kube?.close();
  t?.aws.destroy();
});

test('a healthy cluster validates: --wait --count 2 passes twice, and the result is recorded', async () => {
  expect(kube.nodes.size).toBe(3);
  const r = await cli(
    [
      'validate',
      '-e',
      ENV,
      '--kubeconfig',
      kube.kubeconfigFile,
      '--wait',
      '--count',
      '2',
      '--interval',
      '0.2',
      '--json',
    ],
    env,
  );
  expect(r.stderr).toContain('attempt 2: healthy (2/2)');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ passed: true, attempts: 2, failures: [] });
  const state = await openClusterState(t.aws, {
    environment: ENV,
    bucket: t.names.stateBucket,
    kmsKeyId: t.kmsKeyArn,
    toolkitVersion: '0.1.0',
  });
  expect((await state.read()).state.lastValidation).toMatchObject({ passed: true, failures: [] });
});

test('a NotReady node and an unhealthy etcd member: exit 5, each named', async () => {
  const worker = [...kube.nodes.values()].find((n) => !kube.pods.some((p) => p.nodeName === n.name))!;
  worker.ready = false;
  const master = (await import('../../src/aws/inventory.js')).listInstances(t.aws, ENV);
  const m = (await master).find((i) => i.layer === 'secure')!;
  fleet.etcdDown.add(m.instanceId);
  await fleet.tick();
  try {
    const r = await cli(['validate', '-e', ENV, '--kubeconfig', kube.kubeconfigFile], env);
    expect(r.code).toBe(5);
    expect(r.stdout).toContain(
      `node ${worker.name} is NotReady (KubeletNotReady: container runtime network not ready)`,
    );
    expect(r.stdout).toContain(`etcd member on ${m.instanceId} is unhealthy: etcd metrics listener`);
    expect(r.stdout).toContain(`kube-apiserver on ${m.instanceId}`);
    expect(r.stderr).toContain('is not healthy');
    const w = await cli(
      [
        'validate',
        '-e',
        ENV,
        '--kubeconfig',
        kube.kubeconfigFile,
        '--wait',
        '--interval',
        '0.2',
        '--timeout',
        '1',
      ],
      env,
    );
    expect(w.code).toBe(5);
    expect(w.stderr).toMatch(/did not validate within 1 s \(\d+ validations\)/);
  } finally {
    worker.ready = true;
    fleet.etcdDown.clear();
    await fleet.tick();
  }
});

test('an unreachable API server is reported at once', async () => {
  const gone = await startKubeDouble();
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const file = `${mkdtempSync(`${(await import('node:os')).tmpdir()}/kp-gone-`)}/admin.conf`;
  writeFileSync(file, gone.kubeconfig, { mode: 0o600 });
  await gone.close();
  const t0 = Date.now();
  const r = await cli(['validate', '-e', ENV, '--kubeconfig', file], env);
  const took = Date.now() - t0;
  expect(r.code).toBe(5);
  expect(r.stdout).toMatch(/https:\/\/127\.0\.0\.1:\d+ is unreachable/);
  expect(took).toBeLessThan(15_000);
  process.stderr.write(`validate with an unreachable API returned in ${took} ms (CLI start included)\n`);
});

test('sync-status with zero instances does not report success (after cleanup: exit 5)', async () => {
  const empty = await bootstrapEnvironment(moto.endpoint, 'val-empty');
  try {
    await empty.store.publish('secure', [
      {
        path: 'manifests/x.yaml',
        content: Buffer.from('x'),
        sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
        size: 1,
        mode: 0o600,
      },
    ]);
    const ws = workspace({ 'val-empty': '' });
    const e = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
    const r = await cli(['sync-status', '-e', 'val-empty', '--layer', 'secure'], e);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('masters: no running instances');
    expect(r.stderr).toContain('no running instances for secure (generation 1): nothing has converged');
    expect(r.stderr).not.toMatch(/converged 0\/0/);
  } finally {
    empty.aws.destroy();
  }
});

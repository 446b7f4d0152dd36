import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PlatformError } from '../../src/errors.js';
import { setLogSink } from '../../src/log.js';
import { sha256 } from '../../src/secrets/envelope.js';
import {
  abortRollout,
  describeRollout,
  driveRollout,
  publishStaged,
  readRollout,
  statusesOf,
} from '../../src/secrets/rollout.js';
import { type LocalHealth, type NodeStatus, parseStatus } from '../../src/secrets/status.js';
import type { LocalFile } from '../../src/secrets/store.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { startMasterAgents, until } from '../helpers/master-agents.js';
import { useMoto } from '../helpers/moto.js';

/**
 * Staged rollouts with three real agents (runAgent, as on the masters) against the local
 * AWS: generation N+1 reaches master A alone until A reports healthy, then B, then C
 * (asserted from the agents' own status timestamps); with A unhealthy, B and C stay at N and
 * the rollout names A; abort returns A to N.
 */
const moto = useMoto({ resetEach: false });
const ENV = 'ro-test';
const NODES = ['master-a', 'master-b', 'master-c'];
let env: TestEnvironment;
let work: string;
const stop = new AbortController();
const healthy = new Map(NODES.map((n) => [n, true]));
const running: Promise<void>[] = [];
let restoreLog: () => void;

const pod = (image: string) =>
  Buffer.from(
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n    - name: kube-apiserver\n      image: ${image}\n`,
  );
const files = (image: string): LocalFile[] => {
  const content = pod(image);
  return [
    {
      path: 'manifests/kube-apiserver.yaml',
      content,
      sha256: sha256(content),
      size: content.length,
      mode: 0o600,
    },
  ];
};
const health = (node: string) => async (): Promise<LocalHealth> => {
  const checkedAt = new Date().toISOString();
  const ok = healthy.get(node)!;
  return {
    etcd: {
      checkedAt,
      healthy: ok,
      reason: ok ? '' : 'member has no leader',
      hasLeader: ok,
      isLeader: false,
      version: '3.6.4',
    },
    apiserver: { checkedAt, ready: true, detail: '' },
  };
};
const manifestOf = async (node: string) =>
  (await readFile(path.join(work, node, 'manifests', 'kube-apiserver.yaml'), 'utf8').catch(() => '')).match(
    /image: (\S+)/,
  )?.[1];
const statuses = () => statusesOf(env.store, 'secure', parseStatus);

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  env = await bootstrapEnvironment(moto.endpoint, ENV);
  work = await mkdtemp(path.join(os.tmpdir(), 'kp-rollout-'));
  await env.store.publish('secure', files('registry.k8s.io/kube-apiserver:v1.34.1'));
  running.push(
    ...startMasterAgents({
      store: env.store,
      environment: ENV,
      nodes: NODES,
      work,
      signal: stop.signal,
      probe: health,
    }),
  );
  await until('every master on generation 1', async () => {
    const s = await statuses();
    return NODES.every((n) => s.get(n)?.generation === 1);
  });
}, 60_000);

afterAll(async () => {
  stop.abort();
  await Promise.all(running);
  env?.aws.destroy();
  restoreLog();
  if (work) await rm(work, { recursive: true, force: true });
});

test('N+1 reaches A alone until A reports healthy, then B, then C', async () => {
  const prepared = await env.store.prepare('secure', files('registry.k8s.io/kube-apiserver:v1.34.2'));
  const { record } = await publishStaged(env.store, ENV, prepared, { order: NODES });
  expect(record?.target.generation).toBe(2);
  // nobody is allowed yet: the new index is there, every agent stays on generation 1
  await new Promise((r) => setTimeout(r, 1000));
  for (const n of NODES) expect(await manifestOf(n)).toBe('registry.k8s.io/kube-apiserver:v1.34.1');

  const seen: NodeStatus[] = [];
  let watching = true;
  const watch = (async () => {
    while (watching) {
      for (const s of (await statuses()).values()) seen.push(s);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const done = await driveRollout(env.store, ENV, 'secure', {
    timeoutS: 20,
    pollMs: 100,
    parse: parseStatus,
  });
  watching = false;
  await watch;
  expect(done.state).toBe('complete');
  for (const n of NODES) expect(await manifestOf(n)).toBe('registry.k8s.io/kube-apiserver:v1.34.2');

  // from the agents' own reports: when each applied generation 2, and when it first reported healthy on it
  const applied = (n: string) =>
    Math.min(...seen.filter((s) => s.node === n && s.generation === 2).map((s) => Date.parse(s.appliedAt!)));
  const firstHealthy = (n: string) =>
    Math.min(
      ...seen
        .filter(
          (s) => s.node === n && s.generation === 2 && s.health?.etcd?.healthy && s.health.apiserver?.ready,
        )
        .map((s) => Date.parse(s.health!.etcd!.checkedAt)),
    );
  const [a, b, c] = NODES as [string, string, string];
  expect(Number.isFinite(applied(a))).toBe(true);
  expect(applied(b)).toBeGreaterThanOrEqual(firstHealthy(a));
  expect(applied(c)).toBeGreaterThanOrEqual(firstHealthy(b));
  expect(applied(a)).toBeLessThan(applied(b));
  expect(applied(b)).toBeLessThan(applied(c));
}, 60_000);

test('with A unhealthy, B and C stay at N, the rollout stops naming A; abort returns A to N', async () => {
  healthy.set('master-a', false);
  const prepared = await env.store.prepare('secure', files('registry.k8s.io/kube-apiserver:v1.34.3'));
  await publishStaged(env.store, ENV, prepared, { order: NODES });
  const err = await driveRollout(env.store, ENV, 'secure', {
    timeoutS: 3,
    pollMs: 100,
    parse: parseStatus,
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(PlatformError);
  expect((err as Error).message).toMatch(
    /master-a is not healthy: etcd member unhealthy: member has no leader/,
  );
  expect(await manifestOf('master-a')).toBe('registry.k8s.io/kube-apiserver:v1.34.3');
  for (const n of ['master-b', 'master-c']) {
    expect(await manifestOf(n)).toBe('registry.k8s.io/kube-apiserver:v1.34.2');
    expect((await statuses()).get(n)?.generation).toBe(2);
  }
  const cur = await readRollout(env.store, ENV, 'secure');
  expect(cur?.record).toMatchObject({
    state: 'failed',
    failure: { node: 'master-a' },
    allowed: ['master-a'],
  });
  const lines = describeRollout(cur!.record, await statuses());
  expect(lines.join('\n')).toMatch(/failed at master-a: etcd member unhealthy/);

  await abortRollout(env.store, ENV, 'secure');
  await until(
    'master-a back on generation 2',
    async () => (await statuses()).get('master-a')?.generation === 2,
  );
  expect(await manifestOf('master-a')).toBe('registry.k8s.io/kube-apiserver:v1.34.2');
  for (const n of NODES) expect((await statuses()).get(n)?.generation).toBe(2);
}, 60_000);

test('idle after the rollout settled (aborted here): one index poll a tick, the record not re-read until the index changes', async () => {
  // every agent has seen the aborted record (the test before waited for master-a's return)
  await new Promise((r) => setTimeout(r, 500));
  const { requests } = await moto.record(() => new Promise((r) => setTimeout(r, 2000)));
  const gets = requests.filter((q) => q.method === 'GET');
  const recordReads = gets.filter((q) => q.url.includes('/rollout/secure'));
  const indexReads = gets.filter((q) => q.url.includes('/index/secure'));
  process.stderr.write(
    `idle 2 s, 3 agents at 0.2 s: ${indexReads.length} index polls, ${recordReads.length} rollout record reads\n`,
  );
  expect(indexReads.length).toBeGreaterThanOrEqual(15);
  expect(recordReads).toHaveLength(0);

  // a new rollout (its record, then its index) is still seen and gated: N+1 reaches nobody
  // until promoted, then master-a alone
  healthy.set('master-a', true);
  const prepared = await env.store.prepare('secure', files('registry.k8s.io/kube-apiserver:v1.34.4'));
  await publishStaged(env.store, ENV, prepared, { order: NODES });
  await new Promise((r) => setTimeout(r, 1000));
  for (const n of NODES) expect(await manifestOf(n)).toBe('registry.k8s.io/kube-apiserver:v1.34.2');
  await driveRollout(env.store, ENV, 'secure', { timeoutS: 20, pollMs: 100, parse: parseStatus });
  for (const n of NODES) expect(await manifestOf(n)).toBe('registry.k8s.io/kube-apiserver:v1.34.4');
}, 60_000);

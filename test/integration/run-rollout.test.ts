import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { listInstances } from '../../src/aws/inventory.js';
import { setLogSink } from '../../src/log.js';
import { readRollout, statusesOf } from '../../src/secrets/rollout.js';
import { type LocalHealth, type NodeStatus, parseStatus } from '../../src/secrets/status.js';
import { openClusterState } from '../../src/state/store.js';
import { toolkitVersion } from '../../src/version.js';
import { cli, sharedEnvFile, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { startMasterAgents, until } from '../helpers/master-agents.js';
import { useMoto } from '../helpers/moto.js';

/**
 * `run` publishes a control-plane change as a staged rollout (issue 14 item 1): three masters
 * in the local AWS, each with a real agent (runAgent, with the rollout gate, as on the
 * masters) whose health probe the test controls. A new etcd version (ETCD_VERSION in the
 * environment file, so the rendered etcd static pod changes) reaches master A alone until A
 * reports healthy on it, then B, then C (from the agents' own status timestamps); with B
 * unhealthy, `run` stops naming B, C stays on the previous generation, and the next `run`
 * refuses to publish over the unfinished rollout (exit 3). A cluster state written by a newer
 * toolkit is refused before anything is planned, unless --allow-downgrade.
 */
const moto = useMoto({ resetEach: false });
const ENV = 'run-ro';
let env: TestEnvironment;
let work: string;
let masters: string[];
let ws: { dir: string; home: string };
let vars: Record<string, string | undefined>;
const stop = new AbortController();
const running: Promise<void>[] = [];
const healthy = new Map<string, boolean>();
let restoreLog: () => void;

const probe = (node: string) => async (): Promise<LocalHealth> => {
  const checkedAt = new Date().toISOString();
  const ok = healthy.get(node) ?? true;
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
const etcdImage = async (node: string) =>
  (await readFile(path.join(work, node, 'manifests', 'etcd.yaml'), 'utf8').catch(() => '')).match(
    /image: "?([^"\s]+)/,
  )?.[1];
const statuses = () => statusesOf(env.store, 'secure', parseStatus);
/** Sets ETCD_VERSION in the environment file (so the rendered etcd static pod changes). */
async function setEtcdVersion(v: string): Promise<void> {
  const file = path.join(ws.dir, 'environments', `${ENV}.env`);
  const text = (await readFile(file, 'utf8')).replace(/^ETCD_VERSION=.*\n/m, '');
  await writeFile(file, `${text}ETCD_VERSION=${v}\n`);
}

const run = (...extra: string[]) =>
  cli(
    ['run', '-e', ENV, '--skip-terraform', '--yes', '--confirm', ENV, '--rollout-timeout', '8', ...extra],
    vars,
  );

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  env = await bootstrapEnvironment(moto.endpoint, ENV);
  const launched = await (await env.aws.ec2()).send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      InstanceType: 't3.medium',
      MinCount: 3,
      MaxCount: 3,
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: 'Name', Value: `${ENV}-secure` },
            { Key: 'Environment', Value: ENV },
            { Key: 'Layer', Value: 'secure' },
          ],
        },
      ],
    }),
  );
  expect(launched.Instances).toHaveLength(3);
  // the inventory's order is the rollout's
  masters = (await listInstances(env.aws, ENV)).filter((r) => r.layer === 'secure').map((r) => r.instanceId);
  ws = workspace({ [ENV]: sharedEnvFile() });
  vars = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  work = await mkdtemp(path.join(os.tmpdir(), 'kp-run-ro-'));

  // generation 1: the first publish has no previous generation to stage against
  const first = await run();
  expect([first.code, first.code ? first.stderr : '']).toEqual([0, '']);
  expect(first.stderr).not.toMatch(/rollout record/);
  running.push(
    ...startMasterAgents({
      store: env.store,
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
  for (const n of masters) expect(await etcdImage(n)).toMatch(/etcd:3\.6\.4-0$/);
}, 240_000);

afterAll(async () => {
  stop.abort();
  await Promise.all(running);
  env?.aws.destroy();
  restoreLog();
  if (work) await rm(work, { recursive: true, force: true });
});

test('a new etcd version reaches one master at a time, each only after the last reported healthy on it', async () => {
  await setEtcdVersion('v3.6.5');
  // every status the agents report while run drives the rollout
  const seen: NodeStatus[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const st of (await statuses()).values()) seen.push(st);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const r = await run();
  watching = false;
  await watcher;
  expect([r.code, r.code ? r.stderr : '']).toEqual([0, '']);
  expect(r.stdout).toMatch(/~ manifests\/etcd\.yaml/);
  expect(r.stderr).toMatch(/reaches the running masters one at a time/);
  expect(r.stderr).toContain(`masters in order: ${masters.join(', ')}`);
  expect(r.stderr).toMatch(/rollout of secure generation 2: complete/);
  // these agents run without an etcd endpoint (no pre-rollout snapshot): run says so
  expect(r.stderr).toMatch(
    new RegExp(`no etcd snapshot under backups/etcd/ since ${masters[0]} was allowed generation 2`),
  );

  const rec = (await readRollout(env.store, ENV, 'secure'))!.record;
  expect(rec).toMatchObject({ state: 'complete', order: masters, allowed: masters, strategy: 'staged' });
  expect(rec.previous?.generation).toBe(1);
  // from the agents' own reports: when each applied generation 2, and first reported healthy on it
  const applied = (n: string) =>
    Math.min(...seen.filter((x) => x.node === n && x.generation === 2).map((x) => Date.parse(x.appliedAt!)));
  const firstHealthy = (n: string) =>
    Math.min(
      ...seen
        .filter(
          (x) => x.node === n && x.generation === 2 && x.health?.etcd?.healthy && x.health.apiserver?.ready,
        )
        .map((x) => Date.parse(x.health!.etcd!.checkedAt)),
    );
  expect(Number.isFinite(applied(masters[0]!))).toBe(true);
  for (let i = 1; i < masters.length; i++) {
    expect(applied(masters[i]!)).toBeGreaterThanOrEqual(firstHealthy(masters[i - 1]!));
    expect(applied(masters[i]!)).toBeGreaterThan(applied(masters[i - 1]!));
  }
  for (const n of masters) expect(await etcdImage(n)).toMatch(/etcd:3\.6\.5-0$/);
});

test('an unhealthy master stops the rollout, named; the next ones stay on the previous generation; a new run refuses (exit 3)', async () => {
  const [a, b, c] = masters as [string, string, string];
  healthy.set(b, false);
  await setEtcdVersion('v3.6.6');
  const r = await run();
  expect([r.code, r.stderr]).toEqual([1, expect.stringContaining('stopped')]);
  expect(r.stderr).toContain(`${b} is not healthy: etcd member unhealthy: member has no leader`);
  const rec = (await readRollout(env.store, ENV, 'secure'))!.record;
  expect(rec).toMatchObject({ state: 'failed', allowed: [a, b], failure: { node: b } });
  expect(await etcdImage(a)).toMatch(/etcd:3\.6\.6-0$/);
  expect(await etcdImage(c)).toMatch(/etcd:3\.6\.5-0$/);
  expect((await statuses()).get(c)?.generation).toBe(2);

  const status = await cli(['rollout', 'status', '-e', ENV], vars);
  expect(status.code).toBe(0);
  expect(status.stdout).toContain(b);
  expect(status.stdout).toMatch(/failed/);

  await setEtcdVersion('v3.6.7');
  const again = await run();
  expect(again.code).toBe(3);
  expect(again.stderr).toMatch(/a rollout of secure generation 3 is failed/);
  expect(again.stderr).toContain('rollout resume -e');
  // refused before anything was written: the working copy still holds generation 3's manifest
  expect(
    await readFile(path.join(ws.dir, 'secrets', ENV, 'secure', 'manifests', 'etcd.yaml'), 'utf8'),
  ).toMatch(/etcd:3\.6\.6-0/);
  expect(await etcdImage(c)).toMatch(/etcd:3\.6\.5-0$/);

  // fixed and resumed, it completes from where it stopped
  healthy.set(b, true);
  const resumed = await cli(['rollout', 'resume', '-e', ENV, '--timeout', '20'], vars);
  expect([resumed.code, resumed.code ? resumed.stderr : '']).toEqual([0, '']);
  await until('C on generation 3', async () => (await etcdImage(c))?.endsWith('3.6.6-0') ?? false);
}, 240_000);

test('a cluster state written by a newer toolkit: run refuses before planning (exit 2), unless --allow-downgrade', async () => {
  const newer = await openClusterState(env.aws, {
    environment: ENV,
    bucket: env.names.stateBucket,
    kmsKeyId: env.kmsKeyArn,
    toolkitVersion: '99.0.0',
  });
  const base = await newer.read();
  expect(base.state.revision).toBeGreaterThan(0);
  await newer.write(base, base.state);
  const before = await readRollout(env.store, ENV, 'secure');

  const refused = await run();
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(
    `last written by kube-platform 99.0.0, newer than this toolkit (${toolkitVersion()})`,
  );
  expect(refused.stderr).toContain('--allow-downgrade');
  expect(refused.stdout).toBe('');
  expect((await readRollout(env.store, ENV, 'secure'))?.etag).toBe(before?.etag);

  const allowed = await run('--allow-downgrade');
  expect([allowed.code, allowed.code ? allowed.stderr : '']).toEqual([0, '']);
  expect(allowed.stderr).toMatch(/rollout of secure generation 4: complete/);
  const after = await newer.read();
  expect(after.state.toolkitVersion).toBe(toolkitVersion());
  expect(after.state.generations.secure).toBe(4);
}, 240_000);

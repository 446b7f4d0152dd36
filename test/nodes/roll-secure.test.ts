import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AwsClients } from '../../src/aws/clients.js';
import { describeFleetInstances } from '../../src/aws/fleet.js';
import { rollBackups } from '../../src/commands/roll.js';
import { backupStore } from '../../src/context/environment.js';
import { AbortError, ConflictError } from '../../src/errors.js';
import { readLayerStatuses } from '../../src/fleet/convergence.js';
import { setLogSink } from '../../src/log.js';
import {
  computeRollPlan,
  type RollDeps,
  type RollOptions,
  reportedLeader,
  runRoll,
} from '../../src/roll/runner.js';
import type { RollBackups } from '../../src/roll/snapshot.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { type ClusterStateStore, openClusterState } from '../../src/state/store.js';
import { toolkitVersion } from '../../src/version.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { Harness } from './harness.js';
import {
  bridge,
  claim,
  clientUrl,
  etcdClientFiles,
  etcdctl,
  healthyMembers,
  MasterCloud,
  type Masters,
  nodeTestTools,
  prepareMasters,
  startAgent,
  startEtcd,
  waitForAllHealthy,
} from './masters.js';

/**
 * `roll secure` on real etcd (issue 13 item 5, issue 14 item 3): 3 masters on the node
 * harness, each running the shipped claim script, etcd as its static pod says and its real
 * agent, which reports the local member's health (from etcd's loopback metrics listener) to
 * the secrets bucket in the local AWS; the quorum gate reads those reports. The roll runner
 * (src/roll/runner.ts) drives the masters through the local AWS: a termination it makes
 * stops that master's agent and etcd (SIGTERM, as at shutdown), and the ASG's replacement
 * boots on the same test host (./masters.ts, MasterCloud): claim script — the member's ENI
 * address and volume —, then etcd from the same data directory, then the agent. The
 * toolkit's snapshots go through a route to one member (`--etcd-endpoint`, here a bridge
 * into the harness's namespaces standing in for an ssh tunnel).
 *
 * Health of every member is sampled every second during the whole roll, independently of
 * the agents (etcdctl endpoint health, a linearizable read through each member): never fewer
 * than ⌊N/2⌋+1 healthy.
 *
 * The Kubernetes side of the roll (cordon, drain, Node Ready, validate) is covered by
 * test/integration/roll.test.ts against the API double; here no API server runs (none can on
 * this machine), so the runner gets no API and its validation is etcd's own health, twice.
 */

const work = mkdtempSync(path.join(os.tmpdir(), 'kp-roll-'));
const harness = new Harness(work);
const N = 3;
const QUORUM = Math.floor(N / 2) + 1;
const HEARTBEAT_S = 1;
let restoreLog: () => void;
let logLines: string[] = [];
let stubBin: string;
let m: Masters;
let t: TestEnvironment;
let aws: AwsClients;
let store: SecretStore;
let state: ClusterStateStore;
let backups: RollBackups;
let cloud: MasterCloud;
const closers: (() => Promise<void>)[] = [];
const terminations: string[] = [];

function options(signal: AbortSignal): RollOptions {
  return {
    layer: 'secure',
    force: true,
    maxUnavailable: 1,
    drainTimeoutS: 60,
    onDrainTimeout: 'fail',
    replaceTimeoutS: 240,
    pollS: 0.5,
    evictRetryS: 5,
    allowDowngrade: false,
    signal,
    heartbeatS: 5,
    freshWaitS: 30,
  };
}

function deps(): RollDeps {
  return {
    aws,
    environment: m.cfg.name,
    store,
    state,
    backups,
    owner: { arn: 'arn:aws:iam::123456789012:user/kp-nodes', host: os.hostname(), pid: process.pid },
    // no API server here: the runner's validation is etcd's health, every member, twice
    validate: async () => {
      const t0 = Date.now();
      const failures: { check: string; message: string }[] = [];
      for (let pass = 0; pass < 2; pass++) {
        const ok = await healthyMembers(harness, m);
        if (ok.length !== N) {
          failures.push({ check: 'etcd', message: `etcd healthy: ${ok.join(', ') || 'none'} of ${N}` });
          break;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      return {
        passed: failures.length === 0,
        attempts: 2,
        failures: failures as never,
        timedOut: false,
        elapsedS: (Date.now() - t0) / 1000,
      };
    },
  };
}

async function plan() {
  const leader = await reportedLeader(store);
  return (await computeRollPlan(aws, m.cfg.name, 'secure', { force: true, leader })).plan;
}

/** Waits until every running master's agent reports its member healthy (after `after`). */
async function reportsHealthy(after = Date.now(), timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const running = (await describeFleetInstances(aws, m.cfg.name)).filter(
      (i) => i.layer === 'secure' && i.state === 'running',
    );
    const s = await readLayerStatuses(store, 'secure');
    const ok = running.filter((i) => {
      const e = s.get(i.instanceId)?.health?.etcd;
      return e?.healthy && Date.parse(e.checkedAt) > after;
    });
    if (ok.length === N && running.length === N) return;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`agents' reports not healthy: ${ok.length} of ${running.length}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_EC2_METADATA_DISABLED: 'true',
};
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  // the local AWS's dummy credentials, for this process's clients (as test/helpers/moto.ts does)
  for (const [k, v] of Object.entries(AWS_ENV)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  restoreLog = setLogSink((l) => {
    const line = `${new Date().toISOString()} ${l}`;
    logLines.push(line);
    process.stderr.write(`${line}\n`);
  });
  const tools = await nodeTestTools(harness, work, 'kp-roll');
  stubBin = tools.stubBin;
  await harness.start();
  m = await prepareMasters(harness, work, N, 'r', tools.sshPublicKey);

  // the toolkit's side: the local AWS and one member, reached through bridges into the harness
  const motoBridge = await bridge(harness, 'moto', '127.0.0.1', 5000);
  closers.push(motoBridge.close);
  t = await bootstrapEnvironment(`http://127.0.0.1:${motoBridge.port}`, m.cfg.name);
  aws = t.aws;
  store = t.store;
  state = await openClusterState(aws, {
    environment: m.cfg.name,
    bucket: t.names.stateBucket,
    kmsKeyId: t.kmsKeyArn,
    toolkitVersion: toolkitVersion(),
  });
  // every TerminateInstanceInAutoScalingGroup the toolkit sends
  (await aws.autoscaling()).middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'TerminateInstanceInAutoScalingGroupCommand')
        terminations.push((args.input as { InstanceId: string }).InstanceId);
      return next(args);
    },
    { step: 'initialize', name: 'kpCountTerminations' },
  );
  const etcd0 = new URL(clientUrl(m, 'etcd-0'));
  const etcdBridge = await bridge(harness, 'etcd-0', etcd0.hostname, 2379);
  closers.push(etcdBridge.close);
  const files = await etcdClientFiles(m);
  backups = await rollBackups(
    {
      etcdEndpoint: `https://127.0.0.1:${etcdBridge.port}`,
      etcdCacert: files.cacert,
      etcdCert: files.cert,
      etcdKey: files.key,
    },
    m.cfg.name,
    await backupStore({ aws, cfg: m.cfg, names: t.names }),
  );

  // what run publishes for the masters: the secure layer's manifests
  await store.publish(
    'secure',
    [...m.secureManifests].map(([p, text]) => {
      const content = Buffer.from(text);
      return {
        path: p,
        content,
        sha256: createHash('sha256').update(content).digest('hex'),
        size: content.length,
        mode: 0o600,
      };
    }),
  );
  for (const c of await claim(harness, m, stubBin))
    expect([c.member, c.exitCode, c.exitCode ? c.stderr : '']).toEqual([c.member, 0, '']);
  for (const h of m.hosts) await startEtcd(harness, m, h);
  await waitForAllHealthy(harness, m);
  const agentOpts = { bucket: t.names.secretsBucket, stubBin, heartbeatS: HEARTBEAT_S };
  for (const h of m.hosts) await startAgent(harness, m, h, agentOpts);
  await reportsHealthy();
  cloud = new MasterCloud(harness, m, aws, agentOpts);
  cloud.start();
}, 600_000);

afterAll(async () => {
  await cloud?.stop();
  for (const p of [...(m?.agents.values() ?? []), ...(m?.etcd.values() ?? [])]) await p.stop(3000);
  for (const c of closers) await c();
  t?.aws.destroy();
  await harness.destroy();
  restoreLog();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(work, { recursive: true, force: true });
}, 120_000);

test('with one member down before the roll, roll secure refuses (conflict, the member named) and terminates nobody', async () => {
  const victim = m.hosts[1]!;
  await m.etcd.get(victim.member)!.stop(10_000);
  m.etcd.delete(victim.member);
  const since = Date.now();
  // until its agent has reported the member down
  for (let i = 0; ; i++) {
    const e = (await readLayerStatuses(store, 'secure')).get(victim.instance.id)?.health?.etcd;
    if (e && !e.healthy && Date.parse(e.checkedAt) > since) break;
    if (i > 60) throw new Error(`the agent of ${victim.member} did not report it down`);
    await new Promise((r) => setTimeout(r, 500));
  }
  try {
    const before = terminations.length;
    const e = await runRoll(deps(), options(new AbortController().signal), await plan()).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ConflictError);
    expect((e as ConflictError).exitCode).toBe(3);
    expect((e as Error).message).toMatch(
      new RegExp(
        `^refusing to take down master i-[0-9a-f]+: etcd member not healthy: ${victim.member} \\(${victim.instance.id}\\): unhealthy \\(`,
      ),
    );
    expect(terminations.length).toBe(before);
    const running = (await describeFleetInstances(aws, m.cfg.name)).filter(
      (i) => i.layer === 'secure' && i.state === 'running',
    );
    expect(running.map((i) => i.instanceId).sort()).toEqual(m.hosts.map((h) => h.instance.id).sort());
    // nothing was done: the operation is released, no journal left behind
    expect((await state.read()).state.operation).toBeNull();
    process.stderr.write(`roll secure refused: ${(e as Error).message}\n`);
  } finally {
    await startEtcd(harness, m, victim);
    await waitForAllHealthy(harness, m);
    await reportsHealthy();
  }
}, 300_000);

test('roll secure replaces the 3 masters one at a time, interrupted and rerun: quorum at every 1 s sample, nobody terminated twice, the members keep their identity and data', async () => {
  const put = await etcdctl(harness, m, ['put', '/registry/kp-roll/before', 'kept']);
  expect(put.stdout.trim()).toBe('OK');
  const idsBefore = new Map<string, string>();
  for (const h of m.hosts) {
    const st = JSON.parse(
      (await etcdctl(harness, m, ['endpoint', 'status', '-w', 'json'], [clientUrl(m, h.member)])).stdout,
    );
    idsBefore.set(h.member, String(st[0].Status.header.member_id));
  }
  const original = m.hosts.map((h) => h.instance.id).sort();
  const snapshotsBefore = new Set((await backups.list()).map((b) => b.key));

  // health of every member, every second, for the whole roll
  const samples: { at: number; healthy: string[] }[] = [];
  let sampling = true;
  const pending: Promise<void>[] = [];
  const sampler = (async () => {
    while (sampling) {
      const at = Date.now();
      pending.push(healthyMembers(harness, m).then((healthy) => void samples.push({ at, healthy })));
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - at))));
    }
  })();

  const t0 = Date.now();
  logLines = [];
  let rerunLog: string[] = [];
  try {
    // the first run, interrupted (Ctrl-C) right after its first termination
    const ctl = new AbortController();
    const first = runRoll(deps(), options(ctl.signal), await plan()).catch((x: unknown) => x);
    for (let i = 0; !logLines.some((l) => /terminating \(the ASG/.test(l)); i++) {
      if (i > 1200) throw new Error(`no termination within 10 minutes:\n${logLines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    ctl.abort(new Error('interrupted'));
    const e = await first;
    expect(e).toBeInstanceOf(AbortError);
    expect(terminations).toHaveLength(1);
    const op = (await state.read()).state.operation;
    expect(op?.interruptedAt).toBeTruthy();
    expect(op?.steps.filter((s) => s.action === 'terminate').map((s) => s.instanceId)).toEqual(terminations);

    // run again: it resumes, and waits for the replacement of the one already terminated
    logLines = [];
    const report = await runRoll(deps(), options(new AbortController().signal), await plan()).catch(
      (x: unknown) => {
        // what the stand-in for EC2 and the ASGs saw go wrong says why a replacement never came up
        throw new Error(
          `${(x as Error).message}\nstand-in errors: ${JSON.stringify(cloud.errors)}\nroll log:\n${logLines.join('\n')}`,
        );
      },
    );
    rerunLog = logLines;
    expect(report.resumed).toBe(true);
    expect(rerunLog.join('\n')).toMatch(/its termination is in the journal; not terminating again/);
    expect(report.replaced.map((r) => r.old).sort()).toEqual(original);
  } finally {
    sampling = false;
    await sampler;
    await Promise.all(pending);
  }
  const rollS = (Date.now() - t0) / 1000;

  // nobody terminated twice; every original master exactly once
  expect([...terminations].sort()).toEqual(original);
  expect(new Set(terminations).size).toBe(N);
  expect(cloud.errors).toEqual([]);
  expect(cloud.events.map((e) => e.old).sort()).toEqual(original);

  // the quorum invariant at every sample
  const min = Math.min(...samples.map((s) => s.healthy.length));
  const belowQuorum = samples.filter((s) => s.healthy.length < QUORUM);
  const windows = cloud.events
    .map((e) => `${e.member} down ${((e.startedAt - e.stoppedAt) / 1000).toFixed(1)} s`)
    .join(', ');
  process.stderr.write(
    `roll secure, ${N} masters: ${samples.length} health samples (1 s apart), minimum healthy ${min} of ${N} (quorum ${QUORUM}); roll ${rollS.toFixed(1)} s (interrupted once, resumed); ${windows}\n`,
  );
  expect(belowQuorum).toEqual([]);
  expect(samples.length).toBeGreaterThanOrEqual(Math.floor(rollS) - 2);
  // the roll did take members down: the samples saw it
  expect(min).toBe(N - 1);

  // each member kept its identity (same ID, from the same data directory) and the data
  for (const h of m.hosts) {
    const st = JSON.parse(
      (await etcdctl(harness, m, ['endpoint', 'status', '-w', 'json'], [clientUrl(m, h.member)])).stdout,
    );
    expect([h.member, String(st[0].Status.header.member_id)]).toEqual([h.member, idsBefore.get(h.member)]);
    const got = await etcdctl(
      harness,
      m,
      ['get', '/registry/kp-roll/before', '--print-value-only', '--consistency=s'],
      [clientUrl(m, h.member)],
    );
    expect([h.member, got.stdout.trim()]).toEqual([h.member, 'kept']);
    expect(original).not.toContain(h.instance.id);
  }
  expect(
    JSON.parse((await etcdctl(harness, m, ['member', 'list', '-w', 'json'])).stdout).members,
  ).toHaveLength(N);

  // snapshots: one before each run, and one at most 60 s old before every termination
  const taken = (await backups.list()).filter((b) => !snapshotsBefore.has(b.key));
  expect(taken.length).toBeGreaterThanOrEqual(2);
  const final = await state.read();
  expect(final.state.operation).toBeNull();
  expect(final.state.lastRollout).toMatchObject({ layer: 'secure', result: 'completed' });
  expect(final.state.lastBackup?.key).toBe(taken.at(-1)!.key);
  for (const e of cloud.events) {
    const before = taken.filter(
      (b) => b.takenAtMs <= e.terminatedAt && e.terminatedAt - b.takenAtMs <= 61_000,
    );
    expect([e.member, before.length > 0]).toEqual([e.member, true]);
  }
}, 1_200_000);

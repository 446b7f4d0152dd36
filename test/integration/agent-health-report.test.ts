import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runAgent } from '../../src/agent/agent.js';
import { setLogSink } from '../../src/log.js';
import { sha256 } from '../../src/secrets/envelope.js';
import { statusesOf } from '../../src/secrets/rollout.js';
import { type LocalHealth, type NodeStatus, parseStatus } from '../../src/secrets/status.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';

/**
 * A master's agent (runAgent, as on the masters) against the local AWS reports a change of its
 * local etcd member's health at once — within its probe interval, not at the next heartbeat
 * (60 s here, as the unit's default) — so `validate` and the roll's quorum gate never read
 * "healthy" minutes after the member went down. Timestamps-only changes are not reported.
 */
const moto = useMoto({ resetEach: false });
const ENV = 'health-report';
let env: TestEnvironment;
let work: string;
let healthy = true;
let probes = 0;
const stop = new AbortController();
let running: Promise<void>;
let restoreLog: () => void;

const probe = async (): Promise<LocalHealth> => {
  probes++;
  const checkedAt = new Date().toISOString();
  return {
    etcd: {
      checkedAt,
      healthy,
      reason: healthy ? '' : 'connection refused',
      hasLeader: healthy,
      isLeader: false,
      version: '3.6.4',
    },
    apiserver: { checkedAt, ready: true, detail: '' },
  };
};

const status = async (): Promise<NodeStatus | undefined> =>
  (await statusesOf(env.store, 'secure', parseStatus)).get('master-a');

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - t0;
}

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  env = await bootstrapEnvironment(moto.endpoint, ENV);
  work = await mkdtemp(path.join(os.tmpdir(), 'kp-health-'));
  const content = Buffer.from(
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  containers: []\n',
  );
  await env.store.publish('secure', [
    { path: 'manifests/etcd.yaml', content, sha256: sha256(content), size: content.length, mode: 0o600 },
  ]);
  running = runAgent({
    store: env.store,
    layers: ['secure'],
    map: { dest: path.join(work, 'manifests') },
    stateFile: (l) => path.join(work, `${l}.state.json`),
    intervalS: 0.2,
    heartbeatS: 60,
    nodeId: 'master-a',
    signal: stop.signal,
    health: { layers: ['secure'], probe, probeS: 0.5 },
  });
  await until('the first report', async () => (await status())?.generation === 1, 20_000);
}, 60_000);

afterAll(async () => {
  stop.abort();
  await running;
  env?.aws.destroy();
  restoreLog();
  if (work) await rm(work, { recursive: true, force: true });
});

test('a member going down and coming back is reported within the probe interval, not at the 60 s heartbeat', async () => {
  const first = (await status())!;
  expect(first.health?.etcd?.healthy).toBe(true);
  // nothing changes: probes run, but no new report before the heartbeat
  const before = probes;
  await new Promise((r) => setTimeout(r, 2000));
  expect(probes - before).toBeGreaterThanOrEqual(3);
  expect((await status())!.heartbeatAt).toBe(first.heartbeatAt);

  healthy = false;
  const down = await until(
    'the unhealthy report',
    async () => (await status())?.health?.etcd?.healthy === false,
    10_000,
  );
  const s = (await status())!;
  expect(s.health?.etcd?.reason).toBe('connection refused');
  expect(Date.parse(s.heartbeatAt) - Date.parse(first.heartbeatAt)).toBeLessThan(30_000);
  healthy = true;
  const up = await until(
    'the healthy report',
    async () => (await status())?.health?.etcd?.healthy === true,
    10_000,
  );
  process.stderr.write(
    `health change reported after ${down} ms (down) and ${up} ms (up); probe interval 500 ms, heartbeat 60 s\n`,
  );
  expect(down).toBeLessThan(5000);
  expect(up).toBeLessThan(5000);
}, 60_000);

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { probeEtcd } from '../../src/agent/health.js';
import { presnapFlags, presnapTake } from '../../src/agent/run.js';
import { checkSnapshotHash } from '../../src/backup/gateway.js';
import {
  type LocalMember,
  planLocalMembers,
  startLocalMembers,
  stopLocalMembers,
} from '../../src/backup/member.js';
import type { OpenedBackups } from '../../src/backup/node-command.js';
import { DEFAULT_RETENTION } from '../../src/backup/retention.js';
import { BackupStore } from '../../src/backup/store.js';
import { PlatformError } from '../../src/errors.js';
import { setLogSink } from '../../src/log.js';
import { toolkitRoot } from '../../src/paths.js';
import { sha256 } from '../../src/secrets/envelope.js';
import {
  abortRollout,
  describeRollout,
  driveRollout,
  publishStaged,
  readRollout,
  statusesOf,
} from '../../src/secrets/rollout.js';
import { type LocalHealth, parseStatus } from '../../src/secrets/status.js';
import type { LocalFile } from '../../src/secrets/store.js';
import { bootstrapEnvironment, TEST_REGION, type TestEnvironment } from '../helpers/env.js';
import { putAll } from '../helpers/etcd.js';
import { startMasterAgents, until as waitUntil } from '../helpers/master-agents.js';
import { useMoto } from '../helpers/moto.js';

/**
 * The etcd snapshot before a staged control-plane rollout (issue 14 item 3), taken node-side
 * by the first master's agent (src/agent/presnap.ts), on a real 3-member etcd cluster (Debian
 * etcd 3.4 on loopback) and the local AWS, with real agents: three in-process agents as on
 * the masters (their etcd health probed from their own member), then master A as the bundled
 * agent configured as the masters' systemd drop-in configures it (KP_ETCD_* variables).
 * - a first publish and the other masters take no snapshot; the first master's snapshot is
 *   under backups/etcd/, authenticates, passes etcd's own hash and is dated before that
 *   master applied the target;
 * - with A's member stopped: A stays on the previous generation, its status names the
 *   snapshot's failure, the driver stops naming A with it, B and C stay; one attempt within
 *   the minute.
 */
const moto = useMoto({ resetEach: false });
const ENV = 'ps-test';
const NODES = ['master-a', 'master-b', 'master-c'] as const;
const MEMBER = { 'master-a': 'etcd-a', 'master-b': 'etcd-b', 'master-c': 'etcd-c' } as const;
let env: TestEnvironment;
let work: string;
let members: LocalMember[] = [];
let backups: BackupStore;
const stops = new Map<string, AbortController>();
const running = new Map<string, Promise<void>>();
const logs: string[] = [];
let restoreLog: () => void;
let bundled: { proc: ChildProcess; stderr: string[]; exited: Promise<number | null> } | undefined;

const pod = (image: string) =>
  Buffer.from(
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n    - name: etcd\n      image: ${image}\n`,
  );
const files = (image: string): LocalFile[] => {
  const content = pod(image);
  return [
    { path: 'manifests/etcd.yaml', content, sha256: sha256(content), size: content.length, mode: 0o600 },
  ];
};
const memberOf = (node: string) => members.find((m) => m.name === MEMBER[node as keyof typeof MEMBER])!;
const dirOf = (node: string, agent = 'in-process') => path.join(work, agent, node);
const imageOf = async (node: string, agent = 'in-process') =>
  (await readFile(path.join(dirOf(node, agent), 'manifests', 'etcd.yaml'), 'utf8').catch(() => '')).match(
    /image: (\S+)/,
  )?.[1];
const statuses = () => statusesOf(env.store, 'secure', parseStatus);

/** Health as a master's agent reports it: etcd from its own (real) member; no API server here. */
const health = (node: string) => async (): Promise<LocalHealth> => ({
  etcd: await probeEtcd(memberOf(node).clientUrl, 1000),
  apiserver: { checkedAt: new Date().toISOString(), ready: true, detail: '' },
});

/** {@link waitUntil}, adding what the bundled agent logged (if one runs) to a timeout. */
async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  await waitUntil(what, cond).catch((e: Error) => {
    const said = bundled ? `; the bundled agent logged:\n${bundled.stderr.join('').slice(-4000)}` : '';
    throw new Error(`${e.message}${said}`);
  });
}

/** One master's real agent loop (test/helpers/master-agents.ts), its snapshot wired from flags as run.ts does. */
function startInProcess(node: string): void {
  const stop = new AbortController();
  stops.set(node, stop);
  const opened: OpenedBackups = {
    store: backups,
    policy: DEFAULT_RETENTION,
    intervalMinutes: 15,
    close: async () => {},
  };
  // the flags as the agent's command line hands them over, checked and wired as run.ts does
  const flags = presnapFlags(
    { layer: ['secure'], dest: '', interval: 1, heartbeat: 60, etcdEndpoint: memberOf(node).clientUrl },
    () => MEMBER[node as keyof typeof MEMBER],
  )!;
  const [loop] = startMasterAgents({
    store: env.store,
    environment: ENV,
    nodes: [node],
    work: path.join(work, 'in-process'),
    signal: stop.signal,
    probe: health,
    presnap: () => presnapTake(opened, flags),
  });
  running.set(node, loop!);
}

async function stopInProcess(node: string): Promise<void> {
  stops.get(node)?.abort();
  await running.get(node);
  running.delete(node);
}

beforeAll(async () => {
  restoreLog = setLogSink((l) => logs.push(l));
  work = await mkdtemp(path.join(os.tmpdir(), 'kp-presnap-'));
  env = await bootstrapEnvironment(moto.endpoint, ENV);
  backups = new BackupStore({
    s3: await env.aws.s3(),
    keys: env.keys,
    bucket: env.names.secretsBucket,
    environment: ENV,
    kmsKeyId: env.kmsKeyArn,
  });
  members = await planLocalMembers(Object.values(MEMBER), path.join(work, 'etcd'));
  await startLocalMembers(members, { token: 'presnap-test', logDir: work });
  await putAll(members[0]!, new Map(Array.from({ length: 100 }, (_, i) => [`/k/${i}`, `v${i}`])));
  for (const n of NODES) startInProcess(n);
}, 120_000);

afterAll(async () => {
  for (const n of [...running.keys()]) await stopInProcess(n);
  bundled?.proc.kill('SIGTERM');
  await bundled?.exited;
  await stopLocalMembers(members);
  env?.aws.destroy();
  restoreLog?.();
  if (work) await rm(work, { recursive: true, force: true });
});

test('a first publish (as run does it: no rollout record, nothing running) takes no snapshot', async () => {
  await env.store.publish('secure', files('registry.k8s.io/etcd:3.6.4-0'));
  await until('every master on generation 1', async () => {
    const s = await statuses();
    return NODES.every((n) => s.get(n)?.generation === 1);
  });
  expect(await backups.list()).toEqual([]);
}, 60_000);

test('staged N+1: the first master snapshots its member before applying; the others take none', async () => {
  const prepared = await env.store.prepare('secure', files('registry.k8s.io/etcd:3.6.5-0'));
  const { record } = await publishStaged(env.store, ENV, prepared, { order: [...NODES] });
  expect(record?.previous?.generation).toBe(1);
  const published = Date.now();
  const done = await driveRollout(env.store, ENV, 'secure', {
    timeoutS: 30,
    pollMs: 100,
    parse: parseStatus,
  });
  expect(done.state).toBe('complete');
  for (const n of NODES) expect(await imageOf(n)).toBe('registry.k8s.io/etcd:3.6.5-0');

  const list = await backups.list();
  expect(list.map((b) => b.member)).toEqual(['etcd-a']);
  const snap = list[0]!;
  // downloaded through the envelope (authenticated, decrypted), and etcd's own SHA-256 holds
  const { snapshot, meta } = await backups.download(snap.key);
  expect(() => checkSnapshotHash(snapshot)).not.toThrow();
  expect(snapshot.length).toBeGreaterThan(16_384);
  expect(meta.sha256).toBe(sha256(snapshot));
  // dated (its key: the upload's time, whole seconds) after the publish, before A applied generation 2
  const a = (await statuses()).get('master-a')!;
  expect(a.generation).toBe(2);
  const appliedAt = Date.parse(a.appliedAt!);
  expect(snap.takenAtMs).toBeGreaterThanOrEqual(Math.floor(published / 1000) * 1000);
  expect(snap.takenAtMs).toBeLessThanOrEqual(appliedAt);
  const took = logs.find((l) =>
    /etcd snapshot before generation 2: backups\/etcd\/.*, verified, \d+ ms/.test(l),
  );
  expect(took).toBeDefined();
  // the figure: promotion → applied, for A (with the snapshot) and for B and C (without)
  const s = await statuses();
  const lag = (n: string) => Date.parse(s.get(n)!.appliedAt!) - Date.parse(done.promotedAt[n]!);
  process.stderr.write(
    `presnap figure: ${took!.trim()}; promotion → applied: A ${lag('master-a')} ms, B ${lag('master-b')} ms, C ${lag('master-c')} ms\n`,
  );
}, 90_000);

describe('master A as the bundled agent, configured by the KP_ETCD_* variables of the masters’ drop-in', () => {
  beforeAll(async () => {
    await stopInProcess('master-a');
    const bundle = path.join(toolkitRoot(), 'dist', 'agent', 'manifest-sync.mjs');
    const dest = path.join(dirOf('master-a', 'bundled'), 'manifests');
    const proc = spawn(
      process.execPath,
      [
        bundle,
        ...['--environment', ENV, '--bucket', env.names.secretsBucket, '--region', TEST_REGION],
        ...['--layer', 'secure', '--dest', dest, '--node-id', 'master-a'],
        ...['--interval', '0.2', '--heartbeat', '1'],
      ],
      {
        cwd: work,
        env: { ...process.env, KP_ETCD_ENDPOINT: memberOf('master-a').clientUrl, KP_ETCD_MEMBER: 'etcd-a' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const stderr: string[] = [];
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    bundled = { proc, stderr, exited };
    await until('the bundled master-a on generation 2', async () => {
      const s = (await statuses()).get('master-a');
      return s?.generation === 2 && Date.parse(s.heartbeatAt) > Date.now() - 2000;
    });
  }, 60_000);

  test('staged N+1: the snapshot is taken before A applies it (its health has no API server: A is where the rollout waits)', async () => {
    const before = new Set((await backups.list()).map((b) => b.key));
    const prepared = await env.store.prepare('secure', files('registry.k8s.io/etcd:3.6.6-0'));
    await publishStaged(env.store, ENV, prepared, { order: [...NODES] });
    const driving = new AbortController();
    const drive = driveRollout(env.store, ENV, 'secure', {
      timeoutS: 60,
      pollMs: 100,
      parse: parseStatus,
      signal: driving.signal,
    });
    await until('master-a on generation 3', async () => (await statuses()).get('master-a')?.generation === 3);
    driving.abort();
    await drive;
    const a = (await statuses()).get('master-a')!;
    const added = (await backups.list()).filter((b) => !before.has(b.key));
    expect(added.map((b) => b.member)).toEqual(['etcd-a']);
    const snap = added[0]!;
    expect(snap.takenAtMs).toBeLessThanOrEqual(Date.parse(a.appliedAt!));
    const { snapshot } = await backups.download(snap.key);
    expect(() => checkSnapshotHash(snapshot)).not.toThrow();
    expect(bundled!.stderr.join('')).toMatch(
      /etcd snapshot before generation 3: backups\/etcd\/\S+-etcd-a\.db, verified/,
    );
    for (const n of ['master-b', 'master-c']) expect((await statuses()).get(n)?.generation).toBe(2);
    await abortRollout(env.store, ENV, 'secure');
    await until(
      'master-a back on generation 2',
      async () => (await statuses()).get('master-a')?.generation === 2,
    );
  }, 90_000);

  test('A’s member stopped: A stays on N naming the failed snapshot, the driver stops naming A, B and C stay; one attempt a minute', async () => {
    await stopLocalMembers([memberOf('master-a')]);
    const before = (await backups.list()).length;
    const prepared = await env.store.prepare('secure', files('registry.k8s.io/etcd:3.6.7-0'));
    const { record } = await publishStaged(env.store, ENV, prepared, { order: [...NODES] });
    expect(record?.previous?.generation).toBe(2);
    // nobody allowed yet: every agent reads the new index and stays on generation 2 (held by
    // the gate, A keeps the new index's ETag as the one applied); then the driver promotes A
    await new Promise((r) => setTimeout(r, 1000));
    const from = bundled!.stderr.join('').length;
    const t0 = Date.now();
    const err = await driveRollout(env.store, ENV, 'secure', {
      timeoutS: 6,
      pollMs: 100,
      parse: parseStatus,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlatformError);
    expect(
      `${(err as Error).message}\n(the bundled agent logged:\n${bundled!.stderr.join('').slice(from)})`,
    ).toMatch(
      /stopped: master-a is not healthy: at generation 2, not 4: etcd snapshot before generation 4 failed, generation 2 stays \(retried at most every 60 s\): etcd snapshot from http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
    const s = await statuses();
    expect(s.get('master-a')).toMatchObject({
      generation: 2,
      error: expect.stringMatching(/^etcd snapshot before generation 4 failed/),
    });
    expect(await imageOf('master-a', 'bundled')).toBe('registry.k8s.io/etcd:3.6.5-0');
    for (const n of ['master-b', 'master-c']) {
      expect(s.get(n)?.generation).toBe(2);
      expect(await imageOf(n)).toBe('registry.k8s.io/etcd:3.6.5-0');
    }
    const cur = await readRollout(env.store, ENV, 'secure');
    expect(cur?.record).toMatchObject({ state: 'failed', failure: { node: 'master-a' } });
    expect(describeRollout(cur!.record, s).join('\n')).toMatch(
      /failed at master-a: at generation 2, not 4: etcd snapshot before generation 4 failed/,
    );
    expect(await backups.list()).toHaveLength(before);
    // the agent kept retrying its pass (backoff, logged on its schedule) and kept the error in
    // its status, but asked etcd once in these seconds
    const seen = bundled!.stderr.join('').slice(from);
    expect(Date.now() - t0).toBeGreaterThan(6000);
    expect(seen.match(/etcd snapshot of the local member before generation 4/g)).toHaveLength(1);
    expect(
      seen.match(/layer secure: etcd snapshot before generation 4 failed/g)!.length,
    ).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await statuses()).get('master-a')).toMatchObject({
      generation: 2,
      error: expect.stringMatching(/^etcd snapshot before generation 4 failed/),
    });
    expect(
      bundled!.stderr
        .join('')
        .slice(from)
        .match(/before generation 4 \(first master/g),
    ).toHaveLength(1);
    await abortRollout(env.store, ENV, 'secure');
  }, 90_000);
});

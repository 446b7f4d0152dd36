import { PresnapError, presnapDecision, presnapHook } from '../../src/agent/presnap.js';
import { presnapFlags } from '../../src/agent/run.js';
import { UserError } from '../../src/errors.js';
import { setLogSink } from '../../src/log.js';
import { rolloutRecord } from '../helpers/rollout-record.js';

/**
 * The pre-rollout etcd snapshot's decision (src/agent/presnap.ts): which node, before which
 * generation, and how often after a failure — table cases over the pure function, then the
 * hook's retry spacing with an injected clock.
 */
const record = rolloutRecord;
const T = 1_000_000;
const target = { generation: 8, digest: 'd8' };
const failedAt = (atMs: number) => ({ ...target, atMs, error: 'etcd snapshot before generation 8 failed' });

type Case = [
  name: string,
  input: Partial<Parameters<typeof presnapDecision>[0]>,
  kind: 'take' | 'skip' | 'wait',
  why: string,
];
const cases: Case[] = [
  ['the first master of a staged rollout, about to take the target', {}, 'take', ''],
  [
    'the second master',
    { node: 'b', record: record({ allowed: ['a', 'b'] }) },
    'skip',
    'not the first master',
  ],
  ['the last master', { node: 'c' }, 'skip', 'not the first master'],
  ['a node not in the order (a new master booting)', { node: 'x' }, 'skip', 'not the first master'],
  ['no rollout record', { record: undefined }, 'skip', 'no rollout record'],
  ['all-at-once', { record: record({ strategy: 'all-at-once', state: 'complete' }) }, 'skip', 'not a staged'],
  [
    'all-at-once, even if a record said in-progress',
    { record: record({ strategy: 'all-at-once' }) },
    'skip',
    'not a staged',
  ],
  ['first publish (previous: null)', { record: record({ previous: null }) }, 'skip', 'first publish'],
  ['the rollout completed', { record: record({ state: 'complete' }) }, 'skip', 'rollout complete'],
  ['the rollout was aborted', { record: record({ state: 'aborted' }) }, 'skip', 'rollout aborted'],
  [
    'the rollout failed (the driver stopped): still taken, for rollout resume',
    { record: record({ state: 'failed' }) },
    'take',
    '',
  ],
  [
    'applying the previous generation (not allowed yet)',
    { next: { generation: 7, digest: 'd7' } },
    'skip',
    'not the rollout target',
  ],
  [
    'a record about another generation',
    { next: { generation: 9, digest: 'd9' } },
    'skip',
    'not the rollout target',
  ],
  [
    'the same generation, another digest (a replayed record)',
    { next: { generation: 8, digest: 'x' } },
    'skip',
    'not the rollout target',
  ],
  [
    'already on the target (agent restarted after applying it)',
    { current: 8 },
    'skip',
    'already on the target',
  ],
  ['taken already for this target', { last: { ...target, atMs: T - 5000 } }, 'skip', 'already taken'],
  ['failed 10 s ago: wait', { last: failedAt(T - 10_000) }, 'wait', ''],
  ['failed 59.999 s ago: wait', { last: failedAt(T - 59_999) }, 'wait', ''],
  ['failed 60 s ago: again', { last: failedAt(T - 60_000) }, 'take', ''],
  [
    'a failure for another target does not hold this one back',
    { last: { ...failedAt(T - 1000), generation: 6, digest: 'd6' } },
    'take',
    '',
  ],
  [
    'a success for another target does not count for this one',
    { last: { generation: 6, digest: 'd6', atMs: T - 1000 } },
    'take',
    '',
  ],
];

// the reason is always given ('' for none): jest would pass a missing last argument as `done`
test.each(cases)('%s', (_name, over, kind, why) => {
  const d = presnapDecision({
    record: record(),
    node: 'a',
    next: target,
    current: 7,
    last: undefined,
    nowMs: T,
    retryS: 60,
    ...over,
  });
  expect(d.kind).toBe(kind);
  if (why) expect(d).toMatchObject({ why: expect.stringContaining(why) });
  if (kind === 'wait') {
    expect(d).toMatchObject({ error: 'etcd snapshot before generation 8 failed' });
    expect((d as { retryAtMs: number }).retryAtMs).toBe(over.last!.atMs + 60_000);
  }
});

describe('presnapHook: once per target, at most one attempt a minute after a failure', () => {
  let restoreLog: () => void;
  beforeAll(() => {
    restoreLog = setLogSink(() => {});
  });
  afterAll(() => restoreLog());
  let now = T;
  let calls = 0;
  let fail = true;
  const rec = record();
  const hook = presnapHook({
    node: 'a',
    record: () => rec,
    now: () => now,
    take: async () => {
      calls++;
      if (fail) throw new Error('etcd snapshot from http://127.0.0.1:2379: connect ECONNREFUSED');
      return { key: 'backups/etcd/20261201T000000Z-a.db', ms: 12 };
    },
  });

  test('a failed snapshot throws, naming the target, the generation that stays and the cause', async () => {
    const e = await hook(target, 7).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PresnapError);
    expect((e as Error).message).toBe(
      'etcd snapshot before generation 8 failed, generation 7 stays (retried at most every 60 s): etcd snapshot from http://127.0.0.1:2379: connect ECONNREFUSED',
    );
    expect(calls).toBe(1);
  });

  test('passes within the minute fail with the same error without asking etcd', async () => {
    for (const dt of [1000, 30_000, 59_999]) {
      now = T + dt;
      await expect(hook(target, 7)).rejects.toThrow(/generation 8 failed, generation 7 stays .*ECONNREFUSED/);
    }
    expect(calls).toBe(1);
  });

  test('after a minute it tries again; once it verified, no more snapshots for this target', async () => {
    now = T + 60_000;
    await expect(hook(target, 7)).rejects.toThrow(PresnapError);
    expect(calls).toBe(2);
    now = T + 60_000 + 59_000;
    await expect(hook(target, 7)).rejects.toThrow(PresnapError);
    expect(calls).toBe(2);
    fail = false;
    now = T + 120_000;
    await expect(hook(target, 7)).resolves.toBeUndefined();
    expect(calls).toBe(3);
    await expect(hook(target, 7)).resolves.toBeUndefined();
    expect(calls).toBe(3);
  });

  test('nodes other than the first and non-target generations never call take', async () => {
    const other = presnapHook({ node: 'b', record: () => rec, take: async () => fail1() });
    await expect(other(target, 7)).resolves.toBeUndefined();
    await expect(hook({ generation: 7, digest: 'd7' }, 8)).resolves.toBeUndefined();
    expect(calls).toBe(3);
  });
});

function fail1(): never {
  throw new Error('take must not be called');
}

describe('presnapFlags: the agent’s --etcd-* flags, checked before the bucket is opened', () => {
  const base = { layer: ['secure' as const], dest: '/tmp/x', interval: 1, heartbeat: 60 };
  const host = () => 'ip-10-80-10-12.eu-west-1.compute.internal';
  test('none given: no snapshot', () => {
    expect(presnapFlags(base, host)).toBeUndefined();
  });
  test('the masters’ drop-in values: TLS triple, member from the host name unless given', () => {
    const tls = {
      etcdCacert: '/etc/kubernetes/pki/etcd/ca.crt',
      etcdCert: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
      etcdKey: '/etc/kubernetes/pki/apiserver-etcd-client.key',
    };
    expect(presnapFlags({ ...base, etcdEndpoint: 'https://127.0.0.1:2379', ...tls }, host)).toEqual({
      endpoint: 'https://127.0.0.1:2379',
      cacert: tls.etcdCacert,
      cert: tls.etcdCert,
      key: tls.etcdKey,
      member: 'ip-10-80-10-12.eu-west-1.compute.internal',
      expire: false,
    });
    expect(
      presnapFlags({ ...base, etcdEndpoint: 'http://127.0.0.1:2379', etcdMember: 'etcd-a' }, host),
    ).toEqual({
      endpoint: 'http://127.0.0.1:2379',
      member: 'etcd-a',
      expire: false,
    });
  });
  test.each([
    [{ etcdCacert: '/ca' }, '--etcd-cacert, --etcd-cert, --etcd-key and --etcd-member need --etcd-endpoint'],
    [{ etcdEndpoint: '127.0.0.1:2379' }, '--etcd-endpoint 127.0.0.1:2379: must be a client URL'],
    [{ etcdEndpoint: 'https://127.0.0.1:2379/v3' }, 'must be a client URL'],
    [
      { etcdEndpoint: 'https://127.0.0.1:2379', etcdCert: '/c' },
      '--etcd-cacert, --etcd-cert and --etcd-key go together',
    ],
    [{ etcdEndpoint: 'https://127.0.0.1:2379', etcdMember: 'a/b' }, '--etcd-member "a/b": use 1 to 128'],
    [{ etcdEndpoint: 'https://127.0.0.1:2379', layer: ['common' as const] }, 'only with --layer secure'],
  ])('%j is refused: %s', (over, message) => {
    let err: unknown;
    try {
      presnapFlags({ ...base, ...over }, host);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(message);
  });
});

import { chooseIndex, nextStep, previousOf } from '../../src/secrets/rollout.js';
import type { NodeStatus } from '../../src/secrets/status.js';
import { rolloutRecord } from '../helpers/rollout-record.js';

const record = rolloutRecord;
const latest = { generation: 8, digest: 'd8' };
const back = { use: 'previous', versionId: 'v7', generation: 7 };

test('chooseIndex: allowed nodes take the target, the others the previous; aborted: everyone back', () => {
  expect(chooseIndex(record(), latest, 'a')).toEqual({ use: 'latest' });
  expect(chooseIndex(record(), latest, 'b')).toEqual(back);
  expect(chooseIndex(record({ state: 'aborted', allowed: [] }), latest, 'a')).toEqual(back);
  expect(chooseIndex(record({ state: 'complete' }), latest, 'c')).toEqual({ use: 'latest' });
  expect(chooseIndex(record({ state: 'failed' }), latest, 'b')).toEqual(back);
});

test('chooseIndex: a record about another generation or digest (old, replayed) changes nothing', () => {
  expect(chooseIndex(record(), { generation: 9, digest: 'd9' }, 'b')).toEqual({ use: 'latest' });
  expect(chooseIndex(record(), { generation: 8, digest: 'other' }, 'b')).toEqual({ use: 'latest' });
  expect(chooseIndex(record({ previous: null }), latest, 'b')).toEqual({ use: 'latest' });
  expect(chooseIndex(undefined, latest, 'b')).toEqual({ use: 'latest' });
});

const status = (node: string, over: Partial<NodeStatus> = {}): NodeStatus => ({
  node,
  layer: 'secure',
  generation: 8,
  indexDigest: 'd8',
  appliedAt: '2026-12-01T00:00:01.000Z',
  heartbeatAt: '2026-12-01T00:00:02.000Z',
  error: null,
  fileErrors: [],
  health: {
    etcd: {
      checkedAt: '2026-12-01T00:00:02.000Z',
      healthy: true,
      reason: '',
      hasLeader: true,
      isLeader: false,
      version: '3.6.4',
    },
    apiserver: { checkedAt: '2026-12-01T00:00:02.000Z', ready: true, detail: '' },
  },
  ...over,
});
const t0 = Date.parse('2026-12-01T00:00:00Z');

test('nextStep: the next master only after the last one is healthy on the target', () => {
  expect(nextStep(record(), new Map(), t0 + 1000, 300)).toMatchObject({ kind: 'wait', node: 'a' });
  expect(nextStep(record(), new Map([['a', status('a')]]), t0 + 3000, 300)).toEqual({
    kind: 'promote',
    node: 'b',
  });
  expect(
    nextStep(
      record({ allowed: ['a', 'b', 'c'] }),
      new Map(['a', 'b', 'c'].map((n) => [n, status(n)])),
      t0,
      300,
    ),
  ).toEqual({ kind: 'complete' });
  expect(nextStep(record({ state: 'aborted' }), new Map(), t0, 300)).toEqual({ kind: 'done' });
});

test('nextStep: unhealthy past the timeout fails, naming the master and why; health from before the promotion does not count', () => {
  const sick = status('a', {
    health: {
      ...status('a').health!,
      etcd: { ...status('a').health!.etcd!, healthy: false, reason: 'no leader' },
    },
  });
  expect(nextStep(record(), new Map([['a', sick]]), t0 + 10_000, 300)).toMatchObject({
    kind: 'wait',
    node: 'a',
  });
  expect(nextStep(record(), new Map([['a', sick]]), t0 + 301_000, 300)).toEqual({
    kind: 'fail',
    node: 'a',
    why: 'etcd member unhealthy: no leader',
  });
  const stale = status('a', {
    health: {
      ...status('a').health!,
      apiserver: { checkedAt: '2026-11-30T23:59:00.000Z', ready: true, detail: '' },
    },
  });
  expect(nextStep(record(), new Map([['a', stale]]), t0 + 1000, 300)).toMatchObject({
    kind: 'wait',
    why: 'health not yet reported since it took the target',
  });
  expect(
    nextStep(record(), new Map([['a', status('a', { generation: 7, indexDigest: 'd7' })]]), t0, 300),
  ).toMatchObject({
    kind: 'wait',
    why: 'at generation 7, not 8',
  });
});

describe('previousOf: where masters not yet allowed stay during a new rollout', () => {
  const base = (generation: number) =>
    ({ index: { generation }, digest: `d${generation}` }) as unknown as Parameters<typeof previousOf>[1];
  test('the current index, normally', () => {
    expect(previousOf(record({ state: 'complete' }), base(8), 'v8')).toEqual({
      generation: 8,
      versionId: 'v8',
    });
    expect(previousOf(undefined, base(8), 'v8')).toEqual({ generation: 8, versionId: 'v8' });
  });
  test('after an aborted rollout of the current index: the generation the masters went back to', () => {
    expect(previousOf(record({ state: 'aborted' }), base(8), 'v8')).toEqual({
      generation: 7,
      versionId: 'v7',
    });
  });
  test('an aborted record of an older target does not count; nothing published yet: none', () => {
    expect(previousOf(record({ state: 'aborted' }), base(9), 'v9')).toEqual({
      generation: 9,
      versionId: 'v9',
    });
    expect(previousOf(undefined, undefined, undefined)).toBeNull();
  });
});

test('nextStep: a master that did not take the target names its agent’s error (e.g. the snapshot before it)', () => {
  const error =
    'etcd snapshot before generation 8 failed, generation 7 stays (retried at most every 60 s): connect ECONNREFUSED';
  const stuck = status('a', { generation: 7, indexDigest: 'd7', error });
  expect(nextStep(record(), new Map([['a', stuck]]), t0 + 10_000, 300)).toEqual({
    kind: 'wait',
    node: 'a',
    why: `at generation 7, not 8: ${error}`,
  });
  expect(nextStep(record(), new Map([['a', stuck]]), t0 + 301_000, 300)).toEqual({
    kind: 'fail',
    node: 'a',
    why: `at generation 7, not 8: ${error}`,
  });
});

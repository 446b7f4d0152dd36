import { ConflictError, UserError, ValidationError } from '../../src/errors.js';
import {
  beginOperation,
  finishOperation,
  holderGone,
  interruptOperation,
  type Owner,
  recordStep,
  terminated,
} from '../../src/state/journal.js';
import { type ClusterState, emptyState, parseClusterState } from '../../src/state/schema.js';
import { assertNotDowngrade } from '../../src/state/store.js';

const me: Owner = { arn: 'arn:aws:iam::123456789012:user/alice', host: 'laptop', pid: 100 };
const bob: Owner = { arn: 'arn:aws:iam::123456789012:user/bob', host: 'desk', pid: 200 };
const t0 = new Date('2026-12-01T10:00:00Z');
const later = (s: number) => new Date(t0.getTime() + s * 1000);

function state(): ClusterState {
  return { ...emptyState('prod', '0.1.0'), revision: 3 };
}

describe('parseClusterState', () => {
  test('a valid document round-trips', () => {
    const s = state();
    expect(parseClusterState(JSON.stringify(s), 'where', 'prod')).toEqual(s);
  });

  test('names every key that does not fit the schema', () => {
    const bad = { ...state(), revision: -1, generations: { secure: 'x' }, extra: 1 };
    let err: unknown;
    try {
      parseClusterState(JSON.stringify(bad), 's3://b/cluster-state/prod', 'prod');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const keys = (err as ValidationError).problems.map((p) => p.key);
    expect(keys).toEqual(expect.arrayContaining(['revision', 'generations.secure']));
    expect((err as Error).message).toContain('s3://b/cluster-state/prod');
  });

  test('refuses another environment’s document and non-JSON', () => {
    expect(() => parseClusterState(JSON.stringify(state()), 'w', 'staging')).toThrow(/another environment/);
    expect(() => parseClusterState('{', 'w', 'prod')).toThrow(/not JSON/);
  });
});

describe('assertNotDowngrade (kops#1612)', () => {
  test('an older toolkit refuses a state written by a newer one, unless --allow-downgrade', () => {
    const s = { revision: 2, toolkitVersion: '0.3.0' };
    expect(() => assertNotDowngrade(s, '0.2.9', false, 'w')).toThrow(UserError);
    expect(() => assertNotDowngrade(s, '0.2.9', false, 'w')).toThrow(/newer than this toolkit \(0\.2\.9\)/);
    expect(() => assertNotDowngrade(s, '0.2.9', true, 'w')).not.toThrow();
    expect(() => assertNotDowngrade(s, '0.3.0', false, 'w')).not.toThrow();
    expect(() => assertNotDowngrade(s, '0.4.0-rc.1', false, 'w')).not.toThrow();
    expect(() =>
      assertNotDowngrade({ revision: 2, toolkitVersion: '0.3.0' }, '0.3.0-rc.1', false, 'w'),
    ).toThrow(UserError);
  });

  test('no document yet: nothing to guard; a non-semver version needs --allow-downgrade', () => {
    expect(() =>
      assertNotDowngrade({ revision: 0, toolkitVersion: '9.9.9' }, '0.1.0', false, 'w'),
    ).not.toThrow();
    expect(() => assertNotDowngrade({ revision: 1, toolkitVersion: 'dev' }, '0.1.0', false, 'w')).toThrow(
      /not a semver/,
    );
  });
});

describe('the operation journal', () => {
  const alive = () => true;
  const dead = () => false;

  test('begin, record steps, finish: the journal is summarised in lastRollout', () => {
    const b = beginOperation(state(), {
      kind: 'roll',
      layer: 'compute',
      owner: me,
      targets: ['i-1', 'i-2'],
      now: t0,
      id: 'op1',
      isAlive: alive,
    });
    expect(b.resumed).toBe(false);
    let s = recordStep(b.state, 'op1', { instanceId: 'i-1', action: 'terminate' }, later(5));
    s = recordStep(s, 'op1', { instanceId: 'i-1', action: 'done' }, later(60));
    s = recordStep(s, 'op1', { instanceId: 'i-2', action: 'drain-skipped', detail: 'PDB web' }, later(70));
    expect(terminated(s.operation!)).toEqual(new Set(['i-1']));
    expect(s.operation!.heartbeatAt).toBe(later(70).toISOString());
    const f = finishOperation(s, 'op1', 'completed', later(80));
    expect(f.operation).toBeNull();
    expect(f.lastRollout).toMatchObject({
      layer: 'compute',
      replaced: ['i-1'],
      skipped: ['i-2'],
      result: 'completed',
    });
    expect(() => parseClusterState(JSON.stringify(f), 'w', 'prod')).not.toThrow();
  });

  test('a second operator gets a conflict naming the holder while it is alive', () => {
    const b = beginOperation(state(), {
      kind: 'roll',
      layer: 'compute',
      owner: me,
      targets: ['i-1'],
      now: t0,
      id: 'op1',
      isAlive: alive,
    });
    const again = () =>
      beginOperation(b.state, {
        kind: 'roll',
        layer: 'compute',
        owner: bob,
        targets: ['i-1'],
        now: later(30),
        id: 'op2',
        isAlive: alive,
      });
    expect(again).toThrow(ConflictError);
    expect(again).toThrow(
      /roll compute \(operation op1\) is in progress: .*user\/alice on laptop \(pid 100\), last heartbeat 30 s ago/,
    );
    // another layer is refused too, even once the holder is gone; the hint says which to finish
    let hint: string | undefined;
    try {
      beginOperation(interruptOperation(b.state, 'op1', later(1)), {
        kind: 'roll',
        layer: 'secure',
        owner: bob,
        targets: [],
        now: later(30),
        id: 'op2',
        isAlive: alive,
      });
    } catch (e) {
      expect(e).toBeInstanceOf(ConflictError);
      hint = (e as ConflictError).hint;
    }
    expect(hint).toBe('finish it first: roll compute');
  });

  test('resumes after Ctrl-C, after the holder process died on this host, or after the lease', () => {
    const b = beginOperation(state(), {
      kind: 'roll',
      layer: 'compute',
      owner: me,
      targets: ['i-1', 'i-2'],
      now: t0,
      id: 'op1',
      isAlive: alive,
    });
    const s = recordStep(b.state, 'op1', { instanceId: 'i-1', action: 'terminate' }, later(1));
    const op = s.operation!;
    const rerun = { ...me, pid: 101 };
    expect(holderGone(op, { owner: rerun, now: later(10), isAlive: alive })).toBe(false);
    expect(holderGone(op, { owner: rerun, now: later(10), isAlive: dead })).toBe(true);
    expect(holderGone(op, { owner: bob, now: later(10), isAlive: dead })).toBe(false); // another host: lease only
    expect(holderGone(op, { owner: bob, now: later(302), isAlive: alive })).toBe(true);
    const i = interruptOperation(s, 'op1', later(2));
    expect(holderGone(i.operation!, { owner: bob, now: later(3), isAlive: alive })).toBe(true);

    const r = beginOperation(i, {
      kind: 'roll',
      layer: 'compute',
      owner: rerun,
      targets: ['i-2', 'i-3'],
      now: later(4),
      id: 'op-new',
      isAlive: alive,
    });
    expect(r.resumed).toBe(true);
    expect(r.operation.id).toBe('op1');
    expect(r.operation.interruptedAt).toBeNull();
    expect(r.operation.targets).toEqual(['i-1', 'i-2', 'i-3']);
    expect(terminated(r.operation)).toEqual(new Set(['i-1']));
  });

  test('a taken-over operation stops its old holder', () => {
    const b = beginOperation(state(), {
      kind: 'roll',
      layer: 'compute',
      owner: me,
      targets: [],
      now: t0,
      id: 'op1',
      isAlive: alive,
    });
    const done = finishOperation(b.state, 'op1', 'completed', later(1));
    expect(() => recordStep(done, 'op1', { instanceId: 'i-1', action: 'terminate' }, later(2))).toThrow(
      /no longer in the cluster state/,
    );
  });
});

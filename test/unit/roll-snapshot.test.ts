import type { BackupObject } from '../../src/backup/store.js';
import { backupKey } from '../../src/backup/store.js';
import { ConflictError } from '../../src/errors.js';
import {
  freshSnapshot,
  type RollBackups,
  snapshotGate,
  snapshotSince,
  takeRollSnapshot,
} from '../../src/roll/snapshot.js';

const T = Date.parse('2026-12-02T12:00:00Z');
const obj = (ms: number, member = 'etcd-0'): BackupObject => ({
  key: backupKey(ms, member),
  takenAtMs: Math.floor(ms / 1000) * 1000,
  member,
  objectSize: 100,
});

test('freshSnapshot: the newest snapshot counts when at most 60 s old (or ahead); none or older does not', () => {
  expect(freshSnapshot([], T)).toBeUndefined();
  expect(freshSnapshot([obj(T - 61_000)], T)).toBeUndefined();
  expect(freshSnapshot([obj(T - 3_600_000), obj(T - 60_000)], T)?.key).toBe(backupKey(T - 60_000, 'etcd-0'));
  // the listing is oldest first, but the newest is picked whatever the order
  expect(freshSnapshot([obj(T - 5_000, 'b'), obj(T - 3_600_000, 'a')], T)?.member).toBe('b');
  // a key dated far ahead (a skewed clock) does not pass
  expect(freshSnapshot([obj(T + 120_000)], T)).toBeUndefined();
});

test('snapshotSince: the first snapshot at or after the time (floored to its second, as keys are); none before it counts', () => {
  const allowedAt = T + 400; // the first master allowed 0.4 s into the second
  expect(snapshotSince([], allowedAt)).toBeUndefined();
  expect(snapshotSince([obj(T - 1_000)], allowedAt)).toBeUndefined();
  // taken in the same second: its key says T, which is not before the allowance's second
  expect(snapshotSince([obj(T - 900_000), obj(T + 900, 'a')], allowedAt)?.member).toBe('a');
  expect(snapshotSince([obj(T + 30_000, 'later'), obj(T + 2_000, 'first')], allowedAt)?.member).toBe('first');
});

test('snapshotGate refuses without a fresh snapshot and without a route, naming the newest and its age; nothing is taken', async () => {
  const list = [obj(T - 900_000)];
  const b: RollBackups = { list: async () => list };
  const e = await snapshotGate(b, 'i-1 (etcd-0)', { nowMs: () => T }).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(ConflictError);
  expect((e as ConflictError).exitCode).toBe(3);
  expect((e as Error).message).toBe(
    `refusing to take down master i-1 (etcd-0): no etcd snapshot at most 60 s old under backups/etcd/ (the newest, ${list[0]!.key}, is 900 s old), and no route to a member to take one`,
  );
  const none = await snapshotGate({ list: async () => [] }, 'i-1', { nowMs: () => T }).catch((x: Error) => x);
  expect((none as Error).message).toMatch(/\(there is none\), and no route/);
});

test('snapshotGate passes on a fresh snapshot without taking one; takes one when stale and a route is given', async () => {
  const list = [obj(T - 30_000)];
  let taken = 0;
  const b: RollBackups = {
    list: async () => list,
    take: async () => {
      taken++;
      const o = obj(T);
      list.push(o);
      return { key: o.key, takenAtMs: o.takenAtMs };
    },
  };
  expect(await snapshotGate(b, 'i-1', { nowMs: () => T })).toEqual({ snapshot: list[0], taken: false });
  expect(taken).toBe(0);
  const later = T + 45_000; // the one listed is now 75 s old
  const g = await snapshotGate(b, 'i-1', { nowMs: () => later });
  expect(taken).toBe(1);
  expect(g).toEqual({ snapshot: list[1], taken: true });
});

test('a snapshot that cannot be taken refuses (exit 3) with the cause; one taken but not listed as fresh refuses too', async () => {
  const failing: RollBackups = {
    list: async () => [],
    route: '--etcd-endpoint https://127.0.0.1:2379',
    take: async () => {
      throw new Error('etcdctl: context deadline exceeded');
    },
  };
  const e = await takeRollSnapshot(failing, 'before roll secure').catch((x: unknown) => x);
  expect(e).toBeInstanceOf(ConflictError);
  expect((e as Error).message).toBe(
    'refusing to roll the masters: could not take an etcd snapshot before roll secure through --etcd-endpoint https://127.0.0.1:2379: etcdctl: context deadline exceeded',
  );
  expect(await takeRollSnapshot({ list: async () => [] }, 'x')).toBeUndefined();
  const lost: RollBackups = { list: async () => [], take: async () => ({ key: 'k', takenAtMs: T }) };
  await expect(snapshotGate(lost, 'i-1', { nowMs: () => T })).rejects.toThrow(
    /the snapshot just taken is not listed under backups\/etcd\/ as at most 60 s old \(there is none\)/,
  );
});

import type { BackupObject } from '../backup/store.js';
import { ConflictError } from '../errors.js';
import { log } from '../log.js';

/**
 * The snapshot gate of the master roll (issue 14 item 3: "the master roll's gate also
 * requires a snapshot at most 60 s old"; etcd-manager backs up before every change): before
 * `roll secure` starts, the toolkit takes a snapshot when it has a route to a member, and
 * right before each master termination the newest snapshot under `backups/etcd/` must be
 * at most {@link SNAPSHOT_MAX_AGE_S} old — a newer one is taken when it is not (and a route
 * is given); otherwise the roll refuses (ConflictError, exit 3) before anything is
 * terminated.
 *
 * Ages come from the snapshot's key (`backups/etcd/<UTC time>-<member>.db`, src/backup/store.ts):
 * the time of whoever took it against this host's clock. A key dated more than the bound in
 * the future is not counted as fresh either (a skewed clock must not pass the gate).
 */

/** Seconds a snapshot may be old when a master goes down (issue 14 item 3). */
export const SNAPSHOT_MAX_AGE_S = 60;

/** What the gate needs of the backups: the listing, and a way to take one when there is a route. */
export interface RollBackups {
  /** every snapshot under backups/etcd/, oldest first (BackupStore.list) */
  list(): Promise<BackupObject[]>;
  /**
   * takes, uploads and verifies a snapshot now (takeBackup through a route to a member);
   * absent when the operator gave none. @returns the object key and when it was taken
   */
  take?: () => Promise<{ key: string; takenAtMs: number }>;
  /** how `take` reaches etcd, for messages (e.g. `--etcd-endpoint https://127.0.0.1:2379`) */
  route?: string;
}

/**
 * The newest snapshot of `list` when it is at most `maxAgeS` old at `nowMs` (and not dated
 * more than `maxAgeS` ahead of it); undefined otherwise. Pure.
 */
export function freshSnapshot(
  list: BackupObject[],
  nowMs: number,
  maxAgeS = SNAPSHOT_MAX_AGE_S,
): BackupObject | undefined {
  const newest = newestOf(list);
  if (!newest) return undefined;
  return Math.abs(nowMs - newest.takenAtMs) <= maxAgeS * 1000 ? newest : undefined;
}

/**
 * The first snapshot of `list` taken at or after `sinceMs` (keys written before milliseconds
 * carry whole seconds, so `sinceMs` is floored to its second), or undefined. What `run` reports after a staged
 * rollout: the snapshot the first master's agent took before it applied the target
 * (src/agent/presnap.ts), dated after that master was allowed. Pure.
 */
export function snapshotSince(list: BackupObject[], sinceMs: number): BackupObject | undefined {
  const from = Math.floor(sinceMs / 1000) * 1000;
  return list
    .filter((b) => b.takenAtMs >= from)
    .reduce<BackupObject | undefined>((a, b) => (!a || b.takenAtMs < a.takenAtMs ? b : a), undefined);
}

function newestOf(list: BackupObject[]): BackupObject | undefined {
  return list.reduce<BackupObject | undefined>(
    (a, b) => (!a || b.takenAtMs > a.takenAtMs ? b : a),
    undefined,
  );
}

function describeNewest(list: BackupObject[], nowMs: number): string {
  const n = newestOf(list);
  return n ? `the newest, ${n.key}, is ${Math.round((nowMs - n.takenAtMs) / 1000)} s old` : 'there is none';
}

/**
 * Takes a snapshot now through `b.take` (the toolkit's snapshot before `roll secure`).
 * @returns the snapshot taken, or undefined when there is no route (`b.take` absent)
 * @throws ConflictError (exit 3) when the snapshot cannot be taken or does not verify:
 *   nothing is terminated without one
 */
export async function takeRollSnapshot(
  b: RollBackups,
  why: string,
): Promise<{ key: string; takenAtMs: number } | undefined> {
  if (!b.take) return undefined;
  try {
    const s = await b.take();
    log.info(`etcd snapshot ${s.key} taken ${why}`);
    return s;
  } catch (e) {
    throw new ConflictError(
      `refusing to roll the masters: could not take an etcd snapshot ${why}${b.route ? ` through ${b.route}` : ''}: ${(e as Error).message}`,
      {
        cause: e,
        hint: 'check the route to the member (etcdctl endpoint health through it), or take one on a master (etcd-backup now) and run roll secure within 60 s',
      },
    );
  }
}

/**
 * The gate right before a master goes down: a snapshot at most `maxAgeS` old must be in the
 * bucket; when the newest is older and there is a route, one is taken now.
 * @param nowMs the clock @default Date.now
 * @returns the fresh snapshot, and whether it was taken here
 * @throws ConflictError (exit 3) naming the newest snapshot's age when there is none fresh
 *   and none can be taken (or taking one fails)
 */
export async function snapshotGate(
  b: RollBackups,
  master: string,
  opts: { maxAgeS?: number; nowMs?: () => number } = {},
): Promise<{ snapshot: BackupObject; taken: boolean }> {
  const maxAgeS = opts.maxAgeS ?? SNAPSHOT_MAX_AGE_S;
  const now = opts.nowMs ?? Date.now;
  const list = await b.list();
  const fresh = freshSnapshot(list, now(), maxAgeS);
  if (fresh) return { snapshot: fresh, taken: false };
  if (!b.take) {
    throw new ConflictError(
      `refusing to take down master ${master}: no etcd snapshot at most ${maxAgeS} s old under backups/etcd/ (${describeNewest(list, now())}), and no route to a member to take one`,
      {
        hint: 'give --etcd-via-bastion (the toolkit opens an ssh tunnel through the bastion to one member) or --etcd-endpoint (a route of your own), or run etcd-backup now on a master and roll secure again within 60 s',
      },
    );
  }
  await takeRollSnapshot(b, `before taking down master ${master}`);
  const again = await b.list();
  const taken = freshSnapshot(again, now(), maxAgeS);
  if (!taken) {
    throw new ConflictError(
      `refusing to take down master ${master}: the snapshot just taken is not listed under backups/etcd/ as at most ${maxAgeS} s old (${describeNewest(again, now())})`,
      { hint: 'is this host’s clock right? The age is read from the snapshot’s key' },
    );
  }
  return { snapshot: taken, taken: true };
}

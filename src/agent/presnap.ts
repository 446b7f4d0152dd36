import { PlatformError } from '../errors.js';
import { log } from '../log.js';
import type { RolloutRecord } from '../secrets/rollout.js';

/**
 * The etcd snapshot a master takes before the target of a staged secure-layer rollout
 * (issue 14 item 3: "before every control-plane rollout"; DESIGN.md §8: the operator needs
 * no route to etcd, so the master that takes the target first snapshots its own member).
 *
 * Rules ({@link presnapDecision}, pure): a snapshot is due when this node is about to apply
 * the rollout's target generation, the record is a staged one with a previous generation (a
 * first publish has no running cluster to save) that has not ended (`in-progress`, or
 * `failed` while the driver is stopped: `rollout resume` waits for this master), and this
 * node is the first of the record's `order`. It is taken once per target: after it verified,
 * later passes (a fetch that failed, a repair) do not take another. A failed snapshot stops
 * the pass — nothing of the target is written, the previous generation's files stay — and
 * is not tried again within `retryS` (60 s): the passes in between fail with the same error,
 * so the status record keeps naming it and etcd is not asked for a snapshot every second.
 * The memory of attempts is the agent process's: a restarted agent tries at once.
 */

/** The last snapshot attempt before a target (the agent's memory, per layer). */
export interface PresnapAttempt {
  /** the target it was for */
  generation: number;
  digest: string;
  /** epoch ms the attempt started */
  atMs: number;
  /** the failure's message; undefined: the snapshot verified */
  error?: string;
}

/** What to do before applying an index. */
export type PresnapDecision =
  | { kind: 'skip'; why: string }
  | { kind: 'take' }
  | { kind: 'wait'; error: string; retryAtMs: number };

/**
 * Whether `node` must snapshot etcd before it applies `next`. Pure.
 * @param o.current the generation this node applied last (0: none)
 * @param o.retryS seconds between two attempts for the same target after a failure
 */
export function presnapDecision(o: {
  record: RolloutRecord | undefined;
  node: string;
  next: { generation: number; digest: string };
  current: number;
  last: PresnapAttempt | undefined;
  nowMs: number;
  retryS: number;
}): PresnapDecision {
  const r = o.record;
  if (!r) return { kind: 'skip', why: 'no rollout record' };
  if (r.strategy !== 'staged') return { kind: 'skip', why: 'not a staged rollout' };
  if (!r.previous) return { kind: 'skip', why: 'first publish: no running cluster' };
  if (r.state !== 'in-progress' && r.state !== 'failed') return { kind: 'skip', why: `rollout ${r.state}` };
  if (r.target.generation !== o.next.generation || r.target.digest !== o.next.digest) {
    return { kind: 'skip', why: 'not the rollout target' };
  }
  if (o.current === r.target.generation) return { kind: 'skip', why: 'already on the target' };
  if (r.order[0] !== o.node) return { kind: 'skip', why: 'not the first master of the rollout' };
  const last = o.last;
  if (last && last.generation === r.target.generation && last.digest === r.target.digest) {
    if (last.error === undefined) return { kind: 'skip', why: 'snapshot already taken for this target' };
    const retryAtMs = last.atMs + o.retryS * 1000;
    if (o.nowMs < retryAtMs) return { kind: 'wait', error: last.error, retryAtMs };
  }
  return { kind: 'take' };
}

/** A snapshot before the target failed (or one failed less than `retryS` ago). Exit code 1. */
export class PresnapError extends PlatformError {}

/** What the hook needs to take a snapshot and to know where the rollout is. */
export interface PresnapOptions {
  /** this node's id (as in the record's `order`) */
  node: string;
  /** the layer's rollout record as the gate last read it */
  record: () => RolloutRecord | undefined;
  /**
   * takes the snapshot: seals, uploads under backups/etcd/ and verifies it (src/backup/
   * node-command.ts snapshotNow, as the kp-etcd-backup timer)
   * @returns the object key and how long it took, ms
   * @throws whatever failed; nothing of the target is written then
   */
  take: () => Promise<{ key: string; ms: number }>;
  /** seconds between attempts after a failure @default 60 */
  retryS?: number;
  now?: () => number;
}

/**
 * The `beforeApply` hook of a pass (src/agent/pass.ts) that takes the pre-rollout snapshot.
 * @returns a hook that resolves when the pass may write `next`
 * @throws PresnapError (from the hook) naming the target, the generation that stays and the
 *   cause — the status record carries this message, and the rollout driver names it
 */
export function presnapHook(
  o: PresnapOptions,
): (next: { generation: number; digest: string }, current: number) => Promise<void> {
  let last: PresnapAttempt | undefined;
  const retryS = o.retryS ?? 60;
  const now = o.now ?? Date.now;
  return async (next, current) => {
    const d = presnapDecision({
      record: o.record(),
      node: o.node,
      next,
      current,
      last,
      nowMs: now(),
      retryS,
    });
    if (d.kind === 'skip') return;
    if (d.kind === 'wait') throw new PresnapError(d.error);
    const atMs = now();
    log.info(
      `etcd snapshot of the local member before generation ${next.generation} (first master of the rollout)`,
    );
    try {
      const r = await o.take();
      last = { ...next, atMs };
      log.info(`etcd snapshot before generation ${next.generation}: ${r.key}, verified, ${r.ms} ms`);
    } catch (e) {
      // no secret can be in it: the causes are etcd's, S3's or KMS's errors (not the data key)
      const error =
        `etcd snapshot before generation ${next.generation} failed, generation ${current} stays ` +
        `(retried at most every ${retryS} s): ${(e as Error).message || String(e)}`;
      last = { ...next, atMs, error };
      throw new PresnapError(error, { cause: e });
    }
  };
}

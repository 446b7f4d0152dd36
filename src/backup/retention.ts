/**
 * Which etcd snapshots to keep: etcd-manager's retention (kubernetes-sigs/etcd-manager,
 * pkg/backupcontroller/cleanup.go), as a pure function over timestamps.
 *
 * Walking the snapshots oldest first:
 *   1. everything younger than `keepAllS` (etcd-manager: 1 hour) is kept;
 *   2. younger than `hourlyS` (7 days): the first (oldest) snapshot of each UTC hour is kept;
 *   3. younger than `dailyS` (90 days): the first snapshot of each UTC day is kept;
 *   4. everything else is deleted.
 * A snapshot kept for its hour also counts as its day's snapshot, so one taken at 00:05
 * serves both the hour 00:00 and the day (as in etcd-manager, where the hourly map and the
 * daily map are both filled by the walk). Snapshots dated in the future (clock skew) are
 * kept: deleting what we do not understand is the wrong way round.
 */

/** Retention windows, in seconds. */
export interface RetentionPolicy {
  /** keep every snapshot younger than this @default 3600 (1 h) */
  keepAllS: number;
  /** keep one per UTC hour younger than this @default 604800 (7 days) */
  hourlyS: number;
  /** keep one per UTC day younger than this @default 7776000 (90 days) */
  dailyS: number;
}

/** etcd-manager's defaults: all for 1 h, hourly for 7 days, daily for 90 days. */
export const DEFAULT_RETENTION: RetentionPolicy = {
  keepAllS: 3600,
  hourlyS: 7 * 86_400,
  dailyS: 90 * 86_400,
};

/** A snapshot as retention sees it: an id (the object key) and when it was taken. */
export interface Dated {
  key: string;
  /** when the snapshot was taken, ms since the epoch */
  takenAtMs: number;
}

export interface RetentionPlan<T extends Dated> {
  /** oldest first */
  keep: T[];
  /** oldest first */
  delete: T[];
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * Splits `snapshots` into those to keep and those to delete at time `nowMs`. Pure.
 * Ties (same timestamp) are broken by key, so the result does not depend on input order.
 * @throws Error when the policy's windows are not ordered keepAll ≤ hourly ≤ daily
 */
export function planRetention<T extends Dated>(
  snapshots: readonly T[],
  nowMs: number,
  policy: RetentionPolicy = DEFAULT_RETENTION,
): RetentionPlan<T> {
  if (!(policy.keepAllS >= 0 && policy.keepAllS <= policy.hourlyS && policy.hourlyS <= policy.dailyS)) {
    throw new Error('retention windows must satisfy 0 <= keep-all <= hourly <= daily');
  }
  const sorted = [...snapshots].sort((a, b) => a.takenAtMs - b.takenAtMs || a.key.localeCompare(b.key));
  const hours = new Set<number>();
  const days = new Set<number>();
  const keep: T[] = [];
  const del: T[] = [];
  for (const s of sorted) {
    const age = nowMs - s.takenAtMs;
    const hour = Math.floor(s.takenAtMs / HOUR_MS);
    const day = Math.floor(s.takenAtMs / DAY_MS);
    let kept = false;
    if (age < policy.keepAllS * 1000) kept = true;
    else if (age < policy.hourlyS * 1000 && !hours.has(hour)) kept = true;
    else if (age < policy.dailyS * 1000 && !days.has(day)) kept = true;
    if (kept) {
      hours.add(hour);
      days.add(day);
      keep.push(s);
    } else {
      del.push(s);
    }
  }
  return { keep, delete: del };
}

import { DEFAULT_RETENTION, planRetention } from '../../src/backup/retention.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-12-01T00:00:00Z');

/** a snapshot `ageMs` before NOW, keyed by its ISO time */
const at = (ageMs: number) => ({ key: new Date(NOW - ageMs).toISOString(), takenAtMs: NOW - ageMs });

test('every 15 minutes for 100 days: 4 in the last hour, one per hour for 7 days, one per day for 90', () => {
  const snaps = [];
  for (let k = 0; k <= 100 * 96; k++) snaps.push(at(k * 15 * MIN));
  const { keep, delete: del } = planRetention(snaps, NOW);
  const ages = new Set(keep.map((s) => NOW - s.takenAtMs));
  const expected = new Set<number>();
  for (const m of [0, 15, 30, 45]) expected.add(m * MIN); // under an hour: all of them
  for (let h = 1; h <= 167; h++) expected.add(h * HOUR); // the first of each hour under 7 days
  for (let d = 7; d <= 89; d++) expected.add(d * DAY); // the first of each day under 90 days
  // the day 90 days ago: its midnight snapshot is out of the window, so its first one inside
  // the window (00:15) is that day's
  expected.add(90 * DAY - 15 * MIN);
  expect([...ages].sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
  expect(keep).toHaveLength(4 + 167 + 83 + 1);
  expect(keep.length + del.length).toBe(snaps.length);
  // the 90-day-old snapshot and everything older goes
  expect(del.map((s) => NOW - s.takenAtMs)).toContain(90 * DAY);
  expect(keep.every((s) => NOW - s.takenAtMs < 90 * DAY)).toBe(true);
});

test('the first (oldest) snapshot of an hour is the one kept, whatever the input order', () => {
  const snaps = [at(5 * HOUR - 55 * MIN), at(5 * HOUR - 5 * MIN), at(5 * HOUR)].reverse();
  const { keep, delete: del } = planRetention(
    [...snaps].sort(() => 0.5 - Math.random()),
    NOW,
  );
  expect(keep.map((s) => s.key)).toEqual([at(5 * HOUR).key]);
  expect(del.map((s) => s.key)).toEqual([at(5 * HOUR - 5 * MIN).key, at(5 * HOUR - 55 * MIN).key]);
});

test('past the hourly window only the first snapshot of each UTC day is kept', () => {
  const day10 = [at(10 * DAY), at(10 * DAY - 6 * HOUR), at(10 * DAY - 23 * HOUR)];
  const { keep } = planRetention(day10, NOW);
  expect(keep.map((s) => s.key)).toEqual([at(10 * DAY).key]);
});

test('snapshots dated in the future (clock skew) are kept, not deleted', () => {
  const { keep, delete: del } = planRetention([at(-10 * MIN), at(200 * DAY)], NOW);
  expect(keep.map((s) => s.key)).toEqual([at(-10 * MIN).key]);
  expect(del.map((s) => s.key)).toEqual([at(200 * DAY).key]);
});

test('a configured policy: keep all for 2 h, hourly for 1 day, daily for 3 days', () => {
  const policy = { keepAllS: 2 * 3600, hourlyS: 86_400, dailyS: 3 * 86_400 };
  const snaps = [];
  for (let k = 0; k <= 5 * 96; k++) snaps.push(at(k * 15 * MIN));
  const { keep } = planRetention(snaps, NOW, policy);
  // 8 under 2 h; hours 2..23; days 1..2; the 3-day-old day's first snapshot inside the window
  expect(keep).toHaveLength(8 + 22 + 2 + 1);
  expect(keep[0]!.key).toBe(at(3 * DAY - 15 * MIN).key);
  expect(planRetention([], NOW, policy)).toEqual({ keep: [], delete: [] });
});

test('windows out of order are refused', () => {
  expect(() => planRetention([], NOW, { ...DEFAULT_RETENTION, hourlyS: 10 * 86_400 * 90 })).toThrow(
    /keep-all <= hourly <= daily/,
  );
});

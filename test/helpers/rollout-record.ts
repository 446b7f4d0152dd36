import { ROLLOUT_FORMAT, type RolloutRecord } from '../../src/secrets/rollout.js';

/**
 * A staged rollout record of the secure layer of `prod` (src/secrets/rollout.ts) for unit
 * tests: generation 7 → 8 (digest `d8`), masters a, b, c in order, `a` allowed since
 * 2026-12-01T00:00:00Z, in progress; `over` replaces any field.
 */
export const rolloutRecord = (over: Partial<RolloutRecord> = {}): RolloutRecord => ({
  format: ROLLOUT_FORMAT,
  environment: 'prod',
  layer: 'secure',
  strategy: 'staged',
  target: { generation: 8, digest: 'd8' },
  previous: { generation: 7, versionId: 'v7' },
  order: ['a', 'b', 'c'],
  allowed: ['a'],
  promotedAt: { a: '2026-12-01T00:00:00.000Z' },
  state: 'in-progress',
  failure: null,
  updatedAt: '2026-12-01T00:00:00.000Z',
  ...over,
});

import { IntegrityError } from '../../src/errors.js';
import type { LayerIndex } from '../../src/secrets/index-format.js';
import { type JudgedVersion, planRecovery } from '../../src/secrets/recover.js';

/** An authentic version of generation g with digest d and previous p. */
function ok(id: string, generation: number, digest: string, previous: string | null): JudgedVersion {
  const index: LayerIndex = {
    format: 1,
    environment: 'e',
    layer: 'secure',
    generation,
    previous,
    updatedAt: '2026-01-01T00:00:00Z',
    files: {},
  };
  return {
    versionId: id,
    isLatest: false,
    etag: `"${id}"`,
    snap: { index, etag: `"${id}"`, digest, encryptedKey: Buffer.alloc(1) },
  };
}
const bad = (id: string): JudgedVersion => ({
  versionId: id,
  isLatest: true,
  etag: `"${id}"`,
  error: 'authentication failed',
});
const d = (n: number) => String(n).repeat(64).slice(0, 64);

test('the newest authentic version that continues the chain is the base; one generation above it', () => {
  const p = planRecovery('secure', [bad('v3'), ok('v2', 2, d(2), d(1)), ok('v1', 1, d(1), null)], 0);
  expect(p.base.versionId).toBe('v2');
  expect(p.generation).toBe(3);
  expect(p.failed.map((f) => f.versionId)).toEqual(['v3']);
  expect(p.currentEtag).toBe('"v3"');
});

test('an authentic version that breaks the chain is skipped, and the new generation skips past it', () => {
  // v3 authenticates but names a previous digest no version has (e.g. written by a stale key holder)
  const p = planRecovery(
    'secure',
    [bad('v4'), ok('v3', 3, d(3), d(9)), ok('v2', 2, d(2), d(1)), ok('v1', 1, d(1), null)],
    0,
  );
  expect(p.base.versionId).toBe('v2');
  expect(p.generation).toBe(5);
});

test('a generation seen locally above the bucket raises the new generation', () => {
  expect(planRecovery('secure', [bad('v2'), ok('v1', 1, d(1), null)], 4).generation).toBe(6);
});

test('nothing to recover, or nothing to recover from, is an integrity error', () => {
  expect(() => planRecovery('secure', [ok('v1', 1, d(1), null)], 0)).toThrow(
    /authenticates: nothing to recover/,
  );
  expect(() => planRecovery('secure', [bad('v1')], 0)).toThrow(IntegrityError);
  expect(() => planRecovery('secure', [], 0)).toThrow(/no stored version/);
});

import { backoffS, checkIndex, EMPTY_STATE, fingerprint, planSync, targetOf } from '../../src/agent/plan.js';
import { IntegrityError } from '../../src/errors.js';
import { sha256 } from '../../src/secrets/envelope.js';
import type { LayerIndex } from '../../src/secrets/index-format.js';

const entry = (content: string, mode = 0o600) => ({
  sha256: sha256(content),
  size: content.length,
  mode,
  versionId: 'v',
});
const index = (files: LayerIndex['files'], generation = 2, previous: string | null = null): LayerIndex => ({
  format: 1,
  environment: 'e',
  layer: 'secure',
  generation,
  previous,
  updatedAt: '',
  files,
});
const map = { dest: '/m', root: '/k' };
const D1 = 'a'.repeat(64);
const D2 = 'b'.repeat(64);
const D3 = 'c'.repeat(64);

test('paths map to staticPodPath and root; without root only manifests are synced', () => {
  expect(targetOf('manifests/etcd.yaml', map)).toBe('/m/etcd.yaml');
  expect(targetOf('pki/ca.crt', map)).toBe('/k/pki/ca.crt');
  expect(targetOf('pki/ca.crt', { dest: '/m' })).toBeUndefined();
});

test('writes what is missing or differs (content or mode), leaves the rest', () => {
  const idx = index({
    'manifests/a.yaml': entry('a'),
    'manifests/b.yaml': entry('b'),
    'pki/c': entry('c', 0o644),
  });
  const actions = planSync(idx, EMPTY_STATE, map, {
    '/m/a.yaml': fingerprint(sha256('a'), 0o600),
    '/m/b.yaml': fingerprint(sha256('old'), 0o600),
    '/k/pki/c': fingerprint(sha256('c'), 0o600),
  });
  expect(actions.map((a) => [a.kind, a.target])).toEqual([
    ['write', '/m/b.yaml'],
    ['write', '/k/pki/c'],
  ]);
});

test('removes only files it wrote earlier that the index no longer lists', () => {
  const idx = index({ 'manifests/a.yaml': entry('a') });
  const state = {
    ...EMPTY_STATE,
    generation: 1,
    written: { '/m/a.yaml': sha256('a'), '/m/old.yaml': sha256('x') },
  };
  const actions = planSync(idx, state, map, { '/m/a.yaml': fingerprint(sha256('a'), 0o600) });
  expect(actions).toEqual([{ kind: 'remove', target: '/m/old.yaml' }]);
});

describe('checkIndex: the generation never goes backwards and the chain holds', () => {
  const applied = { ...EMPTY_STATE, generation: 5, indexDigest: D1 };

  test('a first index, a re-read of the applied one, the next one and a later one are accepted', () => {
    expect(() => checkIndex('secure', index({}, 1), D1, EMPTY_STATE)).not.toThrow();
    expect(() => checkIndex('secure', index({}, 5), D1, applied)).not.toThrow();
    expect(() => checkIndex('secure', index({}, 6, D1), D2, applied)).not.toThrow();
    // generations were skipped (the agent was down): the chain cannot be checked
    expect(() => checkIndex('secure', index({}, 9, D3), D2, applied)).not.toThrow();
  });

  test('an older generation is a rollback', () => {
    expect(() => checkIndex('secure', index({}, 4), D2, applied)).toThrow(IntegrityError);
    expect(() => checkIndex('secure', index({}, 4), D2, applied)).toThrow(
      'index/secure: generation 4 is older than the applied generation 5 (rollback refused)',
    );
  });

  test('the applied generation with another digest is a rewritten index', () => {
    expect(() => checkIndex('secure', index({}, 5), D2, applied)).toThrow(
      /generation 5 was already applied with another index/,
    );
  });

  test('the next generation must name the applied index as previous', () => {
    expect(() => checkIndex('secure', index({}, 6, D3), D2, applied)).toThrow(/broken hash chain refused/);
  });
});

test('backoff: full jitter under an exponential ceiling capped at 30 s', () => {
  expect(backoffS(1, 1, 30, 0.999)).toBeCloseTo(0.999);
  expect(backoffS(3, 1, 30, 0.5)).toBe(2);
  expect(backoffS(6, 1, 30, 1)).toBe(30);
  expect(backoffS(1000, 1, 30, 1)).toBe(30);
  expect(backoffS(4, 1, 30, 0)).toBe(0);
  for (let f = 1; f < 50; f++) {
    const s = backoffS(f, 1, 30, Math.random());
    expect(s).toBeGreaterThanOrEqual(0);
    expect(s).toBeLessThanOrEqual(Math.min(30, 2 ** (f - 1)));
  }
});

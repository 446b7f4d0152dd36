import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../src/errors.js';
import { open, parseEnvelope, seal, sha256 } from '../../src/secrets/envelope.js';
import { isEmptyPlan, parseIndex, planPublish, serializeIndex } from '../../src/secrets/index-format.js';
import { isSafePath } from '../../src/secrets/layers.js';

const key = { plaintext: randomBytes(32), encrypted: randomBytes(184) };
const binding = { environment: 'prod', layer: 'secure', path: 'secure/pki/ca.key' };

test('seal/open round-trips and the ciphertext hides the plaintext', () => {
  const data = Buffer.from(`${'-'.repeat(5)}BEGIN PRIVATE KEY${'-'.repeat(5)} secret`);
  const sealed = seal(data, key, binding);
  expect(sealed.includes(data)).toBe(false);
  expect(open(parseEnvelope(sealed, 'x'), key.plaintext, binding)).toEqual(data);
  // two encryptions differ (random IV), so change detection must use plaintext digests
  expect(seal(data, key, binding).equals(sealed)).toBe(false);
});

test('every flipped byte, another path, layer or environment fails authentication', () => {
  const sealed = seal(Buffer.from('payload'), key, binding);
  const env = parseEnvelope(sealed, 'x');
  expect(() => open(env, key.plaintext, { ...binding, path: 'secure/pki/other.key' })).toThrow(
    IntegrityError,
  );
  expect(() => open(env, key.plaintext, { ...binding, layer: 'compute' })).toThrow(IntegrityError);
  expect(() => open(env, key.plaintext, { ...binding, environment: 'staging' })).toThrow(IntegrityError);
  const headerLen = 6 + key.encrypted.length;
  for (let i = headerLen; i < sealed.length; i++) {
    const t = Buffer.from(sealed);
    t[i]! ^= 0x80;
    expect(() => open(parseEnvelope(t, 'x'), key.plaintext, binding)).toThrow(IntegrityError);
  }
  expect(() => parseEnvelope(Buffer.from('apiVersion: v1'), 'x')).toThrow(/not an encrypted/);
});

const file = (path: string, content: string, mode = 0o600) => ({
  path,
  sha256: sha256(content),
  size: content.length,
  mode,
});

test('planPublish compares plaintext digests and modes', () => {
  const index = {
    format: 1 as const,
    environment: 'prod',
    layer: 'secure',
    generation: 4,
    previous: null,
    updatedAt: '2026-01-01T00:00:00Z',
    files: {
      a: { sha256: sha256('a'), size: 1, mode: 0o600, versionId: 'v1' },
      b: { sha256: sha256('b'), size: 1, mode: 0o600, versionId: 'v1' },
      c: { sha256: sha256('c'), size: 1, mode: 0o600, versionId: 'v1' },
      gone: { sha256: sha256('g'), size: 1, mode: 0o600, versionId: 'v1' },
    },
  };
  const plan = planPublish([file('a', 'a'), file('b', 'B'), file('c', 'c', 0o644), file('new', 'n')], index);
  expect(plan).toEqual({
    added: ['new'],
    changed: ['b'],
    modeChanged: ['c'],
    removed: ['gone'],
    unchanged: ['a'],
  });
  expect(
    isEmptyPlan(planPublish([file('a', 'a'), file('b', 'b'), file('c', 'c'), file('gone', 'g')], index)),
  ).toBe(true);
  // the index round-trips and is checked against its environment and layer
  const bytes = serializeIndex(index);
  expect(parseIndex(bytes, { environment: 'prod', layer: 'secure' })).toEqual(index);
  expect(() => parseIndex(bytes, { environment: 'staging', layer: 'secure' })).toThrow(
    /belongs to environment "prod"/,
  );
  expect(() => parseIndex(bytes, { environment: 'prod', layer: 'compute' })).toThrow(IntegrityError);
  const hostile = Buffer.from(JSON.stringify({ ...index, files: { '../../etc/passwd': index.files.a } }));
  expect(() => parseIndex(hostile, { environment: 'prod', layer: 'secure' })).toThrow(/unsafe path/);
});

test('safe paths', () => {
  for (const ok of ['a', 'manifests/etcd.yaml', 'pki/etcd/members/etcd-0/server.crt', 'ssh/play-x.pub'])
    expect(isSafePath(ok)).toBe(true);
  for (const bad of ['', '/abs', '../x', 'a/../b', 'a/./b', '.', 'a//b', 'a b', 'a\\b', 'x/'])
    expect(isSafePath(bad)).toBe(false);
});

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  openSavedPlan,
  SAVED_PLAN_KIND,
  type SavedInputs,
  type SavedPlan,
  savedPlanContext,
  sealSavedPlan,
  staleReasons,
} from '../../src/changeset/saved-format.js';
import { IntegrityError, UserError } from '../../src/errors.js';
import { seal } from '../../src/secrets/envelope.js';
import type { KeyService } from '../../src/secrets/keyring.js';

/**
 * The saved plan's file format (src/changeset/saved-format.ts): round trip, authentication,
 * binding to its environment and encryption context, versioning, and the pure stale check.
 */

/**
 * A KMS double for unit tests: data keys wrapped with AES-256-GCM under an in-memory master
 * key, the encryption context as additional authenticated data — KMS's contract (a
 * ciphertext blob decrypts only with the context it was made with). The integration test
 * (test/integration/run-saved-plan.test.ts) uses moto's KMS.
 */
class KmsDouble implements KeyService {
  readonly master = randomBytes(32);
  contexts: Record<string, string>[] = [];
  async generateDataKey(context: Record<string, string>) {
    this.contexts.push(context);
    const plaintext = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.master, iv);
    c.setAAD(Buffer.from(JSON.stringify(context)));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    return { plaintext: Buffer.from(plaintext), encrypted: Buffer.concat([iv, body, c.getAuthTag()]) };
  }
  async decryptDataKey(encrypted: Buffer, context: Record<string, string>) {
    const d = createDecipheriv('aes-256-gcm', this.master, encrypted.subarray(0, 12));
    d.setAAD(Buffer.from(JSON.stringify(context)));
    d.setAuthTag(encrypted.subarray(encrypted.length - 16));
    try {
      return Buffer.concat([d.update(encrypted.subarray(12, encrypted.length - 16)), d.final()]);
    } catch (e) {
      throw new IntegrityError('KMS double: InvalidCiphertextException', { cause: e });
    }
  }
}

const inputs: SavedInputs = {
  toolkitVersion: '0.1.0',
  environmentFile: 'a'.repeat(64),
  bootstrap: [],
  kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
  state: { bucket: 'kp-prod-tfstate', key: 'prod/platform.tfstate', versionId: 'v1' },
  indexes: [
    { layer: 'secure', generation: 4, digest: 'b'.repeat(64) },
    { layer: 'compute', generation: 2, digest: 'c'.repeat(64) },
  ],
  workingCopy: { secure: { 'manifests/etcd.yaml': `${'d'.repeat(64)} 600` } },
  agent: { key: 'agent/manifest-sync-e.mjs', sha256: 'e'.repeat(64) },
};

const KEY_PEM = `${'-'.repeat(5)}BEGIN PRIVATE KEY${'-'.repeat(5)}\nMC4CAQAwBQYDK2VwBCIEI\n`;
const plan: SavedPlan = {
  kind: SAVED_PLAN_KIND,
  format: 1,
  environment: 'prod',
  account: '123456789012',
  createdAt: '2026-12-02T17:00:00.000Z',
  inputs,
  changes: {
    pki: {
      writes: [{ path: 'locked/pki/new.key', reason: 'missing', content: KEY_PEM }],
      kept: [],
      modeFixes: [],
      managed: ['locked/pki/new.key'],
      expiring: [],
      outdated: [],
      caCertificates: { kubernetes: `${'-'.repeat(5)}BEGIN CERTIFICATE${'-'.repeat(5)}\nMIIB\n` },
      sshPublicKey: 'ssh-ed25519 AAAA prod\n',
      now: '2026-12-02T17:00:00.000Z',
      warnDays: 30,
    },
    rendered: [{ path: 'secure/manifests/etcd.yaml', content: 'image: etcd:v3.6.5\n', mode: 0o600 }],
    layers: [
      {
        layer: 'secure',
        plan: { added: [], changed: ['manifests/etcd.yaml'], modeChanged: [], removed: [], unchanged: [] },
        diffs: { 'manifests/etcd.yaml': '-image: etcd:v3.6.4\n+image: etcd:v3.6.5\n' },
        digests: { 'manifests/etcd.yaml': 'f'.repeat(64) },
      },
    ],
    agentPublish: false,
    terraform: {
      changes: true,
      add: 1,
      change: 0,
      destroy: 0,
      addresses: ['module.network.aws_vpc_security_group_ingress_rule.this["x"]'],
      resources: [
        { address: 'module.network.aws_vpc_security_group_ingress_rule.this["x"]', actions: ['create'] },
      ],
      planFile: Buffer.from('PK\x03\x04 tfplan with a secret: hunter2').toString('base64'),
      planJson: { format_version: '1.2', resource_changes: [] },
    },
  },
};

test('a saved plan round-trips; the file shows no key, manifest or Terraform plan', async () => {
  const kms = new KmsDouble();
  const bytes = await sealSavedPlan(plan, kms);
  expect(bytes.subarray(0, 5)).toEqual(Buffer.from([0x4b, 0x50, 0x53, 0x50, 1])); // "KPSP" 1
  expect(kms.contexts).toEqual([{ purpose: 'saved-plan', environment: 'prod' }]);
  expect(kms.contexts[0]).toEqual(savedPlanContext('prod'));
  for (const plain of ['PRIVATE KEY', 'etcd:v3.6.5', 'hunter2', 'tfplan', 'manifests']) {
    expect([plain, bytes.includes(plain)]).toEqual([plain, false]);
  }
  expect(await openSavedPlan(bytes, 'prod', kms, 'p.plan')).toEqual(plan);
});

test('every flipped byte is an IntegrityError naming the file and nothing of its content', async () => {
  const kms = new KmsDouble();
  const bytes = await sealSavedPlan(plan, kms);
  // every byte after the header (magic, version): data key length, data key, iv, body, tag
  const step = Math.max(1, Math.floor(bytes.length / 400));
  for (let i = 5; i < bytes.length; i += step) {
    const t = Buffer.from(bytes);
    t[i]! ^= 0x01;
    const e = await openSavedPlan(t, 'prod', kms, 'p.plan').then(
      () => undefined,
      (x: unknown) => x,
    );
    expect([i, e instanceof IntegrityError]).toEqual([i, true]);
    expect((e as Error).message).toMatch(/^p\.plan: /);
    expect((e as Error).message).not.toMatch(/PRIVATE|hunter2|etcd/);
  }
});

test("another environment's saved plan, a junk file and a newer format are refused", async () => {
  const kms = new KmsDouble();
  const bytes = await sealSavedPlan(plan, kms);
  await expect(openSavedPlan(bytes, 'staging', kms, 'p.plan')).rejects.toThrow(
    /p\.plan: the saved plan does not open for environment staging/,
  );
  await expect(openSavedPlan(Buffer.from('hello'), 'prod', kms, 'j')).rejects.toThrow(
    /j: not a kube-platform saved plan/,
  );
  const newer = Buffer.from(bytes);
  newer[4] = 2;
  await expect(openSavedPlan(newer, 'prod', kms, 'p.plan')).rejects.toThrow(UserError);
  await expect(openSavedPlan(newer, 'prod', kms, 'p.plan')).rejects.toThrow(/made by a newer toolkit/);
  // version 1 in the header but the payload is authenticated as version 1 only: an older
  // version byte does not open it either
  const older = Buffer.from(bytes);
  older[4] = 0;
  await expect(openSavedPlan(older, 'prod', kms, 'p.plan')).rejects.toThrow(IntegrityError);
});

test('an authenticated document that is not a saved plan is an IntegrityError', async () => {
  const kms = new KmsDouble();
  const key = await kms.generateDataKey(savedPlanContext('prod'));
  const body = seal(gzipSync(Buffer.from(JSON.stringify({ ...plan, kind: 'something-else' }))), key, {
    environment: 'prod',
    layer: 'saved-plan',
    path: 'saved-plan/v1',
  });
  const bytes = Buffer.concat([Buffer.from('KPSP'), Buffer.from([1]), body]);
  await expect(openSavedPlan(bytes, 'prod', kms, 'p.plan')).rejects.toThrow(
    /p\.plan: not a saved plan document: kind/,
  );
});

test('staleReasons: nothing moved → none; each moved input → one line naming it', () => {
  expect(staleReasons(inputs, structuredClone(inputs))).toEqual([]);
  const moved = (f: (i: SavedInputs) => void) => {
    const n = structuredClone(inputs);
    f(n);
    return staleReasons(inputs, n);
  };
  expect(moved((n) => (n.toolkitVersion = '0.2.0'))).toEqual([
    'the toolkit is 0.2.0, the plan was made by 0.1.0',
  ]);
  expect(moved((n) => (n.environmentFile = '0'.repeat(64)))).toEqual([
    'the environment file changed since the plan',
  ]);
  expect(moved((n) => (n.state.versionId = 'v2'))).toEqual([
    'the Terraform state s3://kp-prod-tfstate/prod/platform.tfstate changed (version v1 -> v2)',
  ]);
  expect(moved((n) => (n.indexes[0]!.generation = 5))).toEqual([
    "layer secure: the bucket's index is at generation 5, the plan was computed against generation 4",
  ]);
  expect(moved((n) => (n.indexes[1]!.digest = '9'.repeat(64)))).toEqual([
    "layer compute: the bucket's index is at generation 2 (rewritten), the plan was computed against generation 2",
  ]);
  expect(moved((n) => n.indexes.push({ layer: 'locked', generation: 1, digest: '1'.repeat(64) }))).toEqual([
    'layer locked: published since the plan (generation 1)',
  ]);
  expect(moved((n) => (n.workingCopy.secure!['manifests/etcd.yaml'] = `${'d'.repeat(64)} 644`))).toEqual([
    "the working copy's secure layer changed since the plan: manifests/etcd.yaml",
  ]);
  expect(moved((n) => (n.bootstrap = ['create bucket s3://x']))).toEqual([
    'the bootstrap changed: the plan listed [in place], now [create bucket s3://x]',
  ]);
  expect(moved((n) => (n.agent.sha256 = '0'.repeat(64)))).toHaveLength(1);
  expect(moved((n) => (n.kmsKeyArn = 'arn:aws:kms:eu-west-1:123456789012:key/other'))).toEqual([
    'the environment KMS key is another one',
  ]);
});

test('staleReasons: a layer planned from nothing stays fresh until someone publishes it', () => {
  const saved = structuredClone(inputs);
  saved.indexes.push({ layer: 'locked', generation: 0, digest: null });
  const now = structuredClone(inputs);
  expect(staleReasons(saved, now)).toEqual([]);
  now.indexes.push({ layer: 'locked', generation: 1, digest: '1'.repeat(64) });
  expect(staleReasons(saved, now)).toEqual([
    "layer locked: the bucket's index is at generation 1, the plan was computed against generation 0",
  ]);
});

import { execFileSync } from 'node:child_process';
import { GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { bootstrap } from '../../src/aws/bootstrap.js';
import { AwsClients } from '../../src/aws/clients.js';
import { bootstrapNames } from '../../src/config/topology.js';
import { ConflictError, IntegrityError } from '../../src/errors.js';
import { sha256 } from '../../src/secrets/envelope.js';
import { Keyring } from '../../src/secrets/keyring.js';
import { type LocalFile, SecretStore } from '../../src/secrets/store.js';
import { bootstrapEnvironment, TEST_REGION } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';

const moto = useMoto();
const ENV = 'bucket-test';

function file(path: string, text: string, mode = 0o600): LocalFile {
  const content = Buffer.from(text);
  return { path, content, sha256: sha256(content), size: content.length, mode };
}

const setup = () => bootstrapEnvironment(moto.endpoint, ENV);

function awscli(args: string[]): string {
  return execFileSync('aws', ['--endpoint-url', moto.endpoint, '--region', 'eu-west-1', ...args], {
    env: { ...process.env, ...moto.env },
    encoding: 'utf8',
  });
}

test('bootstrap creates key, alias and buckets once, then changes nothing', async () => {
  const aws = new AwsClients({ region: TEST_REGION, endpoint: moto.endpoint });
  const names = bootstrapNames({ name: ENV, region: TEST_REGION }, (await aws.identity()).account);
  const boot = await bootstrap(aws, names, ENV);
  expect(boot.changed).toEqual(
    expect.arrayContaining([
      `KMS key ${names.kmsAlias}`,
      `bucket ${names.stateBucket}`,
      `bucket ${names.secretsBucket}`,
    ]),
  );
  const again = await bootstrap(aws, names, ENV);
  expect(again.changed).toEqual([]);
  expect(again.kmsKeyArn).toBe(boot.kmsKeyArn);
  // cross-check with an independent client
  expect(
    JSON.parse(awscli(['kms', 'list-aliases'])).Aliases.map((a: { AliasName: string }) => a.AliasName),
  ).toContain(names.kmsAlias);
  for (const b of [names.stateBucket, names.secretsBucket]) {
    expect(JSON.parse(awscli(['s3api', 'get-bucket-versioning', '--bucket', b])).Status).toBe('Enabled');
    const pab = JSON.parse(awscli(['s3api', 'get-public-access-block', '--bucket', b]));
    expect(Object.values(pab.PublicAccessBlockConfiguration)).toEqual([true, true, true, true]);
  }
  aws.destroy();
});

test('publish uploads ciphertext only, skips unchanged files, chains generations', async () => {
  const { aws, names, keys, store } = await setup();
  const files = [file('manifests/a.yaml', 'apiVersion: v1\nkind: Pod\n'), file('pki/ca.crt', 'CERT', 0o644)];
  const r1 = await store.publish('secure', files);
  expect(r1).toMatchObject({ generation: 1, published: true, puts: 3 });
  expect(r1.plan.added).toEqual(['manifests/a.yaml', 'pki/ca.crt']);
  // raw bytes in the bucket contain no plaintext
  const s3 = await aws.s3();
  for (const key of ['secure/manifests/a.yaml', 'secure/pki/ca.crt', 'index/secure']) {
    const raw = Buffer.from(
      await (
        await s3.send(new GetObjectCommand({ Bucket: names.secretsBucket, Key: key }))
      ).Body!.transformToByteArray(),
    );
    expect(raw.includes('apiVersion')).toBe(false);
    expect(raw.includes('CERT')).toBe(false);
    expect(raw.includes('manifests/a.yaml')).toBe(false);
  }
  // a republish with nothing changed: no PutObject, at most one KMS call
  const before = keys.requests;
  const fresh = new SecretStore({
    s3,
    keyring: new Keyring(keys, ENV),
    bucket: names.secretsBucket,
    environment: ENV,
    kmsKeyId: names.kmsAlias,
  });
  const r2 = await fresh.publish('secure', files);
  expect(r2).toMatchObject({ generation: 1, published: false, puts: 0 });
  expect(keys.requests - before).toBeLessThanOrEqual(1);
  // one change: one file + the index
  const r3 = await fresh.publish('secure', [file('manifests/a.yaml', 'apiVersion: v1\nkind: Pod\n# v2\n')]);
  expect(r3).toMatchObject({ generation: 2, published: true, puts: 2 });
  expect(r3.plan).toMatchObject({ changed: ['manifests/a.yaml'], removed: ['pki/ca.crt'] });
  const snap = await fresh.readIndex('secure');
  if (!snap || snap === 'not-modified') throw new Error('no index');
  expect(Object.keys(snap.index.files)).toEqual(['manifests/a.yaml']);
  expect(snap.index.previous).toMatch(/^[0-9a-f]{64}$/);
  const got = await fresh.fetchAll('secure', snap.index);
  expect(got.get('manifests/a.yaml')!.toString()).toContain('# v2');
  // the removed file's versions stay in the bucket
  const versions = await s3.send(
    new ListObjectVersionsCommand({ Bucket: names.secretsBucket, Prefix: 'secure/pki/ca.crt' }),
  );
  expect(versions.Versions?.length).toBe(1);
  aws.destroy();
});

test('a conditional read answers not-modified while the index is unchanged', async () => {
  const { aws, store } = await setup();
  await store.publish('common', [file('x', 'x')]);
  const snap = await store.readIndex('common');
  if (!snap || snap === 'not-modified') throw new Error('no index');
  expect(await store.readIndex('common', snap.etag)).toBe('not-modified');
  await store.publish('common', [file('x', 'y')]);
  const next = await store.readIndex('common', snap.etag);
  expect(next).not.toBe('not-modified');
  aws.destroy();
});

test('two publishers: the one with a stale index gets a ConflictError and publishes nothing', async () => {
  const { aws, store } = await setup();
  await store.publish('compute', [file('a', '1')]);
  const stale = await store.readIndex('compute');
  if (!stale || stale === 'not-modified') throw new Error('no index');
  await store.publish('compute', [file('a', '2')]);
  await expect(store.publish('compute', [file('a', '3')], { base: stale })).rejects.toBeInstanceOf(
    ConflictError,
  );
  const now = await store.readIndex('compute');
  if (!now || now === 'not-modified') throw new Error('no index');
  expect(now.index.generation).toBe(2);
  expect((await store.fetchAll('compute', now.index)).get('a')!.toString()).toBe('2');
  aws.destroy();
});

test('a tampered or moved object is rejected', async () => {
  const { aws, names, store } = await setup();
  await store.publish('secure', [file('k', 'secret-value-1')]);
  const snap = await store.readIndex('secure');
  if (!snap || snap === 'not-modified') throw new Error('no index');
  const s3 = await aws.s3();
  const raw = Buffer.from(
    await (
      await s3.send(new GetObjectCommand({ Bucket: names.secretsBucket, Key: 'secure/k' }))
    ).Body!.transformToByteArray(),
  );
  const flipped = Buffer.from(raw);
  flipped[flipped.length - 20]! ^= 0x01;
  const put = await s3.send(
    new PutObjectCommand({ Bucket: names.secretsBucket, Key: 'secure/k', Body: flipped }),
  );
  await expect(
    store.fetchFile('secure', 'k', { ...snap.index.files.k!, versionId: put.VersionId! }),
  ).rejects.toBeInstanceOf(IntegrityError);
  // the intact bytes moved to another path fail authentication too
  const moved = await s3.send(
    new PutObjectCommand({ Bucket: names.secretsBucket, Key: 'secure/other', Body: raw }),
  );
  await expect(
    store.fetchFile('secure', 'other', { ...snap.index.files.k!, versionId: moved.VersionId! }),
  ).rejects.toThrow(/authentication failed/);
  aws.destroy();
});

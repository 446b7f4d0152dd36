import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ConflictError, IntegrityError, UserError } from '../../src/errors.js';
import { KmsKeyService } from '../../src/secrets/keyring.js';
import { STATE_FORMAT } from '../../src/state/schema.js';
import { ClusterStateStore, openClusterState, stateObjectKey } from '../../src/state/store.js';
import { cli, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';

/**
 * The cluster state against the local AWS: envelope encryption under its own encryption
 * context, conditional writes (moto enforces If-Match / If-None-Match), the downgrade
 * guard, and `status` through the built CLI.
 */

const moto = useMoto();
const ENV = 'state-it';

async function open(t: TestEnvironment, version = '0.1.0'): Promise<ClusterStateStore> {
  return openClusterState(t.aws, {
    environment: ENV,
    bucket: t.names.stateBucket,
    kmsKeyId: t.kmsKeyArn,
    toolkitVersion: version,
  });
}

let t: TestEnvironment;
beforeEach(async () => {
  t = await bootstrapEnvironment(moto.endpoint, ENV);
});
afterEach(() => t.aws.destroy());

test('first write, read back, update: encrypted at rest, revision and version stamped', async () => {
  const store = await open(t);
  const empty = await store.read();
  expect(empty.etag).toBeNull();
  expect(empty.state.revision).toBe(0);
  const w = await store.write(empty, { ...empty.state, generations: { secure: 4 } });
  expect(w.state.revision).toBe(1);
  const s3 = await t.aws.s3();
  const raw = Buffer.from(
    await (
      await s3.send(new GetObjectCommand({ Bucket: t.names.stateBucket, Key: stateObjectKey(ENV) }))
    ).Body!.transformToByteArray(),
  );
  expect(raw.subarray(0, 4).toString()).toBe('KPE1');
  expect(raw.includes(Buffer.from(STATE_FORMAT))).toBe(false);
  const again = await (await open(t)).read();
  expect(again.state).toEqual(w.state);
  expect(again.state.toolkitVersion).toBe('0.1.0');
  const u = await store.update((s) => ({ ...s, generations: { ...s.generations, compute: 2 } }));
  expect(u.state.revision).toBe(2);
  expect(u.state.generations).toEqual({ secure: 4, compute: 2 });
  // no change, no write
  const puts = store.puts;
  await store.update((s) => s);
  expect(store.puts).toBe(puts);
});

test('two writers from the same revision: the second gets a ConflictError (first write and later writes)', async () => {
  const a = await open(t);
  const b = await open(t);
  const baseA = await a.read();
  const baseB = await b.read();
  await a.write(baseA, { ...baseA.state, generations: { secure: 1 } });
  await expect(b.write(baseB, { ...baseB.state, generations: { secure: 9 } })).rejects.toThrow(ConflictError);
  const r1 = await a.read();
  const r2 = await b.read();
  await b.write(r2, { ...r2.state, generations: { secure: 2 } });
  await expect(a.write(r1, { ...r1.state, generations: { secure: 3 } })).rejects.toThrow(
    /changed by someone else meanwhile \(revision 1 is no longer current\)/,
  );
  expect((await a.read()).state.generations).toEqual({ secure: 2 });
  // update() with retries re-applies the mutation on the newer base
  const stale = await a.read();
  await b.write(stale, { ...stale.state, generations: { ...stale.state.generations, common: 1 } });
  const u = await a.update((s) => ({ ...s, generations: { ...s.generations, compute: 5 } }), { retries: 2 });
  expect(u.state.generations).toEqual({ secure: 2, common: 1, compute: 5 });
});

test('the state is bound to its context: a tampered or moved object fails authentication', async () => {
  const store = await open(t);
  const first = await store.read();
  await store.write(first, first.state);
  const s3 = await t.aws.s3();
  const raw = Buffer.from(
    await (
      await s3.send(new GetObjectCommand({ Bucket: t.names.stateBucket, Key: stateObjectKey(ENV) }))
    ).Body!.transformToByteArray(),
  );
  // moved to another environment's key: the AAD names the path and the environment
  await s3.send(
    new PutObjectCommand({ Bucket: t.names.stateBucket, Key: stateObjectKey('other'), Body: raw }),
  );
  const other = new ClusterStateStore({
    s3,
    keys: new KmsKeyService(await t.aws.kms(), t.kmsKeyArn),
    bucket: t.names.stateBucket,
    environment: 'other',
    kmsKeyId: t.kmsKeyArn,
    toolkitVersion: '0.1.0',
  });
  await expect(other.read()).rejects.toThrow(IntegrityError);
  // a flipped byte
  const bad = Buffer.from(raw);
  bad[bad.length - 20]! ^= 1;
  await s3.send(new PutObjectCommand({ Bucket: t.names.stateBucket, Key: stateObjectKey(ENV), Body: bad }));
  await expect(store.read()).rejects.toThrow(/authentication failed/);
});

test('an older toolkit refuses to write a state a newer one wrote, unless allowDowngrade', async () => {
  const newer = await open(t, '0.5.0');
  const e = await newer.read();
  await newer.write(e, e.state);
  const older = await open(t, '0.4.2');
  const base = await older.read();
  await expect(older.write(base, base.state)).rejects.toThrow(UserError);
  await expect(older.update((s) => ({ ...s, generations: { secure: 1 } }))).rejects.toThrow(
    /last written by kube-platform 0\.5\.0, newer than this toolkit \(0\.4\.2\)/,
  );
  const w = await older.write(base, base.state, { allowDowngrade: true });
  expect(w.state.toolkitVersion).toBe('0.4.2');
});

test('status prints the state (table and --json); before any write it says so', async () => {
  const ws = workspace({ [ENV]: '' });
  const env = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  const none = await cli(['status', '-e', ENV, '--json'], env);
  expect(none.code).toBe(0);
  expect(JSON.parse(none.stdout).revision).toBe(0);
  expect(none.stderr).toContain('no cluster state written yet');

  const store = await openClusterState(t.aws, {
    environment: ENV,
    bucket: t.names.stateBucket,
    kmsKeyId: t.names.kmsAlias,
    toolkitVersion: '0.1.0',
  });
  const b = await store.read();
  await store.write(b, {
    ...b.state,
    generations: { secure: 3 },
    etcdMembers: { 'etcd-0': { ip: '10.0.1.10', eni: 'eni-1', volume: 'vol-1', instance: 'i-1' } },
  });
  const json = await cli(['status', '-e', ENV, '--json'], env);
  expect(json.code).toBe(0);
  expect(JSON.parse(json.stdout)).toMatchObject({ revision: 1, generations: { secure: 3 } });
  const table = await cli(['status', '-e', ENV], env);
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(/revision 1, written by kube-platform 0\.1\.0/);
  expect(table.stdout).toMatch(/etcd-0.*10\.0\.1\.10.*eni-1.*vol-1.*i-1/);
  expect(table.stdout).toContain('operation in progress: none');
});

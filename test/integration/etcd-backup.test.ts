import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { expireBackups, gatewaySource, takeBackup } from '../../src/backup/backup.js';
import { etcdctlSource } from '../../src/backup/etcdctl.js';
import {
  type LocalMember,
  planLocalMembers,
  startLocalMembers,
  stopLocalMembers,
} from '../../src/backup/member.js';
import { dryRunRestore, newClusterToken, restoreMember } from '../../src/backup/restore.js';
import { BACKUP_PREFIX, BackupStore } from '../../src/backup/store.js';
import { IntegrityError } from '../../src/errors.js';
import { cli } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { getAll, putAll } from '../helpers/etcd.js';
import { useMoto } from '../helpers/moto.js';

/**
 * etcd backups on real etcd (Debian's 3.4) on loopback, through the envelope code to the
 * local AWS: 1,000 keys → snapshot → sealed upload, verified → a flipped byte refused →
 * restored into a fresh 3-member cluster with identical keys and values.
 */
const moto = useMoto({ resetEach: false });
let env: TestEnvironment;
let store: BackupStore;
let root: string;
const running: LocalMember[][] = [];
const data = new Map<string, string>();
for (let i = 0; i < 1000; i++)
  data.set(`/registry/test/key-${String(i).padStart(4, '0')}`, `value ${i} ${'x'.repeat(i % 50)}`);

beforeAll(async () => {
  env = await bootstrapEnvironment(moto.endpoint, 'bk-test');
  store = new BackupStore({
    s3: await env.aws.s3(),
    keys: env.keys,
    bucket: env.names.secretsBucket,
    environment: 'bk-test',
    kmsKeyId: env.kmsKeyArn,
  });
  root = await mkdtemp(path.join(os.tmpdir(), 'kp-etcd-test-'));
}, 60_000);

afterAll(async () => {
  for (const m of running) await stopLocalMembers(m);
  env?.aws.destroy();
  if (root) await rm(root, { recursive: true, force: true });
});

async function cluster(names: string[], dir: string, token: string, fresh = true): Promise<LocalMember[]> {
  const members = await planLocalMembers(names, dir);
  if (fresh) {
    await startLocalMembers(members, { token, logDir: root });
    running.push(members);
  }
  return members;
}

let snapshotKey = '';

test('1,000 keys: snapshot, sealed upload under backups/etcd/, verified after upload', async () => {
  const [source] = await cluster(['src'], path.join(root, 'source'), 'source-cluster');
  await putAll(source!, data);
  const r = await takeBackup(store, etcdctlSource({ url: source!.clientUrl }), {
    member: 'm1',
    scratchParent: root,
  });
  snapshotKey = r.key;
  expect(r.key).toMatch(/^backups\/etcd\/\d{8}T\d{6}\.\d{3}Z-m1\.db$/);
  expect(r.revision).toBeGreaterThanOrEqual(1001);
  expect(r.meta.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect((await store.list()).map((b) => b.key)).toEqual([r.key]);
  // the object in the bucket is ciphertext: no key name of the snapshot appears in it
  const s3 = await env.aws.s3();
  const raw = await s3.send(new GetObjectCommand({ Bucket: env.names.secretsBucket, Key: r.key }));
  const bytes = Buffer.from(await raw.Body!.transformToByteArray());
  expect(bytes.subarray(0, 4).toString()).toBe('KPE1');
  expect(bytes.includes(Buffer.from('/registry/test/key-0999'))).toBe(false);
  // the dry run restores it into a scratch directory and counts the keys
  const dry = await dryRunRestore(store, r.key, { scratchParent: root });
  expect(dry.keys).toBe(1000);
  expect(dry.status.revision).toBe(r.revision);
  // the masters' path (etcd's gateway, no etcdctl) yields a file etcdctl accepts too
  const g = await takeBackup(store, gatewaySource({ url: source!.clientUrl }), {
    member: 'gw',
    scratchParent: root,
  });
  // etcd 3.4's gateway sends no response header: the revision is then unknown (0), not guessed
  expect([0, r.revision]).toContain(g.revision);
  const gdry = await dryRunRestore(store, g.key, { scratchParent: root });
  expect(gdry).toMatchObject({ keys: 1000 });
  expect(gdry.status.revision).toBe(r.revision);
  await store.remove([g.key]);
}, 120_000);

test('restored into a fresh 3-member cluster: the same keys and values', async () => {
  const token = newClusterToken();
  const members = await cluster(['m1', 'm2', 'm3'], path.join(root, 'restored'), token, false);
  const peers = members.map((m) => ({ name: m.name, peerUrl: m.peerUrl }));
  for (const m of members) {
    await restoreMember(store, snapshotKey, {
      dataDir: m.dataDir,
      member: { name: m.name, peerUrl: m.peerUrl },
      cluster: peers,
      token,
      scratchParent: root,
    });
  }
  await startLocalMembers(members, { token, logDir: root });
  running.push(members);
  for (const m of members) {
    const got = await getAll(m);
    expect(got.size).toBe(1000);
    expect(got).toEqual(data);
  }
  // the restored cluster takes writes (quorum of the new members)
  await putAll(members[1]!, new Map([['/after-restore', 'ok']]));
  expect((await getAll(members[2]!)).get('/after-restore')).toBe('ok');
}, 120_000);

test('one flipped byte in the object, or a snapshot moved to another key, is refused (exit 4)', async () => {
  const s3 = await env.aws.s3();
  const bucket = env.names.secretsBucket;
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: snapshotKey }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  const flipped = Buffer.from(bytes);
  const at = Math.floor(flipped.length / 2);
  flipped[at] = flipped[at]! ^ 0x01;
  const tamperedKey = `${BACKUP_PREFIX}20261201T000000Z-tampered.db`;
  const movedKey = `${BACKUP_PREFIX}20261201T000000Z-moved.db`;
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: tamperedKey, Body: flipped, Metadata: got.Metadata }),
  );
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: movedKey, Body: bytes, Metadata: got.Metadata }));
  for (const key of [tamperedKey, movedKey]) {
    const err = await dryRunRestore(store, key, { scratchParent: root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).exitCode).toBe(4);
    expect((err as Error).message).toMatch(/authentication failed/);
  }
  // a plain (unsealed) etcd snapshot put under the prefix is refused as well
  const plainKey = `${BACKUP_PREFIX}20261201T000100Z-plain.db`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: plainKey, Body: Buffer.from('not sealed') }));
  await expect(store.download(plainKey)).rejects.toThrow(/not an encrypted kube-platform object/);
  // the same through the built CLI (node mode): exit 4 for the tampered one, 0 for the original
  const node = ['--environment', 'bk-test', '--bucket', bucket, '--region', 'eu-west-1'];
  const bad = await cli(['etcd-restore', tamperedKey, '--dry-run', ...node], moto.env);
  expect(bad.code).toBe(4);
  expect(bad.stderr).toMatch(/authentication failed/);
  const good = await cli(['etcd-restore', snapshotKey, '--dry-run', '--json', ...node], moto.env);
  expect(good.code).toBe(0);
  expect(JSON.parse(good.stdout)).toMatchObject({ snapshot: snapshotKey, keys: 1000 });
  // the original is untouched and still restores
  await expect(dryRunRestore(store, snapshotKey, { scratchParent: root })).resolves.toMatchObject({
    keys: 1000,
  });
  await store.remove([tamperedKey, movedKey, plainKey]);
  expect((await store.list()).map((b) => b.key)).toEqual([snapshotKey]);
}, 120_000);

test('retention deletes every version of the expired snapshots and keeps the rest', async () => {
  const now = Date.parse('2026-12-01T00:00:00Z');
  const body = Buffer.from('x');
  // 3 snapshots in one hour two hours ago: only the first of the hour is kept
  for (const ageMin of [150, 140, 130]) {
    await store.upload(body, { member: 'm2', revision: 1 }, now - ageMin * 60_000);
  }
  const plan = await expireBackups(store, { nowMs: now, dryRun: true });
  expect(plan.delete).toHaveLength(2);
  expect((await store.list()).length).toBe(4); // a dry run deleted nothing
  await expireBackups(store, { nowMs: now });
  const left = (await store.list()).map((b) => b.key);
  expect(left).toContain(snapshotKey);
  expect(left).toContain('backups/etcd/20261130T213000.000Z-m2.db');
  expect(left).toHaveLength(2);
}, 60_000);

test('slot leases: the first claim wins, the second loses; leases older than a day are deleted', async () => {
  expect(await store.claimSlot('20261201T001500Z', 'etcd-a')).toBe(true);
  expect(await store.claimSlot('20261201T001500Z', 'etcd-b')).toBe(false);
  expect(await store.removeOldLeases(Date.now())).toBe(0);
  expect(await store.removeOldLeases(Date.now() + 2 * 86_400_000)).toBe(1);
  expect(await store.claimSlot('20261201T001500Z', 'etcd-c')).toBe(true);
}, 60_000);

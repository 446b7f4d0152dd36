import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sha256 } from '../../src/secrets/envelope.js';
import type { LocalFile } from '../../src/secrets/store.js';
import { bootstrapEnvironment } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';

const run = promisify(execFile);
const moto = useMoto();
const ENV = 'sync-test';
const CLI = path.resolve(import.meta.dirname, '..', '..', '..', 'scripts', 'kube-platform');

const pod = (name: string, extra = '') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: kube-system\nspec:\n  containers:\n  - name: ${name}\n    image: registry.k8s.io/${name}:v1.34.2\n${extra}`;

function file(p: string, text: string, mode = 0o600): LocalFile {
  const content = Buffer.from(text);
  return { path: p, content, sha256: sha256(content), size: content.length, mode };
}

const setup = () => bootstrapEnvironment(moto.endpoint, ENV);

async function sync(bucket: string, dest: string, root: string) {
  return run(
    process.execPath,
    [
      CLI,
      'manifest-sync',
      '--environment',
      ENV,
      '--bucket',
      bucket,
      '--region',
      'eu-west-1',
      '--layer',
      'secure',
      '--dest',
      dest,
      '--root',
      root,
      '--node-id',
      'node-a',
      '--once',
    ],
    { env: { ...process.env, ...moto.env } },
  ).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

test('manifest-sync --once writes verified files atomically, then converges and removes only its own files', async () => {
  const { aws, names, store } = await setup();
  const dest = await mkdtemp(path.join(os.tmpdir(), 'dest-'));
  const root = await mkdtemp(path.join(os.tmpdir(), 'root-'));
  const files = [
    file('manifests/etcd.yaml', pod('etcd')),
    file('manifests/kube-apiserver.yaml', pod('kube-apiserver')),
    file('pki/ca.crt', 'CA', 0o644),
  ];
  await store.publish('secure', files);

  const r1 = await sync(names.secretsBucket, dest, root);
  expect(r1.stderr).toMatch(/generation 1 applied \(3 written, 0 removed\)/);
  expect(r1.code).toBe(0);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toBe(pod('etcd'));
  expect(await readFile(path.join(root, 'pki', 'ca.crt'), 'utf8')).toBe('CA');
  expect((await stat(path.join(dest, 'etcd.yaml'))).mode & 0o777).toBe(0o600);
  expect((await stat(path.join(root, 'pki', 'ca.crt'))).mode & 0o777).toBe(0o644);
  const mtime = (await stat(path.join(dest, 'etcd.yaml'))).mtimeMs;

  // nothing changed: nothing written
  const r2 = await sync(names.secretsBucket, dest, root);
  expect(r2.code).toBe(0);
  expect((await stat(path.join(dest, 'etcd.yaml'))).mtimeMs).toBe(mtime);

  // a file the agent did not write is never removed; one it wrote and the index dropped is
  await writeFile(path.join(dest, 'operator-notes.yaml'), 'mine');
  await store.publish('secure', [files[0]!, files[2]!]);
  const r3 = await sync(names.secretsBucket, dest, root);
  expect(r3.stderr).toMatch(/generation 2 applied \(0 written, 1 removed\)/);
  await expect(stat(path.join(dest, 'kube-apiserver.yaml'))).rejects.toThrow();
  expect(await readFile(path.join(dest, 'operator-notes.yaml'), 'utf8')).toBe('mine');

  // an invalid manifest is refused (exit 4) and its last good version stays; the rest is applied
  await store.publish('secure', [
    file('manifests/etcd.yaml', 'kind: Deployment\n'),
    file('manifests/kube-scheduler.yaml', pod('kube-scheduler')),
    files[2]!,
  ]);
  const r4 = await sync(names.secretsBucket, dest, root);
  expect(r4.code).toBe(4);
  expect(r4.stderr).toMatch(/secure\/manifests\/etcd.yaml:1: kind: must be "Pod"/);
  expect(r4.stderr).toMatch(/generation 3 applied \(1 written, 0 removed, 1 refused\)/);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toBe(pod('etcd'));
  expect(await readFile(path.join(dest, 'kube-scheduler.yaml'), 'utf8')).toBe(pod('kube-scheduler'));
  // the pass reported it under its node id
  const reported = (await store.readStatuses('secure')).map((s) => s.json as Record<string, unknown>);
  expect(reported).toEqual([
    expect.objectContaining({
      node: 'node-a',
      generation: 3,
      error: null,
      fileErrors: [{ path: 'manifests/etcd.yaml', error: expect.stringContaining('kind: must be "Pod"') }],
    }),
  ]);
  aws.destroy();
});

test('the long-running agent: JSON log lines, a change applied while it runs, SIGTERM exits 0', async () => {
  const { aws, names, store } = await setup();
  const dest = await mkdtemp(path.join(os.tmpdir(), 'dest-'));
  await store.publish('secure', [file('manifests/etcd.yaml', pod('etcd'))]);
  const child = spawn(
    process.execPath,
    [
      CLI,
      'manifest-sync',
      '--environment',
      ENV,
      '--bucket',
      names.secretsBucket,
      '--region',
      'eu-west-1',
      '--dest',
      dest,
      '--node-id',
      'node-a',
      '--log-format',
      'json',
    ],
    { env: { ...process.env, ...moto.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 300 && !re.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toMatch(re);
  };
  await until(/generation 1 applied/);
  await store.publish('secure', [file('manifests/etcd.yaml', pod('etcd', '    args: ["--v=2"]\n'))]);
  await until(/generation 2 applied/);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toContain('--v=2');
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  const lines = stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { time: string; level: string; msg: string });
  expect(lines.map((l) => l.msg)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^manifest-sync: node node-a, layers secure, every 1 s, heartbeat 60 s$/),
      'layer secure: generation 2 applied (1 written, 0 removed)',
      'manifest-sync: stopped',
    ]),
  );
  expect(lines.every((l) => !Number.isNaN(Date.parse(l.time)) && l.level === 'info')).toBe(true);
  aws.destroy();
});

test('a generation lower than the one applied is refused as a rollback', async () => {
  const { aws, names, store } = await setup();
  const dest = await mkdtemp(path.join(os.tmpdir(), 'dest-'));
  await store.publish('secure', [file('manifests/etcd.yaml', pod('etcd'))]);
  await writeFile(
    path.join(dest, '.manifest-sync-secure.json'),
    JSON.stringify({ generation: 7, indexDigest: null, written: {} }),
  );
  const r = await sync(names.secretsBucket, dest, dest);
  expect(r.code).toBe(4);
  expect(r.stderr).toMatch(/generation 1 is older than the applied generation 7/);
  aws.destroy();
});

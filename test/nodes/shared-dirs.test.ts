import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exec } from '../../src/exec/index.js';
import { acquireSharedDirs, releaseSharedDirs } from './harness.js';

/**
 * Two node-test files may run at once (two jest workers): the mount points their hosts share
 * must outlive both. The first case shows why: a directory removed in this namespace loses the
 * bind mount made on it in another mount namespace.
 */
let work: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'kp-shared-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

test('rmdir of a mount point here detaches the bind mount in another mount namespace (what the registry prevents)', async () => {
  const src = path.join(work, 'src');
  const dst = path.join(work, 'dst');
  await mkdir(src);
  await mkdir(dst);
  await writeFile(path.join(src, 'f'), 'x');
  const script = `mount --bind ${src} ${dst}; while [ -d ${dst} ]; do sleep 0.05; done; cat ${dst}/f 2>/dev/null || echo gone`;
  const holder = exec('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    cwd: work,
    timeoutMs: 10_000,
  });
  await new Promise((r) => setTimeout(r, 300));
  await exec('rmdir', [dst], { cwd: work });
  expect((await holder).stdout.trim()).toBe('gone');
});

test('the shared directories are made by the first harness and removed by the last, not before', async () => {
  const at = {
    state: path.join(work, 'state'),
    dirs: [path.join(work, 'etc-kubernetes'), path.join(work, 'var-lib-etcd')],
  };
  const kept = path.join(work, 'was-there');
  await mkdir(kept);
  const withKept = { ...at, dirs: [...at.dirs, kept] };
  await acquireSharedDirs('a', withKept);
  await acquireSharedDirs('b', withKept);
  for (const d of withKept.dirs) expect([d, await exists(d)]).toEqual([d, true]);
  // the first harness out removes nothing: the other one's hosts still use them
  expect(await releaseSharedDirs('a', withKept)).toEqual([]);
  for (const d of withKept.dirs) expect([d, await exists(d)]).toEqual([d, true]);
  // the last one removes what was made, not what was there before
  expect((await releaseSharedDirs('b', withKept)).sort()).toEqual([...at.dirs].sort());
  for (const d of at.dirs) expect([d, await exists(d)]).toEqual([d, false]);
  expect(await exists(kept)).toBe(true);
  expect(await exists(at.state)).toBe(false);
});

test('a registration left by a process that died does not keep the directories', async () => {
  const at = { state: path.join(work, 'state'), dirs: [path.join(work, 'etc-kubernetes')] };
  await acquireSharedDirs('a', at);
  // a user file of a pid that is not running (pid_max is at most 2^22)
  await writeFile(path.join(at.state, 'users', `${2 ** 22 + 1}-dead`), '');
  expect(await releaseSharedDirs('a', at)).toEqual(at.dirs);
});

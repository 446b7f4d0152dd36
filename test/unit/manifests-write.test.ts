import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { ValidationError } from '../../src/errors.js';
import {
  manifestValues,
  type RenderedFile,
  renderToSecrets,
  renderTree,
  writeRendered,
} from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';

/** writeRendered / renderToSecrets against real temporary directories. */

const root = toolkitRoot();

async function playFiles(): Promise<RenderedFile[]> {
  const text = await readFile(path.join(root, 'environments', 'play.env'), 'utf8');
  const values = manifestValues(parseEnvironment('play-test', text, 'play.env'), FIXTURE_PKI);
  return renderTree(path.join(root, 'platform', 'manifests'), values);
}

/** Every entry under dir (files and directories), relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map((e) => e.split(path.sep).join('/')).sort();
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;

let secrets: string;
beforeEach(async () => {
  secrets = path.join(await mkdtemp(path.join(tmpdir(), 'kp-manifests-write-')), 'secrets');
});
afterEach(async () => {
  await rm(path.dirname(secrets), { recursive: true, force: true });
});

test('writes every file under secrets/<path>, files 0600, directories 0700, no temp files left', async () => {
  const files = await playFiles();
  const oldUmask = process.umask(0o022);
  try {
    const res = await writeRendered(secrets, files);
    expect(res.written).toEqual(files.map((f) => f.path));
    expect(res.unchanged).toEqual([]);
  } finally {
    process.umask(oldUmask);
  }
  for (const f of files) {
    const p = path.join(secrets, f.path);
    expect(await readFile(p, 'utf8')).toBe(f.content);
    expect(await mode(p)).toBe(0o600);
  }
  // every directory above a file: secure, secure/manifests, secure/addons/<component>...
  const dirs = new Set(
    files.flatMap((f) => {
      const parts = f.path.split('/').slice(0, -1);
      return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    }),
  );
  expect(dirs).toContain('secure/manifests');
  for (const d of ['', ...dirs]) expect(await mode(path.join(secrets, d))).toBe(0o700);
  expect(await tree(secrets)).toEqual([...dirs, ...files.map((f) => f.path)].sort());
});

test('the mode given is the mode on disk, whatever the umask', async () => {
  const oldUmask = process.umask(0o077);
  try {
    await writeRendered(secrets, [{ path: 'common/shared.yaml', content: 'a: b\n', mode: 0o640 }]);
  } finally {
    process.umask(oldUmask);
  }
  expect(await mode(path.join(secrets, 'common/shared.yaml'))).toBe(0o640);
});

test('a second write of the same files touches nothing: same mtimes, all unchanged', async () => {
  const files = await playFiles();
  await writeRendered(secrets, files);
  const past = new Date('2020-01-01T00:00:00Z');
  for (const f of files) await utimes(path.join(secrets, f.path), past, past);
  const res = await writeRendered(secrets, await playFiles());
  expect(res.written).toEqual([]);
  expect(res.unchanged).toEqual(files.map((f) => f.path));
  for (const f of files) {
    expect((await stat(path.join(secrets, f.path))).mtime.toISOString()).toBe(past.toISOString());
  }
});

test('only changed files are replaced; a changed file is replaced by rename (new inode), others keep theirs', async () => {
  const files = await playFiles();
  await writeRendered(secrets, files);
  const target = path.join(secrets, 'secure/manifests/kube-scheduler.yaml');
  const other = path.join(secrets, 'secure/manifests/etcd.yaml');
  const [inoTarget, inoOther] = [(await stat(target)).ino, (await stat(other)).ino];
  await writeFile(target, 'edited on disk\n');
  const res = await writeRendered(secrets, files);
  expect(res.written).toEqual(['secure/manifests/kube-scheduler.yaml']);
  expect(res.unchanged).toHaveLength(files.length - 1);
  expect(await readFile(target, 'utf8')).toBe(
    files.find((f) => f.path.endsWith('kube-scheduler.yaml'))!.content,
  );
  expect((await stat(target)).ino).not.toBe(inoTarget);
  expect((await stat(other)).ino).toBe(inoOther);
  expect((await readdir(path.dirname(target))).filter((n) => n.startsWith('.'))).toEqual([]);
});

test('loose modes on existing directories and unchanged files are tightened', async () => {
  const files = await playFiles();
  await writeRendered(secrets, files);
  await chmod(path.join(secrets, 'secure'), 0o755);
  await chmod(path.join(secrets, 'secure/audit-policy.yaml'), 0o644);
  const res = await writeRendered(secrets, files);
  expect(res.written).toEqual([]);
  expect(await mode(path.join(secrets, 'secure'))).toBe(0o700);
  expect(await mode(path.join(secrets, 'secure/audit-policy.yaml'))).toBe(0o600);
});

test('bad paths are refused before anything is written', async () => {
  const ok: RenderedFile = { path: 'common/ok.yaml', content: 'x\n', mode: 0o600 };
  for (const bad of [
    '../escape.yaml',
    '/etc/passwd',
    'public/x.yaml',
    'x.yaml',
    'secure/.hidden',
    'secure//x',
    'secure/./x',
  ]) {
    const err = await writeRendered(secrets, [ok, { path: bad, content: 'y\n', mode: 0o600 }]).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).exitCode).toBe(2);
    expect((err as Error).message).toContain(bad);
    await expect(stat(secrets)).rejects.toMatchObject({ code: 'ENOENT' });
  }
  const dup = await writeRendered(secrets, [ok, ok]).catch((e: unknown) => e);
  expect((dup as Error).message).toContain('listed twice');
  await expect(stat(secrets)).rejects.toMatchObject({ code: 'ENOENT' });
});

test('renderToSecrets writes nothing at all when one template fails, even beside good ones', async () => {
  const templates = path.join(path.dirname(secrets), 'templates');
  await mkdir(path.join(templates, 'common'), { recursive: true });
  await mkdir(path.join(templates, 'secure'), { recursive: true });
  // sorted first, renders fine
  await writeFile(
    path.join(templates, 'common', 'a.yaml.hbs'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{quote environment}}\n',
  );
  await writeFile(
    path.join(templates, 'secure', 'z.yaml.hbs'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{quote nodeName}}\n',
  );
  const text = await readFile(path.join(root, 'environments', 'play.env'), 'utf8');
  const values = manifestValues(parseEnvironment('play-test', text, 'play.env'), FIXTURE_PKI);
  const err = await renderToSecrets(templates, values, secrets).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ValidationError);
  expect((err as Error).message).toMatch(/secure\/z\.yaml\.hbs:4: /);
  await expect(stat(secrets)).rejects.toMatchObject({ code: 'ENOENT' });
  // once fixed, both are written
  await writeFile(
    path.join(templates, 'secure', 'z.yaml.hbs'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{quote kubeapiInternalName}}\n',
  );
  const res = await renderToSecrets(templates, values, secrets);
  expect(res.written).toEqual(['common/a.yaml', 'secure/z.yaml']);
});

import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { toolkitRoot } from '../../src/paths.js';
import { applyPki, ensurePki, pkiPlanFor, planPki } from '../../src/secrets/pki/index.js';

/** planPki writes nothing (files, directories, modes); applyPki writes exactly what it planned. */

const cfg = parseEnvironment(
  'play-pkiplan',
  await readFile(path.join(toolkitRoot(), 'environments', 'play.env'), 'utf8'),
  'play.env',
);

/** path → sha256 + mode of every file and directory under `root` (absent root = empty). */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    const entries = await readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const child = path.join(rel, e.name);
      const abs = path.join(root, child);
      const mode = ((await stat(abs)).mode & 0o777).toString(8);
      if (e.isDirectory()) {
        out[`${child}/`] = mode;
        await walk(child);
      } else
        out[child] = `${mode} ${createHash('sha256')
          .update(await readFile(abs))
          .digest('hex')}`;
    }
  };
  await walk('');
  return out;
}

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'kp-pki-plan-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('on a new environment the plan lists every file as missing and creates nothing, not even the root', async () => {
  const root = path.join(tmp, 'secrets');
  const changes = await planPki(root, pkiPlanFor(cfg));
  await expect(stat(root)).rejects.toThrow();
  expect(changes.writes.length).toBeGreaterThan(10);
  expect(new Set(changes.writes.map((w) => w.reason))).toEqual(new Set(['missing']));
  expect(changes.sshPublicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=* play-pkiplan\n$/);
  const result = await applyPki(changes);
  expect(result.created).toEqual(changes.writes.map((w) => w.path));
  const pub = await readFile(path.join(root, 'common', 'ssh', 'play-pkiplan.pub'), 'utf8');
  expect(pub).toBe(changes.sshPublicKey);
});

test('on a complete PKI with a loose mode the plan is empty and changes no mode; apply tightens it', async () => {
  const root = path.join(tmp, 'secrets');
  await ensurePki(root, pkiPlanFor(cfg));
  const key = path.join(root, 'locked', 'ssh', 'play-pkiplan');
  await chmod(key, 0o644);
  const before = await snapshot(root);
  const changes = await planPki(root, pkiPlanFor(cfg));
  expect(await snapshot(root)).toEqual(before);
  expect(changes.writes).toEqual([]);
  expect(changes.modeFixes).toEqual([{ path: 'locked/ssh/play-pkiplan', mode: 0o644 }]);
  await applyPki(changes);
  expect((await stat(key)).mode & 0o777).toBe(0o600);
});

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { UserError, ValidationError } from '../../src/errors.js';
import {
  manifestValues,
  RENDERED_FILE_MODE,
  renderToSecrets,
  renderTree,
} from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';

/**
 * Fixture cases: every folder under test/fixtures/manifests/ is a test. A case holds
 * `templates/` (a template tree), `expect.json`, and for a success case `expected/` (the
 * rendered tree, byte for byte).
 *
 * expect.json: { description, error?: { file, line?, contains: string[] } } — `file` is the
 * failing template relative to templates/, `line` its 1-based line.
 */

interface Expectation {
  description: string;
  error?: { file: string; line?: number; contains: string[] };
}

const root = toolkitRoot();
const fixturesDir = path.join(root, 'test', 'fixtures', 'manifests');
const cases = (await readdir(fixturesDir, { withFileTypes: true }))
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

async function values() {
  const text = await readFile(path.join(root, 'environments', 'play.env'), 'utf8');
  return manifestValues(parseEnvironment('play-test', text, 'play.env'), FIXTURE_PKI);
}

async function listTree(dir: string, rel = ''): Promise<string[]> {
  const entries = await readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listTree(dir, child)));
    else out.push(child);
  }
  return out.sort();
}

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'kp-manifests-fixture-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('there are fixture cases of both kinds', async () => {
  const kinds = await Promise.all(
    cases.map(async (c) => {
      const e = JSON.parse(await readFile(path.join(fixturesDir, c, 'expect.json'), 'utf8')) as Expectation;
      return e.error ? 'error' : 'ok';
    }),
  );
  expect(kinds).toContain('error');
  expect(kinds).toContain('ok');
});

describe.each(cases)('fixture %s', (name) => {
  const caseDir = path.join(fixturesDir, name);
  const templates = path.join(caseDir, 'templates');

  test('renders as expect.json says', async () => {
    const expectation = JSON.parse(await readFile(path.join(caseDir, 'expect.json'), 'utf8')) as Expectation;
    const v = await values();
    if (expectation.error) {
      const want = expectation.error;
      const err = await renderTree(templates, v).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ValidationError);
      expect(err).toBeInstanceOf(UserError);
      const ve = err as ValidationError;
      expect(ve.exitCode).toBe(2);
      const problem = ve.problems.find((p) => p.file.endsWith(`templates/${want.file}`));
      expect(problem).toBeDefined();
      if (want.line !== undefined) {
        expect(problem!.line).toBe(want.line);
        // the operator reads file:line in the message itself
        expect(ve.message).toContain(`templates/${want.file}:${want.line}:`);
      }
      for (const text of want.contains) expect(problem!.message).toContain(text);
      // nothing at all is written when any template fails
      await expect(renderToSecrets(templates, v, tmp)).rejects.toBeInstanceOf(ValidationError);
      expect(await listTree(tmp)).toEqual([]);
    } else {
      const files = await renderTree(templates, v);
      const expectedDir = path.join(caseDir, 'expected');
      const expectedPaths = await listTree(expectedDir);
      expect(files.map((f) => f.path)).toEqual(expectedPaths);
      for (const f of files) {
        expect(f.mode).toBe(RENDERED_FILE_MODE);
        expect(f.content).toBe(await readFile(path.join(expectedDir, f.path), 'utf8'));
      }
      // deterministic: a second render gives the same bytes
      expect(await renderTree(templates, v)).toEqual(files);
    }
  });
});

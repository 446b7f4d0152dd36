import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringify as toYaml } from 'yaml';
import { bootstrapView } from '../../src/aws/bootstrap.js';
import { parseEnvironment } from '../../src/config/load.js';
import { bootstrapNames } from '../../src/config/topology.js';
import { manifestValues, renderTree } from '../../src/manifests/index.js';
import { manifestsTemplateDir, toolkitRoot } from '../../src/paths.js';
import {
  evaluatePolicy,
  nodeFilesOf,
  type PolicyFile,
  type PolicyInput,
  planView,
  RULES,
} from '../../src/policy/index.js';
import { apiServiceTlsProblems } from '../../src/policy/rules/kubernetes.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';

/**
 * Fixture cases: test/fixtures/policy/<rule id>/{fail,pass}/ — every rule has both, and a
 * new folder is a new test. A case starts from a compliant base (environments/example-prod.env,
 * the real templates rendered for it, the bootstrap's own settings) and replaces parts of it:
 * - case.json: { description, env?: {KEY: value | "" to drop}, modes?: {"files/<path>" |
 *   "nodes/<template>/<path>": "0644"}, attribute?: the attribute a fail case must name }
 * - plan.json: a `terraform show -json` plan (resource_changes);
 * - files/<layer>/<path>: rendered files replaced or added;
 * - nodes/<template>/<path>: node files, shipped as the user data (gzip + base64 of a
 *   #cloud-config with write_files, mode 0600 unless modes says) of a launch template
 *   named <template> in the plan, so the real decoder reads them;
 * - bootstrap.json: the KMS key and buckets as bootstrap leaves them.
 * The case's rule alone is evaluated; a fail case must fail it (naming `attribute`), a pass
 * case must pass it (not "not evaluated").
 */

const root = toolkitRoot();
const fixturesDir = path.join(root, 'test', 'fixtures', 'policy');
const baseEnvText = await readFile(path.join(root, 'environments', 'example-prod.env'), 'utf8');

interface CaseFile {
  description: string;
  env?: Record<string, string>;
  modes?: Record<string, string>;
  attribute?: string;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

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

function envText(overrides: Record<string, string> = {}): string {
  let text = baseEnvText;
  for (const [key, value] of Object.entries(overrides)) {
    const re = new RegExp(`^${key}=.*\\n`, 'm');
    const line = value === '' ? '' : `${key}=${value}\n`;
    text = re.test(text) ? text.replace(re, line) : `${text}${line}`;
  }
  return text;
}

async function loadCase(dir: string): Promise<{ c: CaseFile; input: PolicyInput }> {
  const c = JSON.parse(await readFile(path.join(dir, 'case.json'), 'utf8')) as CaseFile;
  const env = parseEnvironment('example-prod', envText(c.env), 'environments/example-prod.env');
  const rendered = await renderTree(manifestsTemplateDir(), manifestValues(env, FIXTURE_PKI));
  const byPath = new Map<string, PolicyFile>(rendered.map((f) => [f.path, f]));
  for (const rel of await listTree(path.join(dir, 'files'))) {
    byPath.set(rel, {
      path: rel,
      content: await readFile(path.join(dir, 'files', rel), 'utf8'),
      mode: 0o600,
    });
  }
  for (const [key, mode] of Object.entries(c.modes ?? {})) {
    if (!key.startsWith('files/') && !key.startsWith('nodes/')) {
      const f = byPath.get(key);
      if (!f) throw new Error(`${dir}: modes names ${key}, which is not rendered`);
      byPath.set(key, { ...f, mode: Number.parseInt(mode, 8) });
    }
  }
  const input: PolicyInput = {
    env,
    manifests: [...byPath.values()],
    bootstrap: (await exists(path.join(dir, 'bootstrap.json')))
      ? JSON.parse(await readFile(path.join(dir, 'bootstrap.json'), 'utf8'))
      : bootstrapView(bootstrapNames(env, '123456789012')),
  };
  const planFile = path.join(dir, 'plan.json');
  const nodeDir = path.join(dir, 'nodes');
  const hasPlan = await exists(planFile);
  const hasNodes = await exists(nodeDir);
  if (hasPlan || hasNodes) {
    const json = hasPlan
      ? (JSON.parse(await readFile(planFile, 'utf8')) as { resource_changes?: unknown[] })
      : { format_version: '1.2', resource_changes: [] as unknown[] };
    json.resource_changes ??= [];
    for (const template of hasNodes ? await readdir(nodeDir) : []) {
      const files = [];
      for (const rel of await listTree(path.join(nodeDir, template))) {
        files.push({
          path: `/${rel}`,
          permissions: c.modes?.[`nodes/${template}/${rel}`] ?? '0600',
          content: await readFile(path.join(nodeDir, template, rel), 'utf8'),
        });
      }
      const userData = gzipSync(`#cloud-config\n${toYaml({ write_files: files })}`).toString('base64');
      json.resource_changes.push({
        address: `module.launch_template["${template}"].aws_launch_template.this`,
        mode: 'managed',
        type: 'aws_launch_template',
        change: { actions: ['create'], before: null, after: { name: template, user_data: userData } },
      });
    }
    const plan = planView(json, planFile);
    input.plan = plan;
    input.nodes = nodeFilesOf(plan);
  }
  return { c, input };
}

const ruleDirs = (await readdir(fixturesDir, { withFileTypes: true }))
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

test('at least 25 rules, unique ids, each with rationale and standard', () => {
  expect(RULES.length).toBeGreaterThanOrEqual(25);
  expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  for (const r of RULES) {
    expect(r.rationale.length).toBeGreaterThan(20);
    expect(r.standard).not.toBe('');
  }
});

test('every rule has a fail and a pass fixture, and every fixture folder names a rule', async () => {
  expect(ruleDirs).toEqual(RULES.map((r) => r.id).sort());
  for (const id of ruleDirs) {
    expect(await exists(path.join(fixturesDir, id, 'fail', 'case.json'))).toBe(true);
    expect(await exists(path.join(fixturesDir, id, 'pass', 'case.json'))).toBe(true);
  }
});

describe.each(ruleDirs)('rule %s', (id) => {
  const rule = RULES.find((r) => r.id === id)!;

  test('fails its fail fixture, naming resource and attribute', async () => {
    const { c, input } = await loadCase(path.join(fixturesDir, id, 'fail'));
    const report = evaluatePolicy(input, { rules: [rule] });
    const r = report.results[0]!;
    expect({ id: r.id, status: r.status }).toEqual({ id, status: 'fail' });
    expect(r.findings.length).toBeGreaterThan(0);
    for (const f of r.findings) expect(f.resource).not.toBe('');
    if (c.attribute) expect(r.findings.map((f) => f.attribute)).toContain(c.attribute);
    expect(report.blocking).toBe(true);
  });

  test('passes its pass fixture', async () => {
    const { input } = await loadCase(path.join(fixturesDir, id, 'pass'));
    const r = evaluatePolicy(input, { rules: [rule] }).results[0]!;
    expect({ status: r.status, findings: r.findings }).toEqual({ status: 'pass', findings: [] });
  });
});

describe('kp-apiservice-tls-verified beyond its fixtures (apiServiceTlsProblems)', () => {
  const service = { name: 'metrics-server', namespace: 'kube-system' };
  const b64 = (t: string) => Buffer.from(t).toString('base64');
  test('a caBundle of the CA passes; a local APIService (no service) needs none', () => {
    expect(apiServiceTlsProblems({ service, caBundle: b64(FIXTURE_PKI.kubernetesCaPem) })).toEqual([]);
    expect(apiServiceTlsProblems({ group: 'apps', version: 'v1' })).toEqual([]);
  });
  test('garbage, a leaf certificate, an empty bundle and insecureSkipTLSVerify with a bundle fail', async () => {
    const leaf = await readFile(
      path.join(root, 'test', 'fixtures', 'pki', 'metrics-server-leaf.crt'),
      'utf8',
    );
    const attrs = (spec: Record<string, unknown>) => apiServiceTlsProblems(spec).map((p) => p.attribute);
    expect(attrs({ service, caBundle: 'not base64!' })).toEqual(['spec.caBundle']);
    expect(attrs({ service, caBundle: b64('hello') })).toEqual(['spec.caBundle']);
    expect(attrs({ service, caBundle: b64(leaf) })).toEqual(['spec.caBundle']);
    expect(attrs({ service, caBundle: '' })).toEqual(['spec.caBundle']);
    expect(
      attrs({ service, caBundle: b64(FIXTURE_PKI.kubernetesCaPem), insecureSkipTLSVerify: true }),
    ).toEqual(['spec.insecureSkipTLSVerify']);
  });
});

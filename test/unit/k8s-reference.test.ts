import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { manifestValues, renderTree } from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';
import { checkFile, formatFinding, loadReference } from '../helpers/k8s-reference.js';

/**
 * Flags and fields against Kubernetes v1.34 (issue 9 item 5): every flag of every rendered
 * container whose binary has a flag list in test/reference/k8s-v1.34/ (kube-apiserver,
 * kube-controller-manager, kube-scheduler, and whatever list is added there), and every field
 * of every configuration document with a field list, must exist, not be deprecated (unless
 * the file says why) and carry a value of its type. The kubelet configurations, rendered by
 * terraform into the user data, are checked the same way in
 * test/integration/cloud-init.test.ts.
 *
 * Fixture cases: every folder under test/fixtures/k8s-reference/ is a test: `manifest.yaml`
 * and `expect.json` ({ description, findings: string[], unchecked?: string[] }).
 */

const root = toolkitRoot();
const ref = loadReference();
const fixtures = path.join(root, 'test', 'fixtures', 'k8s-reference');

test('the reference folder holds the flags of the control plane and the kubelet configuration fields', () => {
  for (const binary of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet'])
    expect([binary, (ref.flags.get(binary)?.size ?? 0) > 0]).toEqual([binary, true]);
  expect(ref.flags.get('kube-apiserver')!.size).toBeGreaterThan(100);
  expect(ref.configs.get('kubelet.config.k8s.io/v1beta1 KubeletConfiguration')!.size).toBeGreaterThan(100);
  expect(ref.flags.get('kube-scheduler')!.get('kubeconfig')?.deprecated).toBe(true);
});

describe('the rendered manifests of play.env', () => {
  test('every flag and field is known to v1.34, typed right, and no deprecated one is unexplained', async () => {
    const cfg = parseEnvironment(
      'play-test',
      readFileSync(path.join(root, 'environments', 'play.env'), 'utf8'),
      'play.env',
    );
    const files = await renderTree(
      path.join(root, 'platform', 'manifests'),
      manifestValues(cfg, FIXTURE_PKI),
    );
    const findings: string[] = [];
    const checked: string[] = [];
    const unchecked: string[] = [];
    for (const f of files.filter((f) => /\.ya?ml$/.test(f.path))) {
      const r = checkFile(ref, `platform/manifests/${f.path}`, f.content);
      findings.push(...r.findings.map(formatFinding));
      checked.push(...r.checked);
      unchecked.push(...r.unchecked);
    }
    process.stderr.write(`checked against k8s-v1.34: ${[...new Set(checked)].sort().join(', ')}\n`);
    process.stderr.write(`no reference list (not checked): ${unchecked.join('; ') || 'none'}\n`);
    expect(findings).toEqual([]);
    // not vacuous: the three control-plane binaries were found and checked
    for (const binary of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'])
      expect(checked).toContain(binary);
  });
});

const cases = readdirSync(fixtures, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

test('there are failing and passing fixture cases', () => {
  const expectations = cases.map(
    (c) => JSON.parse(readFileSync(path.join(fixtures, c, 'expect.json'), 'utf8')) as { findings: string[] },
  );
  expect(expectations.some((e) => e.findings.length === 0)).toBe(true);
  expect(expectations.some((e) => e.findings.length > 0)).toBe(true);
});

describe.each(cases)('fixture %s', (name) => {
  test('reports exactly the expected findings', () => {
    const dir = path.join(fixtures, name);
    const want = JSON.parse(readFileSync(path.join(dir, 'expect.json'), 'utf8')) as {
      findings: string[];
      unchecked?: string[];
    };
    const r = checkFile(ref, 'manifest.yaml', readFileSync(path.join(dir, 'manifest.yaml'), 'utf8'));
    expect(r.findings.map(formatFinding)).toEqual(want.findings);
    if (want.unchecked) expect(r.unchecked).toEqual(want.unchecked);
    expect(r.checked.length).toBeGreaterThan(0);
  });
});

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KUBERNETES_SCHEMA_VERSION, ManifestError, validateStaticPod } from '../../src/agent/validate.js';
import { parseEnvironment } from '../../src/config/load.js';
import { IntegrityError } from '../../src/errors.js';
import { isStaticPodPath, manifestValues, renderTree } from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';

const WHAT = 'secure/manifests/etcd.yaml';

/** The problems validateStaticPod reports for `text`, as `line: field: message` strings. */
function problems(text: string): string[] {
  try {
    validateStaticPod(Buffer.from(text), WHAT);
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    expect(e).toBeInstanceOf(IntegrityError);
    return (e as ManifestError).problems.map((p) => `${p.line ?? '-'}: ${p.field}: ${p.message}`);
  }
}

const pod = (spec: string, meta = '  name: etcd\n') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n${meta}spec:\n${spec}`;
const container = '  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.6.5-0\n';

test('the schema is the pinned release', () => {
  expect(KUBERNETES_SCHEMA_VERSION).toBe('v1.34.0');
});

test('the control-plane static pods the toolkit renders are valid against the strict schema', async () => {
  const root = toolkitRoot();
  const text = await readFile(path.join(root, 'environments', 'play.env'), 'utf8');
  const cfg = parseEnvironment('play-test', text, 'play.env');
  const files = (
    await renderTree(path.join(root, 'platform', 'manifests'), manifestValues(cfg, FIXTURE_PKI))
  ).filter((f) => isStaticPodPath(f.path));
  expect(files.map((f) => path.basename(f.path)).sort()).toEqual([
    'etcd.yaml',
    'kube-apiserver.yaml',
    'kube-controller-manager.yaml',
    'kube-scheduler.yaml',
  ]);
  for (const f of files) expect(problems(f.content)).toEqual([]);
});

test('fields of the pinned release are accepted: 1.34 additions, Quantity as number, int-or-string, null', () => {
  expect(
    problems(
      pod(
        `  hostnameOverride: etcd-0\n${container}    restartPolicyRules: []\n` +
          '    resources:\n      requests: {cpu: 1, memory: 100Mi}\n      limits: {cpu: "0.5"}\n' +
          '    livenessProbe:\n      httpGet: {port: probe, path: /health}\n' +
          '    readinessProbe:\n      httpGet: {port: 2381, path: /readyz}\n',
        '  name: etcd\n  creationTimestamp: null\n  labels: {tier: control-plane}\n',
      ),
    ),
  ).toEqual([]);
});

test('unknown fields are errors, named with their line, also those of later releases', () => {
  expect(problems(pod(`${container}    imagePullPolicey: Always\n`))).toEqual([
    '9: spec.containers[0].imagePullPolicey: unknown field (not in core/v1 Pod v1.34.0)',
  ]);
  // PodSpec.schedulingGroup came after 1.34: a kubelet of the pinned release would drop it
  expect(problems(pod(`  schedulingGroup: {}\n${container}`))).toEqual([
    '6: spec.schedulingGroup: unknown field (not in core/v1 Pod v1.34.0)',
  ]);
  expect(problems(pod(container, '  name: etcd\n  lables: {a: b}\n'))).toEqual([
    '5: metadata.lables: unknown field (not in core/v1 Pod v1.34.0)',
  ]);
});

test('wrong types, missing required fields and every problem at once', () => {
  expect(
    problems(
      pod(`${container}    ports:\n    - containerPort: "2379"\n    - name: peer\n  hostNetwork: "true"\n`),
    ),
  ).toEqual([
    '10: spec.containers[0].ports[0].containerPort: must be integer',
    '11: spec.containers[0].ports[1]: missing required field "containerPort"',
    '12: spec.hostNetwork: must be boolean',
  ]);
  expect(problems(pod('  containers:\n  - image: x\n'))).toEqual([
    '7: spec.containers[0]: missing required field "name"',
  ]);
});

test('a static pod must be one v1 Pod document with a name', () => {
  expect(problems('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n')).toEqual([
    '1: apiVersion: must be "v1"',
    '2: kind: must be "Pod"',
    '4: spec: missing required field "containers"',
  ]);
  expect(problems(pod(container, '  namespace: kube-system\n'))).toEqual([
    '-: metadata.name: a static pod needs a name',
  ]);
  expect(problems(`${pod(container)}---\n${pod(container)}`)).toEqual([
    '-: : expected one YAML document, found 2',
  ]);
  expect(problems('apiVersion: v1\napiVersion: v1\n')).toEqual([
    '2: : invalid YAML: Map keys must be unique',
  ]);
  expect(problems('spec: [\n')[0]).toMatch(/^\d: : invalid YAML: /);
});

test('the message names the file, line and field', () => {
  expect(() => validateStaticPod(Buffer.from(pod(`${container}    bogus: 1\n`)), WHAT)).toThrow(
    'secure/manifests/etcd.yaml:9: spec.containers[0].bogus: unknown field (not in core/v1 Pod v1.34.0)',
  );
});

test('the precompiled validator is the schema: it agrees with Ajv compiling POD_SCHEMA now', async () => {
  const { Ajv } = await import('ajv');
  const { POD_SCHEMA } = await import('../../src/agent/schema/pod-v1.34.js');
  const { validate: precompiled } = (await import(
    '../../src/generated/pod-v1.34.validate.js'
  )) as unknown as {
    validate: ((d: unknown) => boolean) & { errors?: unknown[] | null };
  };
  const fresh = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true }).compile(POD_SCHEMA);
  const base = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'etcd', labels: { a: 'b' } },
    spec: {
      hostNetwork: true,
      containers: [
        { name: 'etcd', image: 'x', ports: [{ containerPort: 2379 }], resources: { requests: { cpu: 1 } } },
      ],
      volumes: [{ name: 'data', hostPath: { path: '/var/lib/etcd', type: 'DirectoryOrCreate' } }],
    },
  };
  const corpus: unknown[] = [
    base,
    { ...base, bogus: 1 },
    { ...base, kind: 'Deployment' },
    { ...base, spec: { ...base.spec, hostNetwork: 'yes' } },
    { ...base, spec: { ...base.spec, containers: [{ image: 'x' }] } },
    { ...base, spec: { ...base.spec, volumes: [{ name: 'v', hostPath: { path: '/x', typo: 1 } }] } },
    { ...base, metadata: { name: 'x', labels: { a: 1 } } },
    {
      ...base,
      spec: { ...base.spec, containers: [{ name: 'a', livenessProbe: { httpGet: { port: 'http' } } }] },
    },
    {
      ...base,
      spec: { ...base.spec, containers: [{ name: 'a', livenessProbe: { httpGet: { port: 1.5 } } }] },
    },
    [],
    'text',
  ];
  for (const doc of corpus) {
    expect(precompiled(doc)).toBe(fresh(doc));
    expect(precompiled.errors ?? null).toEqual(fresh.errors ?? null);
  }
  expect(corpus.filter((d) => fresh(d))).toHaveLength(2); // base, and a named probe port
});

import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseEnvironment } from '../../src/config/load.js';
import { exec } from '../../src/exec/index.js';
import { setLogSink } from '../../src/log.js';
import { manifestValues, renderTree } from '../../src/manifests/index.js';
import { manifestsTemplateDir, toolkitRoot } from '../../src/paths.js';
import { ensurePki, pkiPlanFor } from '../../src/secrets/pki/index.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';
import { type ApplyDouble, KINDS, startApplyDouble } from '../helpers/kube-apply-double.js';
import { renderUserData } from '../helpers/user-data.js';

/**
 * Add-ons are pruned (issue 15): the masters' kp-addons script, as terraform renders it, run
 * with the real kubectl against an API server double (test/helpers/kube-apply-double.ts) on
 * the real rendered add-ons of play.env. The first apply creates every add-on in the ApplySet
 * addonsets.kube-platform.io/kube-platform-addons; removing an add-on file (as manifest-sync does
 * when it leaves platform/manifests) makes the next apply delete exactly that object, kind
 * and name; objects created outside the set are never touched.
 */

const root = toolkitRoot();
const work = mkdtempSync(path.join(os.tmpdir(), 'kubectl-applyset-'));
const etc = path.join(work, 'etc-kubernetes');
const addons = path.join(etc, 'addons');
const stateFile = path.join(work, 'manifest-sync-secure.json');
let script: string;
let api: ApplyDouble;
let restoreLog: () => void;
/** rendered add-ons: path under addons/ → text */
const rendered = new Map<string, string>();

/** The collection path of an object (what kubectl DELETEs), from its kind, namespace and name. */
function pathOf(obj: { kind: string; metadata: { name: string; namespace?: string } }): string {
  const k = KINDS[obj.kind]!;
  const base = k.gv === 'v1' ? '/api/v1' : `/apis/${k.gv}`;
  const ns = k.namespaced ? `/namespaces/${obj.metadata.namespace}` : '';
  return `${base}${ns}/${k.resource}/${obj.metadata.name}`;
}

/** Writes manifest-sync's state for the files now in addons/ (an error-free pass). */
async function syncState(): Promise<void> {
  const written: Record<string, string> = {};
  for (const [rel, text] of rendered)
    written[path.join(addons, rel)] = createHash('sha256').update(text).digest('hex');
  await writeFile(
    stateFile,
    JSON.stringify({ generation: 1, indexDigest: 'd', written, fileErrors: [], appliedAt: 'now' }),
  );
}

async function removeAddon(
  rel: string,
): Promise<{ kind: string; metadata: { name: string; namespace?: string } }> {
  const obj = parseYaml(rendered.get(rel)!) as {
    kind: string;
    metadata: { name: string; namespace?: string };
  };
  await rm(path.join(addons, rel));
  rendered.delete(rel);
  await syncState();
  return obj;
}

const run = () => exec(script, [], { cwd: work, env: { HOME: work }, reject: false, timeoutMs: 120_000 });

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  api = await startApplyDouble();
  const { userData } = await renderUserData(work);
  const master = parseYaml(userData.masters) as { write_files: { path: string; content: string }[] };
  const shipped = master.write_files.find((f) => f.path === '/usr/local/sbin/kp-addons')!.content;
  script = path.join(work, 'kp-addons');
  await writeFile(
    script,
    shipped
      .replace('k=/etc/kubernetes\n', `k=${etc}\n`)
      .replace('state=/var/lib/kube-platform/manifest-sync-secure.json\n', `state=${stateFile}\n`)
      .replace('node_name=/run/kp-kubelet/node-name\n', `node_name=${work}/no-node-name\n`)
      .replace('--cache-dir=/var/cache/kp-addons', `--cache-dir=${work}/kubectl-cache`),
    { mode: 0o755 },
  );
  const cfg = parseEnvironment(
    'play-applyset',
    await readFile(path.join(root, 'environments', 'play.env'), 'utf8'),
    'environments/play.env',
  );
  for (const f of await renderTree(manifestsTemplateDir(), manifestValues(cfg, FIXTURE_PKI))) {
    if (!f.path.startsWith('secure/addons/')) continue;
    const rel = f.path.slice('secure/addons/'.length);
    await mkdir(path.dirname(path.join(addons, rel)), { recursive: true });
    await writeFile(path.join(addons, rel), f.content);
    rendered.set(rel, f.content);
  }
  await writeFile(path.join(etc, 'addons.conf'), await readFile(api.kubeconfig(work), 'utf8'));
  // metrics-server's serving certificate and key from the PKI step, as manifest-sync puts them
  const secrets = path.join(work, 'secrets');
  await ensurePki(secrets, pkiPlanFor(cfg));
  await mkdir(path.join(etc, 'pki'), { recursive: true });
  for (const f of ['metrics-server.crt', 'metrics-server.key'])
    await writeFile(path.join(etc, 'pki', f), await readFile(path.join(secrets, 'secure', 'pki', f)));
  await syncState();
  // objects the platform did not create
  api.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'operator-notes', namespace: 'kube-system' },
  });
  api.put({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'team-a:reader', labels: { 'app.kubernetes.io/managed-by': 'someone-else' } },
  });
}, 120_000);

afterAll(async () => {
  restoreLog();
  await api?.close();
  await rm(work, { recursive: true, force: true });
});

const deletes = () => api.writes.filter((w) => w.startsWith('DELETE '));

test('the first apply creates every add-on, each labelled with the ApplySet, and the ApplySet parent', async () => {
  const r = await run();
  expect([r.exitCode, r.exitCode === 0 ? '' : `${r.stderr}`]).toEqual([0, '']);
  const parent = api.get('AddonSet', 'kube-platform-addons')!;
  expect(parent).toBeDefined();
  const id = parent.metadata.labels?.['applyset.kubernetes.io/id'];
  expect(id).toMatch(/^applyset-.+-v1$/);
  for (const text of rendered.values()) {
    const obj = parseYaml(text) as { kind: string; metadata: { name: string; namespace?: string } };
    const live = api.get(obj.kind, obj.metadata.name, obj.metadata.namespace);
    expect([obj.kind, obj.metadata.name, live?.metadata.labels?.['applyset.kubernetes.io/part-of']]).toEqual([
      obj.kind,
      obj.metadata.name,
      id,
    ]);
  }
  expect(deletes()).toEqual([]);
  // metrics-server's Secret, made by kp-addons from /etc/kubernetes/pki, is in the set too
  const secret = api.get('Secret', 'metrics-server-serving-cert', 'kube-system') as unknown as {
    metadata: { labels?: Record<string, string> };
    data: Record<string, string>;
  };
  expect(secret.metadata.labels?.['applyset.kubernetes.io/part-of']).toBe(id);
  expect(Buffer.from(secret.data['tls.crt']!, 'base64').toString()).toBe(
    await readFile(path.join(etc, 'pki', 'metrics-server.crt'), 'utf8'),
  );
}, 120_000);

test('removing one add-on file prunes exactly that object (kind and name); others are untouched', async () => {
  const gone = await removeAddon('metrics-server/service.yaml');
  api.writes.length = 0;
  const r = await run();
  expect([r.exitCode, r.exitCode === 0 ? '' : r.stderr]).toEqual([0, '']);
  expect(deletes()).toEqual([`DELETE ${pathOf(gone)}`]);
  expect(deletes()).toEqual(['DELETE /api/v1/namespaces/kube-system/services/metrics-server']);
  expect(api.get('Service', 'metrics-server', 'kube-system')).toBeUndefined();
  expect(api.get('Deployment', 'metrics-server', 'kube-system')).toBeDefined();
  expect(api.get('ConfigMap', 'operator-notes', 'kube-system')).toBeDefined();
  expect(api.get('ClusterRole', 'team-a:reader')).toBeDefined();
}, 120_000);

test('disabling an add-on (its folder removed) prunes all of its objects and nothing else', async () => {
  const removed: string[] = [];
  for (const rel of [...rendered.keys()].filter((r) => r.startsWith('metrics-server/')))
    removed.push(`DELETE ${pathOf(await removeAddon(rel))}`);
  expect(removed.length).toBe(8);
  // and the Secret kp-addons made for it: no longer passed, pruned with the add-on
  removed.push('DELETE /api/v1/namespaces/kube-system/secrets/metrics-server-serving-cert');
  api.writes.length = 0;
  const before = api.keys().length;
  const r = await run();
  expect(r.exitCode).toBe(0);
  expect(deletes().sort()).toEqual(removed.sort());
  expect(api.keys().length).toBe(before - 9);
  expect(api.get('ConfigMap', 'operator-notes', 'kube-system')).toBeDefined();
  expect(api.get('DaemonSet', 'aws-cloud-controller-manager', 'kube-system')).toBeDefined();
}, 120_000);

test('while the directory is not what manifest-sync applied, nothing is pruned', async () => {
  const rel = 'aws-ebs-csi-driver/storage-class-gp3.yaml';
  await rm(path.join(addons, rel)); // gone from disk, but the state still lists it: a pass in progress
  api.writes.length = 0;
  const r = await run();
  expect(r.exitCode).toBe(0);
  expect(r.stderr).toContain('kp-addons: not pruning:');
  expect(deletes()).toEqual([]);
  expect(api.get('StorageClass', 'gp3')).toBeDefined();
}, 120_000);

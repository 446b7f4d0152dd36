import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { ConflictError } from '../../src/errors.js';
import { manifestValues, renderTree } from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { assertNoUpgradeInProgress, heldByOther, PHASES, type Phase } from '../../src/upgrade/phases.js';
import { PHASE_FILES, setEnvKeys, stagedValues, versionsAfter } from '../../src/upgrade/stage.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';

/**
 * How `upgrade --to` brings the target version to the rendered manifests
 * (src/upgrade/stage.ts): per phase, which component has which version (the skew policy's
 * upgrade order), and that rendering a phase changes exactly that phase's files.
 */
const from = { kubernetes: 'v1.34.2', etcd: 'v3.6.4' };
const to = { kubernetes: 'v1.35.0', etcd: 'v3.6.5' };

test.each<[Phase | null, string, string, string, string]>([
  // phase, etcd, kube-apiserver, controller-manager/scheduler/kube-proxy, kubelet
  [null, 'v3.6.4', 'v1.34.2', 'v1.34.2', 'v1.34.2'],
  ['preflight', 'v3.6.4', 'v1.34.2', 'v1.34.2', 'v1.34.2'],
  ['snapshot', 'v3.6.4', 'v1.34.2', 'v1.34.2', 'v1.34.2'],
  ['etcd', 'v3.6.5', 'v1.34.2', 'v1.34.2', 'v1.34.2'],
  ['apiservers', 'v3.6.5', 'v1.35.0', 'v1.34.2', 'v1.34.2'],
  ['validate-apiservers', 'v3.6.5', 'v1.35.0', 'v1.34.2', 'v1.34.2'],
  ['controllers', 'v3.6.5', 'v1.35.0', 'v1.35.0', 'v1.34.2'],
  ['validate-controllers', 'v3.6.5', 'v1.35.0', 'v1.35.0', 'v1.34.2'],
  ['workers', 'v3.6.5', 'v1.35.0', 'v1.35.0', 'v1.35.0'],
  ['validate-workers', 'v3.6.5', 'v1.35.0', 'v1.35.0', 'v1.35.0'],
])('after %s: etcd %s, API server %s, controllers %s, kubelet %s', (phase, etcd, api, ctl, kubelet) => {
  expect(versionsAfter(phase, from, to)).toEqual({
    etcd,
    'kube-apiserver': api,
    'kube-controller-manager': ctl,
    'kube-scheduler': ctl,
    'kube-proxy': ctl,
    kubelet,
  });
});

test('controller-manager and scheduler are never newer than the API server at any phase', () => {
  for (const p of PHASES) {
    const v = versionsAfter(p, from, to);
    expect(v['kube-controller-manager'] <= v['kube-apiserver']).toBe(true);
    expect(v.kubelet <= v['kube-apiserver']).toBe(true);
  }
});

test('each control-plane phase renders a change of exactly its own files, and only their images', async () => {
  const root = toolkitRoot();
  const cfg = parseEnvironment(
    'play-test',
    await readFile(path.join(root, 'environments', 'play.env'), 'utf8'),
    'play.env',
  );
  const dir = path.join(root, 'platform', 'manifests');
  const render = async (p: Phase | null) =>
    new Map(
      (await renderTree(dir, stagedValues(manifestValues(cfg, FIXTURE_PKI), versionsAfter(p, from, to)))).map(
        (f) => [f.path, f.content],
      ),
    );
  // rendered at the environment's own versions, staging changes nothing
  const plain = new Map(
    (await renderTree(dir, manifestValues(cfg, FIXTURE_PKI))).map((f) => [f.path, f.content]),
  );
  expect(await render(null)).toEqual(plain);
  let before = plain;
  for (const phase of ['etcd', 'apiservers', 'controllers'] as const) {
    const after = await render(phase);
    const changed = [...after.keys()].filter((k) => after.get(k) !== before.get(k));
    expect(changed.sort()).toEqual(PHASE_FILES[phase].map((f) => `secure/${f}`).sort());
    for (const k of changed) {
      const strip = (s: string) => s.replace(/^\s*image: .*$/gm, '');
      expect(strip(after.get(k)!)).toBe(strip(before.get(k)!));
    }
    before = after;
  }
  expect(before.get('secure/manifests/kube-apiserver.yaml')).toContain('kube-apiserver:v1.35.0');
  expect(before.get('secure/manifests/etcd.yaml')).toContain('etcd:3.6.5-0');
  expect(before.get('secure/addons/kube-proxy/daemon-set.yaml')).toContain('kube-proxy:v1.35.0');
});

test('setEnvKeys replaces the keys in place and appends missing ones, keeping everything else', () => {
  const text = '# comment\nKUBERNETES_VERSION=v1.34.2\nREGION=eu-west-1\n';
  expect(setEnvKeys(text, { KUBERNETES_VERSION: 'v1.35.0', ETCD_VERSION: 'v3.6.5' })).toBe(
    '# comment\nKUBERNETES_VERSION=v1.35.0\nREGION=eu-west-1\nETCD_VERSION=v3.6.5\n',
  );
  expect(setEnvKeys('A=1', { B: '2' })).toBe('A=1\nB=2\n');
  // a key named inside another key's value or a comment is not touched
  expect(setEnvKeys('# KUBERNETES_VERSION=old\nX_KUBERNETES_VERSION=1\n', { KUBERNETES_VERSION: 'v2' })).toBe(
    '# KUBERNETES_VERSION=old\nX_KUBERNETES_VERSION=1\nKUBERNETES_VERSION=v2\n',
  );
});

test('run is refused while an upgrade is unfinished, not before one or after it completed', () => {
  expect(() => assertNoUpgradeInProgress(undefined)).not.toThrow();
  expect(() => assertNoUpgradeInProgress({ target: to, done: [...PHASES], started: null })).not.toThrow();
  expect(() =>
    assertNoUpgradeInProgress({ target: to, done: ['preflight', 'snapshot'], started: 'etcd' }),
  ).toThrow(ConflictError);
  expect(() =>
    assertNoUpgradeInProgress({ target: to, done: ['preflight', 'snapshot'], started: 'etcd' }),
  ).toThrow(/an upgrade to v1.35.0 is in progress \(done: preflight, snapshot; stopped in etcd\)/);
});

test('an unfinished upgrade is held by a live process elsewhere; a dead one on this host or a stale heartbeat lets go', () => {
  const me = { arn: 'arn:aws:iam::1:user/a', host: 'h1', pid: 100 };
  const now = new Date('2026-12-02T12:00:00Z');
  const rec = (owner: typeof me, ageS: number, done: string[] = ['preflight']) => ({
    done,
    owner,
    heartbeatAt: new Date(now.getTime() - ageS * 1000).toISOString(),
  });
  const alive = () => true;
  const dead = () => false;
  expect(heldByOther(null, me, now, alive)).toBeUndefined();
  expect(heldByOther(rec(me, 10), me, now, alive)).toBeUndefined();
  const other = { arn: 'arn:aws:iam::1:user/b', host: 'h2', pid: 7 };
  expect(heldByOther(rec(other, 10), me, now, alive)).toBe(
    'held by arn:aws:iam::1:user/b on h2 (pid 7), last heartbeat 10 s ago',
  );
  expect(heldByOther(rec(other, 301), me, now, alive)).toBeUndefined();
  expect(heldByOther(rec(other, 10, [...PHASES]), me, now, alive)).toBeUndefined();
  const sameHost = { ...me, pid: 55 };
  expect(heldByOther(rec(sameHost, 10), me, now, alive)).toMatch(/pid 55/);
  expect(heldByOther(rec(sameHost, 10), me, now, dead)).toBeUndefined();
});

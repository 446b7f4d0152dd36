import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseEnvironment } from '../../src/config/load.js';
import { manifestValues, type RenderedFile, renderTree } from '../../src/manifests/index.js';
import { manifestsTemplateDir, toolkitRoot } from '../../src/paths.js';
import { BOOTSTRAP_GROUPS } from '../../src/secrets/pki/token.js';
import { targetOf } from '../../src/sync/plan.js';

/**
 * The cluster add-ons (platform/manifests/secure/addons/) rendered for the playground
 * environment, as kp-addons.service applies them on the masters: first of all the RBAC that
 * kubelet TLS bootstrapping needs, with kubeadm's names
 * (https://kubernetes.io/docs/reference/access-authn-authz/kubelet-tls-bootstrapping/).
 */

const root = toolkitRoot();
let addons: RenderedFile[];

beforeAll(async () => {
  const text = await readFile(path.join(root, 'environments', 'play.env'), 'utf8');
  const cfg = parseEnvironment('play-addons', text, 'environments/play.env');
  addons = (await renderTree(manifestsTemplateDir(), manifestValues(cfg))).filter((f) =>
    f.path.startsWith('secure/addons/'),
  );
});

/** The one object of a rendered file (fails the test when the file holds another number of documents). */
function objectOf(f: RenderedFile): Record<string, unknown> {
  const docs = parseAllDocuments(f.content, { uniqueKeys: true });
  expect(Array.isArray(docs) ? docs.length : 0).toBe(1);
  return (docs as { toJS(): Record<string, unknown> }[])[0]!.toJS();
}

const binding = (name: string, role: string, group: string) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'kube-platform' } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
});

describe('cluster add-ons for play.env', () => {
  test('kubelet TLS bootstrapping: exactly the three ClusterRoleBindings kubeadm creates', () => {
    const byName = new Map(
      addons.map(objectOf).map((o) => [(o.metadata as { name: string }).name, o] as const),
    );
    const tokenGroup = 'system:bootstrappers:kubeadm:default-node-token';
    // the group the bootstrap token authenticates with (secure/bootstrap-token.csv)
    expect(BOOTSTRAP_GROUPS).toContain(tokenGroup);
    expect(byName.get('kubeadm:kubelet-bootstrap')).toEqual(
      binding('kubeadm:kubelet-bootstrap', 'system:node-bootstrapper', tokenGroup),
    );
    expect(byName.get('kubeadm:node-autoapprove-bootstrap')).toEqual(
      binding(
        'kubeadm:node-autoapprove-bootstrap',
        'system:certificates.k8s.io:certificatesigningrequests:nodeclient',
        tokenGroup,
      ),
    );
    expect(byName.get('kubeadm:node-autoapprove-certificate-rotation')).toEqual(
      binding(
        'kubeadm:node-autoapprove-certificate-rotation',
        'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient',
        'system:nodes',
      ),
    );
  });

  test('kubeadm:cluster-admins makes the admin.conf group cluster-admin', () => {
    const o = addons
      .map(objectOf)
      .find((x) => (x.metadata as { name: string }).name === 'kubeadm:cluster-admins');
    expect(o).toEqual(binding('kubeadm:cluster-admins', 'cluster-admin', 'kubeadm:cluster-admins'));
  });

  test('one labelled object per .yaml file, each name once; nothing else under secure/addons/', () => {
    expect(addons.map((f) => f.path)).toEqual([
      'secure/addons/cluster-admins/cluster-role-binding.yaml',
      'secure/addons/kubelet-tls-bootstrap/cluster-role-binding-kubelet-bootstrap.yaml',
      'secure/addons/kubelet-tls-bootstrap/cluster-role-binding-node-autoapprove-bootstrap.yaml',
      'secure/addons/kubelet-tls-bootstrap/cluster-role-binding-node-autoapprove-certificate-rotation.yaml',
    ]);
    const keys = new Set<string>();
    for (const f of addons) {
      // kubectl apply -R -f <dir> reads only .json, .yaml and .yml files: anything else would be skipped silently
      expect(f.path).toMatch(/\.yaml$/);
      expect(f.mode).toBe(0o600);
      const o = objectOf(f);
      const meta = o.metadata as { name: string; namespace?: string; labels?: Record<string, string> };
      expect(meta.labels?.['app.kubernetes.io/managed-by']).toBe('kube-platform');
      const key = `${String(o.kind)}/${meta.namespace ?? ''}/${meta.name}`;
      expect(keys.has(key)).toBe(false);
      keys.add(key);
    }
  });

  test('manifest-sync puts them where kp-addons applies them: /etc/kubernetes/addons/ on masters', async () => {
    // the agent's flags as the node runs it; index paths are layer-relative
    const unit = await readFile(
      path.join(root, 'platform/terraform/templates/manifest-sync@.service'),
      'utf8',
    );
    const flag = (name: string) => new RegExp(`--${name} (\\S+)`).exec(unit)?.[1];
    const map = { dest: flag('dest')!, root: flag('root')! };
    expect(map.root).toBe('/etc/kubernetes');
    for (const f of addons) {
      const indexPath = f.path.slice('secure/'.length);
      expect(targetOf(indexPath, map)).toBe(`/etc/kubernetes/${indexPath}`);
      expect(targetOf(indexPath, map)!.startsWith('/etc/kubernetes/addons/')).toBe(true);
    }
  });
});

import { parse } from 'yaml';
import { UserError } from '../../src/errors.js';
import { sha256 } from '../../src/secrets/envelope.js';
import { planFetch } from '../../src/secrets/fetch-plan.js';
import { mergeKubeconfig } from '../../src/secrets/kubeconfig-merge.js';

const incoming = `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: { server: https://kube-prod.example.com, certificate-authority-data: Q0E= }
users:
- name: prod-admin
  user: { client-certificate-data: Y2VydA==, client-key-data: a2V5 }
contexts:
- name: prod-admin@prod
  context: { cluster: prod, user: prod-admin }
current-context: prod-admin@prod
`;

test('merging adds the environment and keeps every other context', () => {
  const existing = `apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: { server: https://other }
users:
- name: other
  user: { token: abc }
contexts:
- name: other
  context: { cluster: other, user: other }
current-context: other
`;
  const merged = parse(mergeKubeconfig(existing, incoming, 'prod', '~/.kube/config'));
  expect(merged.contexts.map((c: { name: string }) => c.name)).toEqual(['other', 'prod']);
  expect(merged.contexts[1].context).toEqual({ cluster: 'prod', user: 'prod' });
  expect(merged.clusters[1].cluster.server).toBe('https://kube-prod.example.com');
  expect(merged['current-context']).toBe('other');
  // merging again replaces, never duplicates
  const twice = parse(
    mergeKubeconfig(mergeKubeconfig(existing, incoming, 'prod', 'x'), incoming, 'prod', 'x'),
  );
  expect(twice.clusters).toHaveLength(2);
  // into an empty file: the environment becomes current
  expect(parse(mergeKubeconfig('', incoming, 'prod', 'x'))['current-context']).toBe('prod');
});

test('a broken kubeconfig is not overwritten', () => {
  expect(() => mergeKubeconfig('clusters: [', incoming, 'prod', '/home/a/.kube/config')).toThrow(UserError);
  expect(() => mergeKubeconfig('- a\n- b\n', incoming, 'prod', 'x')).toThrow(/not a kubeconfig/);
});

test('planFetch sorts files into add, same and differ', () => {
  const e = (c: string) => ({ sha256: sha256(c), size: c.length, mode: 0o600, versionId: 'v' });
  const index = {
    format: 1 as const,
    environment: 'e',
    layer: 'l',
    generation: 1,
    previous: null,
    updatedAt: '',
    files: { a: e('a'), b: e('b'), c: e('c') },
  };
  expect(planFetch(index, { a: sha256('a'), b: sha256('B') })).toEqual({
    add: ['c'],
    same: ['a'],
    differ: ['b'],
  });
});

import { podFlags } from '../../src/policy/rules/kubernetes.js';
import type { PolicyFile } from '../../src/policy/types.js';

/** podFlags parses a static pod once per file object for all the rules, and again when its content changes. */

const pod = (flags: string[]) =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n    - name: kube-apiserver\n      command:\n${flags.map((f) => `        - ${f}`).join('\n')}\n`;

test('the flags of one file object are parsed once and shared', () => {
  const file: PolicyFile = {
    path: 'secure/manifests/kube-apiserver.yaml',
    content: pod(['kube-apiserver', '--anonymous-auth=false', '--profiling']),
    mode: 0o644,
  };
  const first = podFlags(file);
  expect(first && Object.fromEntries(first)).toEqual({ 'anonymous-auth': 'false', profiling: 'true' });
  expect(podFlags(file)).toBe(first);
});

test('a file object whose content changed is parsed again', () => {
  const file: PolicyFile = {
    path: 'secure/manifests/kube-apiserver.yaml',
    content: pod(['kube-apiserver', '--anonymous-auth=false']),
    mode: 0o644,
  };
  const before = podFlags(file);
  file.content = pod(['kube-apiserver', '--anonymous-auth=true']);
  const after = podFlags(file);
  expect(after).not.toBe(before);
  expect(after?.get('anonymous-auth')).toBe('true');
  // not a pod: undefined, remembered as well
  const cm: PolicyFile = {
    path: 'secure/manifests/x.yaml',
    content: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n',
    mode: 0o644,
  };
  expect(podFlags(cm)).toBeUndefined();
  expect(podFlags(cm)).toBeUndefined();
});

import { clusterPreflight } from '../../src/commands/upgrade.js';
import { type ClusterVersions, preflight, type RuleId } from '../../src/upgrade/skew.js';
import { kubectlVersionFrom, versionsFrom } from '../../src/upgrade/versions.js';

/**
 * The version-skew policy (https://kubernetes.io/releases/version-skew-policy/), kubeadm's
 * upgrade policy and etcd's upgrade rules, one table case per rule: the cluster as it runs,
 * the target, and the rules that must fire (nothing else may).
 */
const base: ClusterVersions = {
  apiServers: ['v1.33.5', 'v1.33.5', 'v1.33.5'],
  controllerManagers: ['v1.33.5'],
  schedulers: ['v1.33.5'],
  kubelets: ['v1.33.5', 'v1.32.9'],
  etcdMembers: ['v3.5.26', 'v3.5.26', 'v3.5.27'],
  kubectl: 'v1.34.1',
};
const to134 = { kubernetes: 'v1.34.2', etcd: 'v3.6.4' };

const cases: [string, ClusterVersions, { kubernetes: string; etcd: string }, RuleId[]][] = [
  [
    'legal: 1.33 → 1.34 with etcd 3.5.26+ → 3.6 (policy: one minor, kubeadm pairs 1.34 with 3.6)',
    base,
    to134,
    [],
  ],
  ['legal: a patch upgrade within 1.33', base, { kubernetes: 'v1.33.7', etcd: 'v3.5.27' }, []],
  [
    'skew policy "must not skip minor versions": 1.32 → 1.34',
    { ...base, apiServers: ['v1.32.9'], kubelets: ['v1.32.9'], controllerManagers: [], schedulers: [] },
    to134,
    ['kube-minor-skip'],
  ],
  [
    'kubeadm MaximumAllowedMinorVersionUpgradeSkew = 1: 1.33 → 1.35',
    base,
    { kubernetes: 'v1.35.0', etcd: 'v3.6.5' },
    ['kube-minor-skip'],
  ],
  [
    'kubeadm: a major jump is refused',
    base,
    { kubernetes: 'v2.0.0', etcd: 'v3.6.4' },
    ['kube-minor-skip', 'etcd-pairing', 'kubelet-too-old', 'kubectl-skew'],
  ],
  ['no downgrade: 1.33.5 → 1.33.4', base, { kubernetes: 'v1.33.4', etcd: 'v3.5.27' }, ['kube-downgrade']],
  [
    'no downgrade: a minor down, 1.34 → 1.33',
    { ...base, apiServers: ['v1.34.2'], kubelets: ['v1.34.2'], etcdMembers: ['v3.6.4'] },
    { kubernetes: 'v1.33.5', etcd: 'v3.5.27' },
    ['kube-downgrade', 'etcd-downgrade', 'kubelet-newer-than-apiserver'],
  ],
  [
    'skew policy: HA API servers at most one minor apart',
    { ...base, apiServers: ['v1.32.1', 'v1.34.0'] },
    to134,
    ['apiserver-ha-skew', 'kube-minor-skip', 'control-plane-newer-than-apiserver'],
  ],
  [
    'skew policy: "kubelet must not be newer than kube-apiserver"',
    { ...base, kubelets: ['v1.35.0'] },
    to134,
    ['kubelet-newer-than-apiserver'],
  ],
  [
    'skew policy: kubelet "may be up to three minor versions older" (1.30 under a 1.34 API server is four)',
    { ...base, kubelets: ['v1.30.14', 'v1.33.5'] },
    to134,
    ['kubelet-too-old'],
  ],
  [
    'three minors older is still allowed (1.31 kubelet, 1.34 API server)',
    { ...base, kubelets: ['v1.31.0'] },
    to134,
    [],
  ],
  [
    'skew policy: controller-manager/scheduler never newer than the API server',
    { ...base, schedulers: ['v1.34.0'] },
    to134,
    ['control-plane-newer-than-apiserver'],
  ],
  [
    'kubeadm SupportedEtcdVersion: 1.34 runs etcd 3.6.x, not 3.5',
    base,
    { kubernetes: 'v1.34.2', etcd: 'v3.5.27' },
    ['etcd-pairing'],
  ],
  [
    'kubeadm: no pairing known for 1.40',
    { ...base, apiServers: ['v1.39.0'], kubelets: ['v1.39.0'], controllerManagers: [], schedulers: [] },
    { kubernetes: 'v1.40.0', etcd: 'v3.7.0' },
    ['etcd-pairing', 'etcd-minor-skip', 'kubectl-skew'],
  ],
  [
    'etcd upgrade_3_6: every member must run 3.5.26 or later before 3.6',
    { ...base, etcdMembers: ['v3.5.26', 'v3.5.21', 'v3.5.26'] },
    to134,
    ['etcd-3.6-needs-3.5.26'],
  ],
  [
    'etcd upgrades one minor at a time: 3.4 → 3.6',
    { ...base, etcdMembers: ['v3.4.23'] },
    to134,
    ['etcd-minor-skip'],
  ],
  [
    'etcd: no downgrade from 3.6 to 3.5',
    { ...base, etcdMembers: ['v3.6.4'] },
    { kubernetes: 'v1.33.7', etcd: 'v3.5.27' },
    ['etcd-downgrade'],
  ],
  [
    'skew policy: kubectl within one minor (warning only): 1.32 kubectl, 1.34 target',
    { ...base, kubectl: 'v1.32.0' },
    to134,
    ['kubectl-skew'],
  ],
  [
    'a version that is not vX.Y.Z is refused',
    base,
    { kubernetes: '1.34', etcd: 'v3.6.4' },
    ['version-format'],
  ],
];

test.each(cases)('%s', (_name, current, target, rules) => {
  const findings = preflight(current, target);
  expect([...new Set(findings.map((f) => f.rule))].sort()).toEqual([...rules].sort());
  for (const f of findings) {
    expect(f.source).toMatch(/kubernetes\.io\/releases\/version-skew-policy|kubeadm|etcd\.io/);
    expect(f.severity).toBe(f.rule === 'kubectl-skew' ? 'warn' : 'refuse');
  }
});

test('each refusal names the versions concerned', () => {
  const [f] = preflight({ ...base, etcdMembers: ['v3.5.20'] }, to134);
  expect(f!.message).toContain('v3.5.20');
  expect(f!.message).toContain('3.5.26');
});

describe('versionsFrom: what the cluster runs, from nodes and static pods', () => {
  const pod = (component: string, image: string, namespace = 'kube-system') =>
    ({
      namespace,
      name: `${component}-m1`,
      nodeName: 'm1',
      phase: 'Running',
      ready: true,
      priorityClassName: null,
      mirror: true,
      daemonSet: false,
      labels: { component },
      image,
    }) as const;
  const node = (kubeletVersion: string | null) =>
    ({
      name: 'n',
      ready: true,
      notReadyReason: null,
      networkUnavailable: false,
      unschedulable: false,
      internalIp: null,
      instanceId: null,
      kubeletVersion,
      labels: {},
    }) as const;

  test('image tags become versions; etcd’s build suffix is dropped; other namespaces ignored', () => {
    const v = versionsFrom(
      [node('v1.33.5'), node('v1.32.9'), node(null)],
      [
        pod('kube-apiserver', 'registry.k8s.io/kube-apiserver:v1.33.5'),
        pod('kube-controller-manager', 'registry.k8s.io/kube-controller-manager:v1.33.5'),
        pod('kube-scheduler', 'registry.k8s.io/kube-scheduler:v1.33.4'),
        pod('etcd', 'registry.k8s.io/etcd:3.5.26-0'),
        pod('kube-apiserver', 'evil/kube-apiserver:v9.9.9', 'default'),
      ],
      kubectlVersionFrom('{"clientVersion":{"gitVersion":"v1.34.1"}}'),
    );
    expect(v).toEqual({
      apiServers: ['v1.33.5'],
      controllerManagers: ['v1.33.5'],
      schedulers: ['v1.33.4'],
      etcdMembers: ['v3.5.26'],
      kubelets: ['v1.33.5', 'v1.32.9'],
      kubectl: 'v1.34.1',
    });
    expect(kubectlVersionFrom('not json')).toBeUndefined();
  });
});

describe('clusterPreflight: the skew rules over what the Kubernetes API reports', () => {
  const fakeKube = (kubelet: string, etcdImage: string) =>
    ({
      server: 'https://kube.test:443',
      readyz: async () => {},
      listNodes: async () => [
        {
          name: 'n1',
          ready: true,
          notReadyReason: null,
          networkUnavailable: false,
          unschedulable: false,
          internalIp: null,
          instanceId: null,
          kubeletVersion: kubelet,
          labels: {},
        },
      ],
      listPods: async () =>
        [
          ['kube-apiserver', 'registry.k8s.io/kube-apiserver:v1.33.5'],
          ['etcd', etcdImage],
        ].map(([component, image]) => ({
          namespace: 'kube-system',
          name: `${component}-m1`,
          nodeName: 'm1',
          phase: 'Running',
          ready: true,
          priorityClassName: null,
          mirror: true,
          daemonSet: false,
          labels: { component: component! },
          image: image!,
        })),
      cordon: async () => {},
      evict: async () => ({ evicted: true as const }),
    }) satisfies Parameters<typeof clusterPreflight>[0];

  test('a legal target passes; an old etcd member and a 4-minors-old kubelet are refused by rule', async () => {
    const target = { kubernetes: 'v1.34.2', etcd: 'v3.6.4' };
    const json = '{"clientVersion":{"gitVersion":"v1.34.1"}}';
    expect(
      await clusterPreflight(fakeKube('v1.33.5', 'registry.k8s.io/etcd:3.5.26-0'), target, json),
    ).toEqual([]);
    const rules = (
      await clusterPreflight(fakeKube('v1.30.0', 'registry.k8s.io/etcd:3.5.15-0'), target, json)
    ).map((f) => f.rule);
    expect(rules.sort()).toEqual(['etcd-3.6-needs-3.5.26', 'kubelet-too-old']);
  });
});

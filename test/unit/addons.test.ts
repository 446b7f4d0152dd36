import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { targetOf } from '../../src/agent/plan.js';
import { type EnvConfig, parseEnvironment } from '../../src/config/load.js';
import { bootstrapNames } from '../../src/config/topology.js';
import {
  type ManifestValues,
  manifestValues,
  type RenderedFile,
  renderTree,
} from '../../src/manifests/index.js';
import { manifestsTemplateDir, terraformDir, toolkitRoot } from '../../src/paths.js';
import { BOOTSTRAP_GROUPS } from '../../src/secrets/pki/token.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';

/**
 * The cluster add-ons (platform/manifests/secure/addons/) rendered for the playground
 * environment, as kp-addons.service applies them on the masters: the RBAC that kubelet TLS
 * bootstrapping needs, with kubeadm's names
 * (https://kubernetes.io/docs/reference/access-authn-authz/kubelet-tls-bootstrapping/), and
 * what makes a cluster usable: kube-proxy and CoreDNS as kubeadm v1.34 deploys them, and the
 * flannel pod network (VXLAN). No API server runs here (kubectl cannot validate offline), so
 * pod templates are checked against the strict core/v1 PodSpec JSON Schema of v1.34
 * (src/agent/schema/pod-v1.34.ts) and every other object structurally.
 */

const root = toolkitRoot();

/** A Kubernetes object as the tests read it. */
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
}

interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  hostPath?: { path: string; type?: string };
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  serviceAccountName?: string;
  hostNetwork?: boolean;
  priorityClassName?: string;
  dnsPolicy?: string;
  tolerations?: { key?: string; operator?: string; effect?: string }[];
  affinity?: {
    podAntiAffinity?: {
      preferredDuringSchedulingIgnoredDuringExecution?: {
        podAffinityTerm: {
          topologyKey: string;
          labelSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
        };
      }[];
    };
  };
}

interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

/** The rendered add-ons of one environment. */
interface Rendered {
  cfg: EnvConfig;
  values: ManifestValues;
  files: RenderedFile[];
  objects: { path: string; obj: K8sObject }[];
}

/** The one object of a rendered file (fails the test when the file holds another number of documents). */
function objectOf(f: RenderedFile): K8sObject {
  const docs = parseAllDocuments(f.content, { uniqueKeys: true });
  expect(Array.isArray(docs) ? docs.length : 0).toBe(1);
  return (docs as { toJS(): K8sObject }[])[0]!.toJS();
}

/** Parses an environment file's text and renders the add-ons of the whole template tree. */
async function render(name: string, text: string, file: string): Promise<Rendered> {
  const cfg = parseEnvironment(name, text, file);
  const values = manifestValues(cfg, FIXTURE_PKI);
  const files = (await renderTree(manifestsTemplateDir(), values)).filter((f) =>
    f.path.startsWith('secure/addons/'),
  );
  return { cfg, values, files, objects: files.map((f) => ({ path: f.path, obj: objectOf(f) })) };
}

/**
 * The object of that kind and name in `namespace` (`kube-system` unless given; `null` for a
 * cluster-scoped object); fails when it is not there exactly once.
 */
function find<T extends K8sObject = K8sObject>(
  r: Rendered,
  kind: string,
  name: string,
  namespace: string | null = 'kube-system',
): T {
  const hits = r.objects.filter(
    ({ obj }) =>
      obj.kind === kind && obj.metadata.name === name && (obj.metadata.namespace ?? null) === namespace,
  );
  expect(hits.map((h) => `${kind}/${namespace ?? ''}/${name} in ${h.path}`)).toHaveLength(1);
  return hits[0]!.obj as T;
}

/** The value of a ConfigMap key, parsed as YAML (JSON is YAML too). */
function configData(cm: K8sObject, key: string): unknown {
  const data = cm.data as Record<string, string> | undefined;
  expect(typeof data?.[key]).toBe('string');
  return parseYaml(data![key]!, { uniqueKeys: true });
}

/** One token of a Corefile, lexed as CoreDNS does (Caddyfile rules: quotes removed, `#` comments). */
interface CorefileToken {
  text: string;
  line: number;
}

function lexCorefile(text: string): CorefileToken[] {
  const tokens: CorefileToken[] = [];
  let line = 1;
  let cur = '';
  let start = 1;
  let quoted = false;
  let escaped = false;
  let comment = false;
  let had = false;
  const flush = () => {
    if (had) tokens.push({ text: cur, line: start });
    cur = '';
    had = false;
  };
  for (const ch of text) {
    if (quoted) {
      if (escaped) {
        cur += ch;
        escaped = false;
      } else if (ch === '\\') escaped = true;
      else if (ch === '"') {
        quoted = false;
        flush();
      } else cur += ch;
      if (ch === '\n') line++;
      continue;
    }
    if (ch === '\n') {
      flush();
      comment = false;
      line++;
      continue;
    }
    if (comment) continue;
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      flush();
    } else if (ch === '#' && !had) {
      comment = true;
    } else if (ch === '"' && !had) {
      quoted = true;
      had = true;
      start = line;
    } else {
      if (!had) start = line;
      had = true;
      cur += ch;
    }
  }
  flush();
  return tokens;
}

/** A Corefile directive: its name, arguments (before any `{`) and the directives of its block. */
interface Directive {
  name: string;
  args: string[];
  block: Directive[];
}

/** Parses a Corefile into server blocks (name = the first server key). */
function parseCorefile(text: string): Directive[] {
  const tokens = lexCorefile(text);
  let i = 0;
  const parseBlock = (): Directive[] => {
    const out: Directive[] = [];
    while (i < tokens.length && tokens[i]!.text !== '}') {
      const first = tokens[i++]!;
      const d: Directive = { name: first.text, args: [], block: [] };
      while (i < tokens.length && tokens[i]!.line === first.line && tokens[i]!.text !== '{') {
        if (tokens[i]!.text === '}') break;
        d.args.push(tokens[i++]!.text);
      }
      if (i < tokens.length && tokens[i]!.text === '{') {
        i++;
        d.block = parseBlock();
        expect(tokens[i]?.text).toBe('}');
        i++;
      }
      out.push(d);
    }
    return out;
  };
  const blocks = parseBlock();
  expect(i).toBe(tokens.length);
  return blocks;
}

const MANAGED_BY = 'app.kubernetes.io/managed-by';

/** Every kind an add-on may be, with its API version. */
const ALLOWED_KINDS: Record<string, string> = {
  Namespace: 'v1',
  ServiceAccount: 'v1',
  ConfigMap: 'v1',
  Service: 'v1',
  ClusterRole: 'rbac.authorization.k8s.io/v1',
  ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
  Role: 'rbac.authorization.k8s.io/v1',
  RoleBinding: 'rbac.authorization.k8s.io/v1',
  DaemonSet: 'apps/v1',
  Deployment: 'apps/v1',
  CSIDriver: 'storage.k8s.io/v1',
  StorageClass: 'storage.k8s.io/v1',
  APIService: 'apiregistration.k8s.io/v1',
};

/** Kinds without a namespace. */
const CLUSTER_SCOPED = [
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CSIDriver',
  'StorageClass',
  'APIService',
];

/**
 * `registry/repository:tag`, a tag that is not `latest`, optionally `@sha256:<digest>`
 * (https://kubernetes.io/docs/concepts/containers/images/#image-names).
 */
const PINNED_IMAGE_RE =
  /^[a-z0-9.-]+(\.[a-z]+)(\/[a-z0-9._-]+)+:(?!latest(@|$))[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(@sha256:[0-9a-f]{64})?$/;

const workloadsOf = (r: Rendered) =>
  r.objects.filter(({ obj }) => obj.kind === 'DaemonSet' || obj.kind === 'Deployment') as {
    path: string;
    obj: Workload;
  }[];

let play: Rendered;
let podSpecSchema: ValidateFunction;
let objectMetaSchema: ValidateFunction;

beforeAll(async () => {
  play = await render(
    'play-addons',
    await readFile(path.join(root, 'environments', 'play.env'), 'utf8'),
    'environments/play.env',
  );
  const { Ajv } = await import('ajv');
  const { POD_SCHEMA } = await import('../../src/agent/schema/pod-v1.34.js');
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true });
  podSpecSchema = ajv.compile({ ...POD_SCHEMA, $ref: '#/definitions/V1PodSpec' });
  objectMetaSchema = ajv.compile({ ...POD_SCHEMA, $ref: '#/definitions/V1ObjectMeta' });
});

const binding = (name: string, role: string, group: string) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name, labels: { [MANAGED_BY]: 'kube-platform' } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
});

describe('cluster add-ons for play.env', () => {
  test('kubelet TLS bootstrapping: exactly the three ClusterRoleBindings kubeadm creates', () => {
    const byName = new Map(play.objects.map(({ obj }) => [obj.metadata.name, obj] as const));
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
    // nothing grants the bootstrap token more (kubeadm's kube-proxy Role for `kubeadm join` is left out)
    const toToken = play.objects.filter(({ obj }) =>
      ((obj.subjects as { name: string }[] | undefined) ?? []).some((s) => s.name === tokenGroup),
    );
    expect(toToken.map(({ obj }) => obj.metadata.name).sort()).toEqual([
      'kubeadm:kubelet-bootstrap',
      'kubeadm:node-autoapprove-bootstrap',
    ]);
  });

  test('kubeadm:cluster-admins makes the admin.conf group cluster-admin', () => {
    const o = play.objects.find(({ obj }) => obj.metadata.name === 'kubeadm:cluster-admins')?.obj;
    expect(o).toEqual(binding('kubeadm:cluster-admins', 'cluster-admin', 'kubeadm:cluster-admins'));
  });

  test('one labelled object per .yaml file, of an allowed kind, each name once; nothing else under secure/addons/', () => {
    expect(play.files.map((f) => f.path)).toEqual([
      'secure/addons/aws-cloud-controller-manager/cluster-role-binding.yaml',
      'secure/addons/aws-cloud-controller-manager/cluster-role.yaml',
      'secure/addons/aws-cloud-controller-manager/daemon-set.yaml',
      'secure/addons/aws-cloud-controller-manager/role-binding.yaml',
      'secure/addons/aws-cloud-controller-manager/service-account.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-attacher.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-binding-attacher.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-binding-node.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-binding-provisioner.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-binding-resizer.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-node.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-provisioner.yaml',
      'secure/addons/aws-ebs-csi-driver/cluster-role-resizer.yaml',
      'secure/addons/aws-ebs-csi-driver/csi-driver.yaml',
      'secure/addons/aws-ebs-csi-driver/daemon-set-node.yaml',
      'secure/addons/aws-ebs-csi-driver/deployment-controller.yaml',
      'secure/addons/aws-ebs-csi-driver/role-binding-leases.yaml',
      'secure/addons/aws-ebs-csi-driver/role-leases.yaml',
      'secure/addons/aws-ebs-csi-driver/service-account-controller.yaml',
      'secure/addons/aws-ebs-csi-driver/service-account-node.yaml',
      'secure/addons/aws-ebs-csi-driver/storage-class-gp3.yaml',
      'secure/addons/cluster-admins/cluster-role-binding.yaml',
      'secure/addons/coredns/cluster-role-binding.yaml',
      'secure/addons/coredns/cluster-role.yaml',
      'secure/addons/coredns/config-map.yaml',
      'secure/addons/coredns/deployment.yaml',
      'secure/addons/coredns/service-account.yaml',
      'secure/addons/coredns/service.yaml',
      'secure/addons/flannel/00-namespace.yaml',
      'secure/addons/flannel/cluster-role-binding.yaml',
      'secure/addons/flannel/cluster-role.yaml',
      'secure/addons/flannel/config-map.yaml',
      'secure/addons/flannel/daemon-set.yaml',
      'secure/addons/flannel/service-account.yaml',
      'secure/addons/kube-proxy/cluster-role-binding.yaml',
      'secure/addons/kube-proxy/config-map.yaml',
      'secure/addons/kube-proxy/daemon-set.yaml',
      'secure/addons/kube-proxy/service-account.yaml',
      'secure/addons/kubelet-tls-bootstrap/cluster-role-binding-kubelet-bootstrap.yaml',
      'secure/addons/kubelet-tls-bootstrap/cluster-role-binding-node-autoapprove-bootstrap.yaml',
      'secure/addons/kubelet-tls-bootstrap/cluster-role-binding-node-autoapprove-certificate-rotation.yaml',
      'secure/addons/metrics-server/api-service.yaml',
      'secure/addons/metrics-server/cluster-role-aggregated-metrics-reader.yaml',
      'secure/addons/metrics-server/cluster-role-binding-auth-delegator.yaml',
      'secure/addons/metrics-server/cluster-role-binding.yaml',
      'secure/addons/metrics-server/cluster-role.yaml',
      'secure/addons/metrics-server/deployment.yaml',
      'secure/addons/metrics-server/role-binding-auth-reader.yaml',
      'secure/addons/metrics-server/service-account.yaml',
      'secure/addons/metrics-server/service.yaml',
    ]);
    const keys = new Set<string>();
    for (const { path: p, obj } of play.objects) {
      // kubectl apply -R -f <dir> reads only .json, .yaml and .yml files: anything else would be skipped silently
      expect(p).toMatch(/\.yaml$/);
      expect(play.files.find((f) => f.path === p)?.mode).toBe(0o600);
      expect([p, obj.kind, obj.apiVersion]).toEqual([p, obj.kind, ALLOWED_KINDS[obj.kind]]);
      expect([p, obj.metadata.labels?.[MANAGED_BY]]).toEqual([p, 'kube-platform']);
      const clusterScoped = CLUSTER_SCOPED.includes(obj.kind);
      expect([p, typeof obj.metadata.namespace]).toEqual([p, clusterScoped ? 'undefined' : 'string']);
      const key = `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
      expect(keys.has(key)).toBe(false);
      keys.add(key);
    }
  });

  test('every namespaced add-on lives in kube-system or in a namespace created first (kubectl -R applies in name order)', () => {
    const namespaces = play.objects.filter(({ obj }) => obj.kind === 'Namespace');
    expect(namespaces.map(({ obj }) => obj.metadata.name)).toEqual(['kube-flannel']);
    for (const { path: p, obj } of play.objects) {
      const ns = obj.metadata.namespace;
      if (ns === undefined || ns === 'kube-system') continue;
      const created = namespaces.find(({ obj: n }) => n.metadata.name === ns);
      expect([p, created?.path]).toEqual([p, expect.any(String)]);
      // same directory, and the Namespace's file sorts first (filepath.Walk order)
      expect(path.posix.dirname(created!.path)).toBe(path.posix.dirname(p));
      expect(created!.path < p).toBe(true);
    }
  });

  test('DaemonSets and Deployments: strict v1.34 PodSpec, pinned images, resource requests, consistent selectors and references', () => {
    const workloads = workloadsOf(play);
    expect(workloads.map(({ obj }) => `${obj.kind}/${obj.metadata.name}`).sort()).toEqual([
      'DaemonSet/aws-cloud-controller-manager',
      'DaemonSet/ebs-csi-node',
      'DaemonSet/kube-flannel-ds',
      'DaemonSet/kube-proxy',
      'Deployment/coredns',
      'Deployment/ebs-csi-controller',
      'Deployment/metrics-server',
    ]);
    for (const { path: p, obj } of workloads) {
      const { selector, template } = obj.spec;
      const pod = template.spec;
      expect([p, podSpecSchema(pod) ? [] : podSpecSchema.errors]).toEqual([p, []]);
      expect([p, objectMetaSchema(template.metadata) ? [] : objectMetaSchema.errors]).toEqual([p, []]);
      // the API server rejects a selector that does not select the template
      expect(template.metadata.labels).toEqual(expect.objectContaining(selector.matchLabels));
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        expect([p, c.name, c.image]).toEqual([p, c.name, expect.stringMatching(PINNED_IMAGE_RE)]);
      }
      for (const c of pod.containers) {
        expect([p, c.name, c.resources?.requests]).toEqual([
          p,
          c.name,
          { cpu: expect.stringMatching(/^\d+m$/), memory: expect.stringMatching(/^\d+Mi$/) },
        ]);
      }
      const ns = obj.metadata.namespace;
      // its ServiceAccount and ConfigMaps are add-ons of the same namespace
      expect(find(play, 'ServiceAccount', pod.serviceAccountName ?? 'default', ns ?? null).kind).toBe(
        'ServiceAccount',
      );
      for (const v of pod.volumes ?? []) {
        if (!v.configMap) continue;
        const cm = find(play, 'ConfigMap', v.configMap.name, ns ?? null);
        for (const item of v.configMap.items ?? [])
          expect(Object.keys(cm.data as object)).toContain(item.key);
      }
      // every mount names a volume of the pod
      const volumeNames = (pod.volumes ?? []).map((v) => v.name);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        for (const m of c.volumeMounts ?? []) expect(volumeNames).toContain(m.name);
      }
    }
  });

  test('the PodSpec schema check is not vacuous: a misspelt field and a wrong type are refused', () => {
    const proxy = find<Workload>(play, 'DaemonSet', 'kube-proxy').spec.template.spec;
    expect(podSpecSchema({ ...proxy, hostNetwrok: true })).toBe(false);
    expect(podSpecSchema({ ...proxy, hostNetwork: 'true' })).toBe(false);
    expect(podSpecSchema({ ...proxy, containers: [{ ...proxy.containers[0], imagePullPolicy: 1 }] })).toBe(
      false,
    );
  });
});

describe('kube-proxy, as kubeadm deploys it', () => {
  test('ServiceAccount kube-proxy bound to system:node-proxier by kubeadm:node-proxier', () => {
    expect(find(play, 'ServiceAccount', 'kube-proxy').metadata.labels?.[MANAGED_BY]).toBe('kube-platform');
    const crb = find(play, 'ClusterRoleBinding', 'kubeadm:node-proxier', null);
    expect({ roleRef: crb.roleRef, subjects: crb.subjects }).toEqual({
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:node-proxier' },
      subjects: [{ kind: 'ServiceAccount', name: 'kube-proxy', namespace: 'kube-system' }],
    });
  });

  test('config.conf: a KubeProxyConfiguration in iptables mode with clusterCIDR = POD_CIDR', () => {
    const cm = find(play, 'ConfigMap', 'kube-proxy');
    expect(configData(cm, 'config.conf')).toEqual({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      bindAddress: '0.0.0.0',
      clientConnection: { kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf' },
      clusterCIDR: play.cfg.podCidr,
      mode: 'iptables',
    });
    expect(play.cfg.podCidr).toBe('10.200.0.0/16'); // play.env keeps the schema default
  });

  test('kubeconfig.conf: the internal API load balancer over TLS, with the pod ServiceAccount token and CA', () => {
    const kc = configData(find(play, 'ConfigMap', 'kube-proxy'), 'kubeconfig.conf') as {
      'current-context': string;
      contexts: { name: string; context: { cluster: string; user: string } }[];
      clusters: { name: string; cluster: Record<string, string> }[];
      users: { name: string; user: Record<string, string> }[];
    };
    const ctx = kc.contexts.find((c) => c.name === kc['current-context'])!.context;
    const cluster = kc.clusters.find((c) => c.name === ctx.cluster)!.cluster;
    const user = kc.users.find((u) => u.name === ctx.user)!.user;
    expect(cluster).toEqual({
      server: 'https://kube.play-addons.internal:443',
      'certificate-authority': '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    });
    expect(new URL(cluster.server!).hostname).toBe(play.cfg.kubeapiInternalName);
    expect(user).toEqual({ tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' });
    // not the `kubernetes` Service, which only works once kube-proxy runs
    expect(cluster.server).not.toContain(play.values.kubernetesServiceIp);
  });

  test('DaemonSet: the release image, hostNetwork, privileged, system-node-critical, every taint tolerated', () => {
    const ds = find<Workload>(play, 'DaemonSet', 'kube-proxy');
    const pod = ds.spec.template.spec;
    expect(pod.containers.map((c) => c.image)).toEqual([
      `registry.k8s.io/kube-proxy:${play.cfg.kubernetesVersion}`,
    ]);
    expect(play.cfg.kubernetesVersion).toBe('v1.34.2');
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
    // a toleration with operator Exists and neither key nor effect matches every taint
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    const c = pod.containers[0]!;
    expect(c.command).toEqual([
      '/usr/local/bin/kube-proxy',
      '--config=/var/lib/kube-proxy/config.conf',
      '--hostname-override=$(NODE_NAME)',
    ]);
    // the config file is the ConfigMap's config.conf, mounted at /var/lib/kube-proxy
    const mount = c.volumeMounts!.find((m) => m.mountPath === '/var/lib/kube-proxy')!;
    expect(pod.volumes!.find((v) => v.name === mount.name)?.configMap?.name).toBe('kube-proxy');
    expect((c as { securityContext?: unknown }).securityContext).toEqual({ privileged: true });
  });
});

describe('CoreDNS, as kubeadm v1.34 deploys it', () => {
  test('Service kube-dns has the cluster DNS IP the kubelets hand to pods (tenth address of SERVICE_CIDR)', () => {
    const svc = find(play, 'Service', 'kube-dns');
    const spec = svc.spec as { clusterIP: string; selector: Record<string, string>; ports: unknown[] };
    expect(spec.clusterIP).toBe(play.values.clusterDnsIp);
    expect(spec.clusterIP).toBe('10.32.0.10'); // SERVICE_CIDR 10.32.0.0/16 (schema default)
    expect(svc.metadata).not.toHaveProperty('resourceVersion');
    expect(spec.ports).toEqual([
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
      { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
      { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
    ]);
    // it selects the CoreDNS pods, which listen on those ports
    const dep = find<Workload>(play, 'Deployment', 'coredns');
    expect(dep.spec.template.metadata.labels).toEqual(expect.objectContaining(spec.selector));
    const ports = dep.spec.template.spec.containers[0]!.ports!;
    for (const [port, protocol] of [
      [53, 'UDP'],
      [53, 'TCP'],
      [9153, 'TCP'],
    ] as const) {
      expect(ports).toContainEqual(expect.objectContaining({ containerPort: port, protocol }));
    }
  });

  test("the Corefile: kubeadm's plugins, authoritative for the cluster domain, external names forwarded", () => {
    const corefile = (find(play, 'ConfigMap', 'coredns').data as { Corefile: string }).Corefile;
    const servers = parseCorefile(corefile);
    expect(servers.map((s) => [s.name, s.args])).toEqual([['.:53', []]]);
    const plugins = servers[0]!.block;
    expect(plugins.map((d) => d.name)).toEqual([
      'errors',
      'health',
      'ready',
      'kubernetes',
      'prometheus',
      'forward',
      'cache',
      'loop',
      'reload',
      'loadbalance',
    ]);
    const plugin = (name: string) => plugins.find((d) => d.name === name)!;
    expect(plugin('kubernetes').args).toEqual([play.cfg.clusterDomain, 'in-addr.arpa', 'ip6.arpa']);
    expect(play.cfg.clusterDomain).toBe('cluster.local');
    expect(plugin('forward').args).toEqual(['.', '/etc/resolv.conf']);
    expect(plugin('cache')).toEqual({
      name: 'cache',
      args: ['30'],
      block: [
        { name: 'disable', args: ['success', play.cfg.clusterDomain], block: [] },
        { name: 'disable', args: ['denial', play.cfg.clusterDomain], block: [] },
      ],
    });
  });

  test('the Corefile lexer is not vacuous: quotes are removed, comments skipped, blocks nested', () => {
    expect(parseCorefile('a:53 {\n  x "q r" s # c\n  y {\n    z 1\n  }\n}\n')).toEqual([
      {
        name: 'a:53',
        args: [],
        block: [
          { name: 'x', args: ['q r', 's'], block: [] },
          { name: 'y', args: [], block: [{ name: 'z', args: ['1'], block: [] }] },
        ],
      },
    ]);
  });

  test('Deployment: two replicas spread over nodes, allowed on masters, probes on the health and ready plugins', () => {
    const dep = find<Workload>(play, 'Deployment', 'coredns');
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    // kubeadm's version; the digest is checked with the other pinned images below
    expect(pod.containers.map((c) => c.image.split('@')[0])).toEqual([
      'registry.k8s.io/coredns/coredns:v1.12.1',
    ]);
    expect(pod.dnsPolicy).toBe('Default');
    expect(pod.tolerations).toContainEqual({
      key: 'node-role.kubernetes.io/control-plane',
      effect: 'NoSchedule',
    });
    const term =
      pod.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution![0]!.podAffinityTerm;
    expect(term.topologyKey).toBe('kubernetes.io/hostname');
    expect(term.labelSelector.matchExpressions).toEqual([
      { key: 'k8s-app', operator: 'In', values: [dep.spec.template.metadata.labels['k8s-app']] },
    ]);
    // the health plugin serves /health on :8080, ready serves /ready on :8181 (https://coredns.io/plugins/health/,
    // https://coredns.io/plugins/ready/); the probes reach them through the named ports
    const c = pod.containers[0]!;
    const portOf = (name: string | number) => c.ports!.find((p) => p.name === name)?.containerPort;
    expect([c.livenessProbe?.httpGet?.path, portOf(c.livenessProbe!.httpGet!.port)]).toEqual([
      '/health',
      8080,
    ]);
    expect([c.readinessProbe?.httpGet?.path, portOf(c.readinessProbe!.httpGet!.port)]).toEqual([
      '/ready',
      8181,
    ]);
    // RBAC: the ServiceAccount may watch what the kubernetes plugin needs
    const crb = find(play, 'ClusterRoleBinding', 'system:coredns', null);
    expect(crb.subjects).toEqual([
      { kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: 'kube-system' },
    ]);
    const role = find(play, 'ClusterRole', (crb.roleRef as { name: string }).name, null);
    const rules = role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    for (const [group, resource] of [
      ['', 'services'],
      ['', 'pods'],
      ['', 'namespaces'],
      ['discovery.k8s.io', 'endpointslices'],
    ] as const) {
      const rule = rules.find((r) => r.apiGroups.includes(group) && r.resources.includes(resource));
      expect([resource, rule?.verbs]).toEqual([resource, ['list', 'watch']]);
    }
  });
});

describe('flannel, the pod network (VXLAN)', () => {
  test('net-conf.json: Network = POD_CIDR, VXLAN on the UDP port the security groups open among nodes', async () => {
    const cm = find(play, 'ConfigMap', 'kube-flannel-cfg', 'kube-flannel');
    expect(configData(cm, 'net-conf.json')).toEqual({
      Network: play.cfg.podCidr,
      EnableNFTables: false,
      Backend: { Type: 'vxlan', Port: 8472 },
    });
    const sg = await readFile(path.join(terraformDir(), 'modules', 'network', 'security-groups.tf'), 'utf8');
    expect(sg).toMatch(/\{ name = "vxlan-linux", protocol = "udp", from = 8472, to = 8472 \}/);
  });

  test('cni-conf.json: a conflist of flannel and portmap, installed where containerd reads CNI configs', () => {
    const cm = find(play, 'ConfigMap', 'kube-flannel-cfg', 'kube-flannel');
    const conf = configData(cm, 'cni-conf.json') as { cniVersion: string; plugins: { type: string }[] };
    expect(conf.plugins.map((p) => p.type)).toEqual(['flannel', 'portmap']);
    const pod = find<Workload>(play, 'DaemonSet', 'kube-flannel-ds', 'kube-flannel').spec.template.spec;
    const install = pod.initContainers!.find((c) => c.name === 'install-cni')!;
    expect([...install.command!, ...install.args!]).toEqual([
      'cp',
      '-f',
      '/etc/kube-flannel/cni-conf.json',
      '/etc/cni/net.d/10-flannel.conflist',
    ]);
    const hostPathOf = (container: Container, mountPath: string) => {
      const m = container.volumeMounts!.find((x) => mountPath.startsWith(x.mountPath.replace(/\/?$/, '/')))!;
      return pod.volumes!.find((v) => v.name === m.name)!;
    };
    expect(hostPathOf(install, '/etc/cni/net.d/10-flannel.conflist').hostPath?.path).toBe('/etc/cni/net.d');
    expect(hostPathOf(install, '/etc/kube-flannel/cni-conf.json').configMap?.name).toBe('kube-flannel-cfg');
    const plugin = pod.initContainers!.find((c) => c.name === 'install-cni-plugin')!;
    expect([...plugin.command!, ...plugin.args!]).toEqual(['cp', '-f', '/flannel', '/opt/cni/bin/flannel']);
    expect(hostPathOf(plugin, '/opt/cni/bin/flannel').hostPath?.path).toBe('/opt/cni/bin');
  });

  test('the standard CNI plugins flannel chains are the ones the node install links into /opt/cni/bin', async () => {
    const cm = find(play, 'ConfigMap', 'kube-flannel-cfg', 'kube-flannel');
    const conf = configData(cm, 'cni-conf.json') as {
      plugins: { type: string; delegate?: { type?: string } }[];
    };
    // flannel's plugin delegates to bridge with host-local IPAM unless its delegate says otherwise
    // (https://github.com/flannel-io/cni-plugin#readme); containerd runs loopback for every pod
    const needed = new Set(['loopback', 'host-local']);
    for (const p of conf.plugins) {
      if (p.type === 'flannel') needed.add(p.delegate?.type ?? 'bridge');
      else needed.add(p.type);
    }
    const script = await readFile(path.join(terraformDir(), 'templates', 'install-node.sh.tftpl'), 'utf8');
    expect(script).toMatch(/apt-get install [^\n]*containernetworking-plugins/);
    const checked = /for plugin in ((?:[a-z-]+ ?)+); do\n\s+if \[ ! -x "\/opt\/cni\/bin\/\$plugin" \]/.exec(
      script,
    );
    expect(checked?.[1]?.split(' ').sort()).toEqual([...needed].sort());
  });

  test('DaemonSet: the release images, hostNetwork, system-node-critical, --kube-subnet-mgr', () => {
    const ds = find<Workload>(play, 'DaemonSet', 'kube-flannel-ds', 'kube-flannel');
    const pod = ds.spec.template.spec;
    expect([...pod.initContainers!, ...pod.containers].map((c) => `${c.name} ${c.image}`)).toEqual([
      'install-cni-plugin ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3',
      'install-cni ghcr.io/flannel-io/flannel:v0.28.9',
      'kube-flannel ghcr.io/flannel-io/flannel:v0.28.9',
    ]);
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual([
      { effect: 'NoSchedule', operator: 'Exists' },
      { effect: 'NoExecute', operator: 'Exists' },
    ]);
    expect(pod.containers[0]!.args).toEqual(['--ip-masq', '--kube-subnet-mgr']);
    const crb = find(play, 'ClusterRoleBinding', 'flannel', null);
    expect(crb.subjects).toEqual([
      { kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: 'kube-flannel' },
    ]);
  });
});

describe('manifest-sync and other environments', () => {
  test('manifest-sync puts them where kp-addons applies them: /etc/kubernetes/addons/ on masters', async () => {
    // the agent's flags as the node runs it; index paths are layer-relative
    const unit = await readFile(
      path.join(root, 'platform/terraform/templates/manifest-sync@.service'),
      'utf8',
    );
    const flag = (name: string) => new RegExp(`--${name} (\\S+)`).exec(unit)?.[1];
    const map = { dest: flag('dest')!, root: flag('root')! };
    expect(map.root).toBe('/etc/kubernetes');
    for (const f of play.files) {
      const indexPath = f.path.slice('secure/'.length);
      expect(targetOf(indexPath, map)).toBe(`/etc/kubernetes/${indexPath}`);
      expect(targetOf(indexPath, map)!.startsWith('/etc/kubernetes/addons/')).toBe(true);
    }
  });

  test('another environment renders its own ranges, domain, API name and release (nothing is hard-coded)', async () => {
    const text = `${await readFile(path.join(root, 'environments', 'play.env'), 'utf8')}
SERVICE_CIDR=172.20.0.0/20
POD_CIDR=10.96.0.0/12
CLUSTER_DOMAIN=k8s.example.org
PRIVATE_DNS_ZONE=corp.example.net
KUBERNETES_VERSION=v1.34.1
`;
    const other = await render('other-addons', text, 'environments/other-addons.env');
    expect(other.files.map((f) => f.path)).toEqual(play.files.map((f) => f.path));
    expect(
      configData(find(other, 'ConfigMap', 'kube-proxy'), 'config.conf') as { clusterCIDR: string },
    ).toMatchObject({ clusterCIDR: '10.96.0.0/12' });
    const kc = configData(find(other, 'ConfigMap', 'kube-proxy'), 'kubeconfig.conf') as {
      clusters: { cluster: { server: string } }[];
    };
    expect(kc.clusters.map((c) => c.cluster.server)).toEqual(['https://kube.corp.example.net:443']);
    expect(
      find<Workload>(other, 'DaemonSet', 'kube-proxy').spec.template.spec.containers.map((c) => c.image),
    ).toEqual(['registry.k8s.io/kube-proxy:v1.34.1']);
    expect((find(other, 'Service', 'kube-dns').spec as { clusterIP: string }).clusterIP).toBe('172.20.0.10');
    const corefile = (find(other, 'ConfigMap', 'coredns').data as { Corefile: string }).Corefile;
    const kubernetes = parseCorefile(corefile)[0]!.block.find((d) => d.name === 'kubernetes')!;
    expect(kubernetes.args).toEqual(['k8s.example.org', 'in-addr.arpa', 'ip6.arpa']);
    expect(corefile).not.toContain('cluster.local');
    expect(
      configData(find(other, 'ConfigMap', 'kube-flannel-cfg', 'kube-flannel'), 'net-conf.json'),
    ).toMatchObject({ Network: '10.96.0.0/12' });
    // and nothing of play.env's values is left anywhere in the add-ons
    const all = other.files.map((f) => f.content).join('\n');
    for (const stale of ['10.200.0.0/16', '10.32.0.10', 'kube.play-addons.internal', 'kube-proxy:v1.34.2']) {
      expect(all).not.toContain(stale);
    }
  });
});

/**
 * Add-ons pinned by tag only, and why; every other add-on's images must be pinned by digest
 * (a new add-on is checked without being listed anywhere).
 */
const PINNED_BY_TAG_ONLY: Record<string, string> = {
  'kube-proxy': "the environment's Kubernetes version (images.kubeProxy), as the static pods",
  flannel: 'ghcr.io publishes no promotion manifest: no multi-arch digest could be checked offline',
};

/** Each add-on pinned by digest: its images are `<repository>:<tag>@<digest>` as upstream records the pair. */
describe('images pinned by version and digest (every add-on but those of PINNED_BY_TAG_ONLY)', () => {
  const upstream = JSON.parse(
    readFileSync(path.join(root, 'test', 'fixtures', 'images', 'upstream-digests.json'), 'utf8'),
  ) as { sources: Record<string, string>; images: Record<string, { digest: string; source: string }> };

  test('every image of these add-ons names a tag and the digest upstream records for it', () => {
    const seen = new Set<string>();
    const exempted = new Set<string>();
    for (const { path: p, obj } of workloadsOf(play)) {
      const addon = p.split('/')[2]!;
      if (PINNED_BY_TAG_ONLY[addon] !== undefined) {
        exempted.add(addon);
        continue;
      }
      const pod = obj.spec.template.spec;
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const m = /^(.+:[^:@]+)@(sha256:[0-9a-f]{64})$/.exec(c.image);
        expect([p, c.name, m !== null]).toEqual([p, c.name, true]);
        const [, ref, digest] = m!;
        expect([p, c.name, ref, digest]).toEqual([p, c.name, ref, upstream.images[ref!]?.digest]);
        expect(upstream.sources[upstream.images[ref!]!.source]).toEqual(expect.any(String));
        seen.add(ref!);
      }
    }
    // every listed image is used (a stale entry would hide a version change), every exemption too
    expect([...seen].sort()).toEqual(Object.keys(upstream.images).sort());
    expect([...exempted].sort()).toEqual(Object.keys(PINNED_BY_TAG_ONLY).sort());
  });
});

/** The ClusterRole a ClusterRoleBinding grants to a ServiceAccount, as rules. */
function rulesFor(r: Rendered, sa: string, namespace = 'kube-system') {
  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
  const bindings = r.objects.filter(
    ({ obj }) =>
      (obj.kind === 'ClusterRoleBinding' || obj.kind === 'RoleBinding') &&
      ((obj.subjects as { kind: string; name: string; namespace?: string }[]) ?? []).some(
        (s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === namespace,
      ),
  );
  const rules: Rule[] = [];
  const roles: string[] = [];
  for (const { obj } of bindings) {
    const ref = obj.roleRef as { kind: string; name: string };
    roles.push(`${ref.kind}/${ref.name}`);
    const role = r.objects.find(
      ({ obj: o }) =>
        o.kind === ref.kind &&
        o.metadata.name === ref.name &&
        (ref.kind === 'ClusterRole' || o.metadata.namespace === obj.metadata.namespace),
    );
    rules.push(...(((role?.obj.rules as Rule[]) ?? []) as Rule[]));
  }
  const can = (group: string, resource: string, verb: string) =>
    rules.some(
      (x) => x.apiGroups.includes(group) && x.resources.includes(resource) && x.verbs.includes(verb),
    );
  return { roles: roles.sort(), rules, can };
}

const argsOf = (c: Container) => [...(c.command ?? []), ...(c.args ?? [])];
const CONTROL_PLANE_AFFINITY = {
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [
        { matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] },
      ],
    },
  },
};

describe('AWS cloud-controller-manager', () => {
  test('kube-controller-manager leaves the cloud controllers to it: --cloud-provider=external', async () => {
    const files = await renderTree(manifestsTemplateDir(), play.values);
    const kcm = parseYaml(
      files.find((f) => f.path === 'secure/manifests/kube-controller-manager.yaml')!.content,
    ) as {
      spec: { containers: Container[] };
    };
    expect(kcm.spec.containers[0]!.command).toContain('--cloud-provider=external');
  });

  test('DaemonSet on the masters only, hostNetwork, tolerating the uninitialized and control-plane taints', () => {
    const ds = find<Workload>(play, 'DaemonSet', 'aws-cloud-controller-manager');
    const pod = ds.spec.template.spec as PodSpec & { affinity?: unknown };
    expect(pod.affinity).toEqual(CONTROL_PLANE_AFFINITY);
    expect(pod.hostNetwork).toBe(true);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual(
      expect.arrayContaining([
        { key: 'node.cloudprovider.kubernetes.io/uninitialized', value: 'true', effect: 'NoSchedule' },
        { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
      ]),
    );
    const c = pod.containers[0]!;
    expect(argsOf(c)).toEqual([
      '--bind-address=127.0.0.1',
      '--cloud-provider=aws',
      `--cluster-name=${play.cfg.name}`,
      '--configure-cloud-routes=false',
      '--leader-elect=true',
      '--use-service-account-credentials=false',
      '--v=2',
    ]);
    // the API server through the internal API load balancer, not the kubernetes Service
    const env = (c as { env?: { name: string; value?: string }[] }).env ?? [];
    expect(env).toEqual([
      { name: 'KUBERNETES_SERVICE_HOST', value: play.cfg.kubeapiInternalName },
      { name: 'KUBERNETES_SERVICE_PORT', value: '443' },
    ]);
  });

  test('RBAC: initialise and delete Nodes, update Service status, read the authentication ConfigMap; nothing on Secrets', () => {
    const ds = find<Workload>(play, 'DaemonSet', 'aws-cloud-controller-manager');
    const sa = ds.spec.template.spec.serviceAccountName!;
    const { roles, can, rules } = rulesFor(play, sa);
    expect(roles).toEqual([
      'ClusterRole/system:cloud-controller-manager',
      'Role/extension-apiserver-authentication-reader',
    ]);
    for (const [resource, verb] of [
      ['nodes', 'delete'],
      ['nodes', 'patch'],
      ['nodes/status', 'patch'],
      ['services/status', 'patch'],
      ['events', 'create'],
    ] as const)
      expect([resource, verb, can('', resource, verb)]).toEqual([resource, verb, true]);
    expect(can('coordination.k8s.io', 'leases', 'update')).toBe(true);
    for (const r of rules) {
      expect(r.resources).not.toContain('secrets');
      expect(r.verbs).not.toContain('*');
    }
  });
});

describe('EBS CSI driver and the default StorageClass', () => {
  test('controller: on the masters, one per master, hostNetwork, provisioner, attacher, resizer and liveness sidecars', () => {
    const dep = find<Workload>(play, 'Deployment', 'ebs-csi-controller');
    const pod = dep.spec.template.spec as PodSpec & {
      affinity: { nodeAffinity: unknown; podAntiAffinity: unknown };
    };
    expect(pod.affinity.nodeAffinity).toEqual(CONTROL_PLANE_AFFINITY.nodeAffinity);
    expect(pod.affinity.podAntiAffinity).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: [
        {
          topologyKey: 'kubernetes.io/hostname',
          labelSelector: {
            matchExpressions: [{ key: 'app', operator: 'In', values: ['ebs-csi-controller'] }],
          },
        },
      ],
    });
    expect(dep.spec.replicas).toBeLessThanOrEqual(play.cfg.masters.count);
    expect(pod.tolerations).toContainEqual({
      key: 'node-role.kubernetes.io/control-plane',
      effect: 'NoSchedule',
    });
    expect(pod.hostNetwork).toBe(true);
    expect(pod.containers.map((c) => c.name)).toEqual([
      'aws-ebs-csi-driver',
      'csi-provisioner',
      'csi-attacher',
      'csi-resizer',
      'livenessprobe',
    ]);
    const driver = pod.containers[0]!;
    expect(argsOf(driver)).toEqual(
      expect.arrayContaining(['controller', `--k8s-tag-cluster-id=${play.cfg.name}`]),
    );
    // on the host network the liveness endpoint stays on loopback, and the probe asks there
    expect(argsOf(pod.containers[4]!)).toContain('--http-endpoint=127.0.0.1:9808');
    expect((driver.livenessProbe!.httpGet as { host?: string }).host).toBe('127.0.0.1');
    // every sidecar talks to the driver over the shared socket
    for (const c of pod.containers) expect(c.volumeMounts?.map((m) => m.name)).toEqual(['socket-dir']);
  });

  test('controller RBAC: PersistentVolumes and VolumeAttachments, claim resizing, leases in kube-system only', () => {
    const dep = find<Workload>(play, 'Deployment', 'ebs-csi-controller');
    const { roles, can } = rulesFor(play, dep.spec.template.spec.serviceAccountName!);
    expect(roles).toEqual([
      'ClusterRole/ebs-external-attacher-role',
      'ClusterRole/ebs-external-provisioner-role',
      'ClusterRole/ebs-external-resizer-role',
      'Role/ebs-csi-leases-role',
    ]);
    expect(can('', 'persistentvolumes', 'create')).toBe(true);
    expect(can('', 'persistentvolumes', 'delete')).toBe(true);
    expect(can('storage.k8s.io', 'volumeattachments', 'patch')).toBe(true);
    expect(can('', 'persistentvolumeclaims/status', 'patch')).toBe(true);
    expect(can('coordination.k8s.io', 'leases', 'create')).toBe(true);
    const leases = find(play, 'RoleBinding', 'ebs-csi-leases-rolebinding');
    expect(leases.metadata.namespace).toBe('kube-system');
  });

  test('node plugin: every node, privileged, mounts into kubelet with Bidirectional propagation, registers with kubelet', () => {
    const ds = find<Workload>(play, 'DaemonSet', 'ebs-csi-node');
    const pod = ds.spec.template.spec;
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    const driver = pod.containers.find((c) => c.name === 'aws-ebs-csi-driver')!;
    expect(argsOf(driver)[0]).toBe('node');
    expect((driver as { securityContext?: { privileged?: boolean } }).securityContext?.privileged).toBe(true);
    const kubelet = driver.volumeMounts!.find((m) => m.mountPath === '/var/lib/kubelet') as
      | { name: string; mountPropagation?: string }
      | undefined;
    expect(kubelet?.mountPropagation).toBe('Bidirectional');
    expect(pod.volumes!.find((v) => v.name === kubelet!.name)?.hostPath?.path).toBe('/var/lib/kubelet');
    const registrar = pod.containers.find((c) => c.name === 'csi-node-driver-registrar')!;
    const env = (registrar as { env?: { name: string; value?: string }[] }).env!;
    expect(env.find((e) => e.name === 'DRIVER_REG_SOCK_PATH')?.value).toBe(
      '/var/lib/kubelet/plugins/ebs.csi.aws.com/csi.sock',
    );
    const reg = registrar.volumeMounts!.find((m) => m.mountPath === '/registration')!;
    expect(pod.volumes!.find((v) => v.name === reg.name)?.hostPath?.path).toBe(
      '/var/lib/kubelet/plugins_registry/',
    );
    const { roles } = rulesFor(play, pod.serviceAccountName!);
    expect(roles).toEqual(['ClusterRole/ebs-csi-node-role']);
  });

  test("StorageClass gp3: the default, the driver's, encrypted with the environment's key, WaitForFirstConsumer, expandable", () => {
    const sc = find(play, 'StorageClass', 'gp3', null) as K8sObject & Record<string, unknown>;
    const defaults = play.objects.filter(
      ({ obj }) =>
        obj.kind === 'StorageClass' &&
        obj.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true',
    );
    expect(defaults.map(({ obj }) => obj.metadata.name)).toEqual(['gp3']);
    expect(sc.provisioner).toBe(find(play, 'CSIDriver', 'ebs.csi.aws.com', null).metadata.name);
    expect(sc.parameters).toEqual({
      type: 'gp3',
      'csi.storage.k8s.io/fstype': 'ext4',
      encrypted: 'true',
      kmsKeyId: bootstrapNames(play.cfg, '123456789012').kmsAlias,
    });
    expect(sc.volumeBindingMode).toBe('WaitForFirstConsumer');
    expect(sc.allowVolumeExpansion).toBe(true);
    expect(sc.reclaimPolicy).toBe('Delete');
  });
});

describe('metrics-server', () => {
  test("kubelet TLS verified against the cluster CA (never --kubelet-insecure-tls); the kubelets' serving certificates come from that CA", async () => {
    const dep = find<Workload>(play, 'Deployment', 'metrics-server');
    const args = argsOf(dep.spec.template.spec.containers[0]!);
    expect(args).toContain(
      '--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    );
    expect(args.filter((a) => a.includes('insecure'))).toEqual([]);
    // the ServiceAccount CA is the cluster CA (kube-controller-manager --root-ca-file), which
    // also signs kubelet serving certificates (--cluster-signing-cert-file)
    const files = await renderTree(manifestsTemplateDir(), play.values);
    const kcm = files.find((f) => f.path === 'secure/manifests/kube-controller-manager.yaml')!.content;
    expect(kcm).toContain('--root-ca-file=/etc/kubernetes/pki/ca.crt');
    expect(kcm).toContain('--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt');
  });

  test('the metrics.k8s.io APIService reaches the Deployment through its Service', () => {
    const api = find(play, 'APIService', 'v1beta1.metrics.k8s.io', null);
    const spec = api.spec as { group: string; version: string; service: { name: string; namespace: string } };
    expect([spec.group, spec.version]).toEqual(['metrics.k8s.io', 'v1beta1']);
    const svc = find(play, 'Service', spec.service.name, spec.service.namespace);
    const svcSpec = svc.spec as {
      selector: Record<string, string>;
      ports: { port: number; targetPort: string }[];
    };
    const dep = find<Workload>(play, 'Deployment', 'metrics-server');
    expect(dep.spec.template.metadata.labels).toEqual(expect.objectContaining(svcSpec.selector));
    const ports = dep.spec.template.spec.containers[0]!.ports!;
    expect(svcSpec.ports.map((p) => ports.find((x) => x.name === p.targetPort)?.containerPort)).toEqual([
      10250,
    ]);
  });

  test('the APIService is verified: caBundle = the Kubernetes CA, no insecureSkipTLSVerify', () => {
    const api = find(play, 'APIService', 'v1beta1.metrics.k8s.io', null);
    const spec = api.spec as Record<string, unknown>;
    expect(spec.insecureSkipTLSVerify).toBeUndefined();
    expect(Buffer.from(String(spec.caBundle), 'base64').toString('utf8')).toBe(FIXTURE_PKI.kubernetesCaPem);
  });

  test("serves the PKI's certificate from the Secret kp-addons makes (no self-signed --cert-dir)", () => {
    const dep = find<Workload>(play, 'Deployment', 'metrics-server');
    const c = dep.spec.template.spec.containers[0]!;
    const args = argsOf(c);
    expect(args).toEqual(
      expect.arrayContaining([
        '--tls-cert-file=/etc/metrics-server/tls/tls.crt',
        '--tls-private-key-file=/etc/metrics-server/tls/tls.key',
      ]),
    );
    expect(args.filter((a) => a.startsWith('--cert-dir'))).toEqual([]);
    const pod = dep.spec.template.spec as unknown as {
      securityContext: { fsGroup?: number };
      volumes: { name: string; secret?: { secretName: string; defaultMode: number } }[];
      containers: { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }[];
    };
    const vol = pod.volumes.find((v) => v.secret)!;
    expect(vol.secret).toEqual({ secretName: 'metrics-server-serving-cert', defaultMode: 0o440 });
    expect(pod.containers[0]!.volumeMounts).toContainEqual({
      name: vol.name,
      mountPath: '/etc/metrics-server/tls',
      readOnly: true,
    });
    expect(pod.securityContext.fsGroup).toBe(1000);
  });

  test('RBAC: node metrics, auth delegation; the view/edit/admin roles may read metrics (kubectl top)', () => {
    const dep = find<Workload>(play, 'Deployment', 'metrics-server');
    const { roles, can } = rulesFor(play, dep.spec.template.spec.serviceAccountName!);
    expect(roles).toEqual([
      'ClusterRole/system:auth-delegator',
      'ClusterRole/system:metrics-server',
      'Role/extension-apiserver-authentication-reader',
    ]);
    expect(can('', 'nodes/metrics', 'get')).toBe(true);
    const reader = find(play, 'ClusterRole', 'system:aggregated-metrics-reader', null);
    for (const r of ['admin', 'edit', 'view'])
      expect(reader.metadata.labels?.[`rbac.authorization.k8s.io/aggregate-to-${r}`]).toBe('true');
  });
});

import { X509Certificate } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { etcdConfigOf, type NodeTemplate, octal, yamlOf } from '../node-files.js';
import type { Finding, PolicyFile, Rule } from '../types.js';

/**
 * CIS Kubernetes Benchmark v1.12 checks (as kube-bench's cis-1.12 runs them) that apply to
 * what this platform renders: the control-plane static pods (secure/manifests/*.yaml), the
 * etcd configuration its masters write at boot and the kubelet configuration and units of
 * every node (both decoded from the planned launch templates' user data).
 * Numbering: kube-bench cfg/cis-1.12 (master.yaml, etcd.yaml, node.yaml).
 */

/** podFlags of each file object, parsed once for all the rules that read it (not to be mutated). */
const parsedFlags = new WeakMap<PolicyFile, { content: string; flags: Map<string, string> | undefined }>();

/**
 * A static pod's first container's command line as flags: `--name=value` → value, `--name` →
 * "true". Parsed once per file object and content (a dozen rules read the same pods); the
 * map returned is shared: read it, never change it.
 */
export function podFlags(file: PolicyFile): Map<string, string> | undefined {
  const seen = parsedFlags.get(file);
  if (seen?.content === file.content) return seen.flags;
  const flags = parsePodFlags(file);
  parsedFlags.set(file, { content: file.content, flags });
  return flags;
}

function parsePodFlags(file: PolicyFile): Map<string, string> | undefined {
  const doc = yamlOf(file.content) as
    | { kind?: string; spec?: { containers?: { command?: unknown[] }[] } }
    | undefined;
  if (doc?.kind !== 'Pod') return undefined;
  const command = doc.spec?.containers?.[0]?.command ?? [];
  const out = new Map<string, string>();
  for (const a of command) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(String(a));
    if (m) out.set(m[1]!, m[2] ?? 'true');
  }
  return out;
}

const STATIC_POD_DIR = 'secure/manifests/';

/** The static pod of a component (kube-apiserver, etcd, …) among the rendered files. */
function component(
  files: PolicyFile[],
  name: string,
): { file: PolicyFile; flags: Map<string, string> } | undefined {
  const file = files.find((f) => f.path === `${STATIC_POD_DIR}${name}.yaml`);
  const flags = file && podFlags(file);
  return file && flags ? { file, flags } : undefined;
}

/** A rule over one component's flags: `bad(flags)` returns what is wrong, or undefined. */
function flagRule(
  base: Omit<Rule, 'needs' | 'check'>,
  components: string[],
  bad: (flags: Map<string, string>, name: string) => { attribute: string; message: string } | undefined,
): Rule {
  return {
    ...base,
    needs: ['manifests'],
    check: ({ manifests }) =>
      components.flatMap((name) => {
        const c = component(manifests, name);
        if (!c) return [];
        const b = bad(c.flags, name);
        return b ? [{ resource: c.file.path, ...b }] : [];
      }),
  };
}

/** The master templates (the ones that write an etcd configuration) and their etcd configs. */
function etcdConfigs(
  nodes: NodeTemplate[],
): { template: NodeTemplate; path: string; config: Record<string, unknown> }[] {
  return nodes.flatMap((t) =>
    t.files.flatMap((f) => {
      const config = etcdConfigOf(f.content);
      return config ? [{ template: t, path: f.path, config }] : [];
    }),
  );
}

function etcdRule(
  base: Omit<Rule, 'needs' | 'check'>,
  bad: (config: Record<string, unknown>) => { attribute: string; message: string }[],
): Rule {
  return {
    ...base,
    needs: ['nodes'],
    check: ({ nodes }) =>
      etcdConfigs(nodes).flatMap(({ template, path, config }) =>
        bad(config).map((b) => ({ resource: `${template.address} ${path}`, ...b })),
      ),
  };
}

const KUBELET_CONFIG = '/var/lib/kubelet/config.yaml';

/** The cluster-mode kubelet configuration of every node template. */
function kubeletConfigs(
  nodes: NodeTemplate[],
): { template: NodeTemplate; config: Record<string, unknown> }[] {
  return nodes.flatMap((t) => {
    const f = t.files.find((x) => x.path === KUBELET_CONFIG);
    const config = f && yamlOf(f.content);
    return config ? [{ template: t, config }] : [];
  });
}

function kubeletRule(
  base: Omit<Rule, 'needs' | 'check'>,
  bad: (config: Record<string, unknown>) => { attribute: string; message: string } | undefined,
): Rule {
  return {
    ...base,
    needs: ['nodes'],
    check: ({ nodes }) =>
      kubeletConfigs(nodes).flatMap(({ template, config }) => {
        const b = bad(config);
        return b ? [{ resource: `${template.address} ${KUBELET_CONFIG}`, ...b }] : [];
      }),
  };
}

const get = (o: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>(
    (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
    o,
  );

const flagIs = (flags: Map<string, string>, name: string, want: string) =>
  flags.get(name) === want
    ? undefined
    : {
        attribute: `--${name}`,
        message: `is ${flags.has(name) ? flags.get(name) : 'unset'}, must be ${want}`,
      };

/** Every document of a rendered YAML file that parses as a mapping (none for other files). */
function objectsOf(file: PolicyFile): Record<string, unknown>[] {
  if (!/\.ya?ml$/.test(file.path)) return [];
  try {
    return parseAllDocuments(file.content).flatMap((d) => {
      const v = d.errors.length === 0 ? (d.toJSON() as unknown) : undefined;
      return v && typeof v === 'object' && !Array.isArray(v) ? [v as Record<string, unknown>] : [];
    });
  } catch {
    return [];
  }
}

/**
 * What is wrong with an APIService's TLS to its Service, or [] when the API server verifies it:
 * no `insecureSkipTLSVerify: true`, and a `caBundle` that is base64 of PEM CA certificates.
 * An APIService without `spec.service` is served by the API server itself (local): no TLS.
 * Source: k8s.io/kube-aggregator APIServiceSpec (caBundle "is a PEM encoded CA bundle which will
 * be used to validate an API server's serving certificate"; insecureSkipTLSVerify "disables
 * TLS certificate verification ... This is strongly discouraged").
 */
export function apiServiceTlsProblems(
  spec: Record<string, unknown>,
): { attribute: string; message: string }[] {
  if (spec.service === undefined || spec.service === null) return [];
  const out: { attribute: string; message: string }[] = [];
  if (spec.insecureSkipTLSVerify === true) {
    out.push({
      attribute: 'spec.insecureSkipTLSVerify',
      message:
        "is true: the API server accepts any certificate from the Service (anyone who can answer on its address serves the group's API)",
    });
  }
  const bundle = spec.caBundle;
  if (typeof bundle !== 'string' || bundle.trim() === '') {
    out.push({
      attribute: 'spec.caBundle',
      message: "is unset: the API server cannot verify the Service's serving certificate",
    });
    return out;
  }
  const pem = /^[A-Za-z0-9+/]+={0,2}$/.test(bundle.trim())
    ? Buffer.from(bundle.trim(), 'base64').toString('utf8')
    : '';
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const cas = blocks.filter((b) => {
    try {
      return new X509Certificate(b).ca;
    } catch {
      return false;
    }
  });
  if (blocks.length === 0 || cas.length !== blocks.length) {
    out.push({
      attribute: 'spec.caBundle',
      message:
        blocks.length === 0
          ? 'is not base64 of PEM certificates'
          : `holds ${blocks.length - cas.length} certificate(s) that are not readable CA certificates`,
    });
  }
  return out;
}

export const kubernetesRules: Rule[] = [
  {
    id: 'cis-k8s-1.1.1',
    severity: 'high',
    title: 'static pod specifications are published with mode 0600 or stricter',
    rationale:
      'The pod specs name every key file; a writable spec lets a local user run any command as root on the master (1.1.1, 1.1.3, 1.1.5, 1.1.7).',
    standard: 'CIS Kubernetes Benchmark v1.12 1.1.1, 1.1.3, 1.1.5, 1.1.7',
    needs: ['manifests'],
    check: ({ manifests }) =>
      manifests
        .filter((f) => f.path.startsWith(STATIC_POD_DIR) && (f.mode & 0o177) !== 0)
        .map((f) => ({
          resource: f.path,
          attribute: 'mode',
          message: `is ${(f.mode & 0o777).toString(8).padStart(4, '0')}, must be 0600 or stricter`,
        })),
  },
  flagRule(
    {
      id: 'cis-k8s-1.2.1',
      severity: 'high',
      title: 'kube-apiserver: --anonymous-auth=false',
      rationale: 'Anonymous requests reach every endpoint RBAC grants to system:unauthenticated.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.2.1',
    },
    ['kube-apiserver'],
    (f) => flagIs(f, 'anonymous-auth', 'false'),
  ),
  flagRule(
    {
      id: 'cis-k8s-1.2.2',
      severity: 'high',
      title: 'kube-apiserver: no --token-auth-file',
      rationale: 'Static tokens never expire and can only be revoked by restarting every API server.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.2.2',
    },
    ['kube-apiserver'],
    (f) =>
      f.has('token-auth-file')
        ? { attribute: '--token-auth-file', message: `is ${f.get('token-auth-file')}` }
        : undefined,
  ),
  flagRule(
    {
      id: 'cis-k8s-1.2.6',
      severity: 'critical',
      title: 'kube-apiserver: --authorization-mode includes Node and RBAC, never AlwaysAllow',
      rationale:
        'AlwaysAllow grants every authenticated request everything; Node limits kubelets to their own objects.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.2.6, 1.2.7, 1.2.8',
    },
    ['kube-apiserver'],
    (f) => {
      const modes = (f.get('authorization-mode') ?? 'AlwaysAllow').split(',');
      if (modes.includes('AlwaysAllow') || !modes.includes('Node') || !modes.includes('RBAC'))
        return {
          attribute: '--authorization-mode',
          message: `is ${modes.join(',')}, must include Node and RBAC`,
        };
      return undefined;
    },
  ),
  flagRule(
    {
      id: 'cis-k8s-1.2.14',
      severity: 'high',
      title: 'kube-apiserver: the NodeRestriction admission plugin is enabled',
      rationale: 'Without it a kubelet may label or modify any Node and the Pods of other nodes.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.2.14',
    },
    ['kube-apiserver'],
    (f) =>
      (f.get('enable-admission-plugins') ?? '').split(',').includes('NodeRestriction')
        ? undefined
        : { attribute: '--enable-admission-plugins', message: 'does not include NodeRestriction' },
  ),
  flagRule(
    {
      id: 'cis-k8s-1.2.15',
      severity: 'medium',
      title: 'control-plane components run with --profiling=false',
      rationale: 'The profiling endpoints reveal internals and cost CPU; they are for debugging only.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.2.15, 1.3.2, 1.4.1',
    },
    ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'],
    (f) => flagIs(f, 'profiling', 'false'),
  ),
  flagRule(
    {
      id: 'cis-k8s-1.2.16',
      severity: 'medium',
      title: 'kube-apiserver keeps an audit log: path, 30 days, 10 files of 100 MB',
      rationale: 'Without an audit trail no incident on the API can be reconstructed.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.2.16, 1.2.17, 1.2.18, 1.2.19',
    },
    ['kube-apiserver'],
    (f) => {
      if (!f.get('audit-log-path'))
        return { attribute: '--audit-log-path', message: 'is unset: no audit log' };
      for (const [flag, min] of [
        ['audit-log-maxage', 30],
        ['audit-log-maxbackup', 10],
        ['audit-log-maxsize', 100],
      ] as const) {
        const v = Number(f.get(flag));
        if (!(v >= min))
          return { attribute: `--${flag}`, message: `is ${f.get(flag) ?? 'unset'}, must be at least ${min}` };
      }
      return undefined;
    },
  ),
  flagRule(
    {
      id: 'cis-k8s-1.2.23',
      severity: 'critical',
      title: 'kube-apiserver reaches etcd over TLS with a client certificate, verified against the etcd CA',
      rationale: 'etcd holds every Secret; without client certificates anyone reaching 2379 reads them.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.2.23, 1.2.26',
    },
    ['kube-apiserver'],
    (f) => {
      for (const flag of ['etcd-certfile', 'etcd-keyfile', 'etcd-cafile'])
        if (!f.get(flag)) return { attribute: `--${flag}`, message: 'is unset' };
      const servers = f.get('etcd-servers') ?? '';
      if (servers.split(',').some((s) => s.startsWith('http://')))
        return { attribute: '--etcd-servers', message: `${servers} includes plain http` };
      return undefined;
    },
  ),
  flagRule(
    {
      id: 'cis-k8s-1.3.3',
      severity: 'medium',
      title: 'kube-controller-manager: --use-service-account-credentials=true',
      rationale:
        "Each controller then runs with its own least-privilege service account instead of the manager's.",
      standard: 'CIS Kubernetes Benchmark v1.12 1.3.3',
    },
    ['kube-controller-manager'],
    (f) => flagIs(f, 'use-service-account-credentials', 'true'),
  ),
  flagRule(
    {
      id: 'cis-k8s-1.3.7',
      severity: 'medium',
      title: 'kube-controller-manager and kube-scheduler bind to 127.0.0.1',
      rationale: 'Their secure ports serve health and metrics only to the node itself.',
      standard: 'CIS Kubernetes Benchmark v1.12 1.3.7, 1.4.2',
    },
    ['kube-controller-manager', 'kube-scheduler'],
    (f) => flagIs(f, 'bind-address', '127.0.0.1'),
  ),
  {
    id: 'cis-k8s-2.3',
    severity: 'high',
    title: 'no etcd self-signed certificates: no --auto-tls or --peer-auto-tls',
    rationale: 'Auto TLS certificates are trusted by nobody and authenticate nothing.',
    standard: 'CIS Kubernetes Benchmark v1.12 2.3, 2.6',
    needs: ['manifests', 'nodes'],
    check: ({ manifests, nodes }) => {
      const out: Finding[] = [];
      const pod = component(manifests, 'etcd');
      for (const flag of ['auto-tls', 'peer-auto-tls'])
        if (pod && pod.flags.get(flag) === 'true')
          out.push({ resource: pod.file.path, attribute: `--${flag}`, message: 'is true' });
      for (const { template, path, config } of etcdConfigs(nodes))
        for (const section of ['client-transport-security', 'peer-transport-security'])
          if (get(config, section, 'auto-tls') === true)
            out.push({
              resource: `${template.address} ${path}`,
              attribute: `${section}.auto-tls`,
              message: 'is true',
            });
      return out;
    },
  },
  etcdRule(
    {
      id: 'cis-k8s-2.2',
      severity: 'critical',
      title: 'etcd serves clients over TLS and requires client certificates (client-cert-auth)',
      rationale:
        'Without client-cert-auth any host that reaches 2379 reads and writes the whole cluster state.',
      standard: 'CIS Kubernetes Benchmark v1.12 2.1, 2.2',
    },
    (c) => {
      const out: { attribute: string; message: string }[] = [];
      const s = 'client-transport-security';
      for (const k of ['cert-file', 'key-file'])
        if (!get(c, s, k)) out.push({ attribute: `${s}.${k}`, message: 'is unset' });
      if (get(c, s, 'client-cert-auth') !== true)
        out.push({ attribute: `${s}.client-cert-auth`, message: 'is not true' });
      const urls = String(c['listen-client-urls'] ?? '');
      if (urls.split(',').some((u) => u.startsWith('http://')))
        out.push({ attribute: 'listen-client-urls', message: `${urls} includes plain http` });
      return out;
    },
  ),
  etcdRule(
    {
      id: 'cis-k8s-2.5',
      severity: 'critical',
      title: 'etcd peers use TLS and authenticate each other (peer client-cert-auth)',
      rationale: 'Otherwise any host that reaches 2380 can join the cluster as a member.',
      standard: 'CIS Kubernetes Benchmark v1.12 2.4, 2.5',
    },
    (c) => {
      const out: { attribute: string; message: string }[] = [];
      const s = 'peer-transport-security';
      for (const k of ['cert-file', 'key-file'])
        if (!get(c, s, k)) out.push({ attribute: `${s}.${k}`, message: 'is unset' });
      if (get(c, s, 'client-cert-auth') !== true)
        out.push({ attribute: `${s}.client-cert-auth`, message: 'is not true' });
      return out;
    },
  ),
  {
    id: 'cis-k8s-2.7',
    severity: 'high',
    title: 'etcd trusts its own CA, not the Kubernetes CA',
    rationale:
      'With a shared CA every certificate the cluster CA signs (kubelets, users) is also an etcd client certificate.',
    standard: 'CIS Kubernetes Benchmark v1.12 2.7',
    needs: ['manifests', 'nodes'],
    check: ({ manifests, nodes }) => {
      const api = component(manifests, 'kube-apiserver');
      const clusterCa = api?.flags.get('client-ca-file');
      const out: Finding[] = [];
      for (const { template, path, config } of etcdConfigs(nodes)) {
        for (const section of ['client-transport-security', 'peer-transport-security']) {
          const ca = get(config, section, 'trusted-ca-file');
          if (!ca)
            out.push({
              resource: `${template.address} ${path}`,
              attribute: `${section}.trusted-ca-file`,
              message: 'is unset',
            });
          else if (clusterCa !== undefined && ca === clusterCa)
            out.push({
              resource: `${template.address} ${path}`,
              attribute: `${section}.trusted-ca-file`,
              message: `is ${String(ca)}, the Kubernetes CA (kube-apiserver --client-ca-file)`,
            });
        }
      }
      return out;
    },
  },
  {
    id: 'cis-k8s-4.1.1',
    severity: 'medium',
    title: 'kubelet configuration and its systemd drop-ins are written with mode 0600 or stricter',
    rationale: "Whoever can edit the kubelet's configuration can turn off its authentication.",
    standard: 'CIS Kubernetes Benchmark v1.12 4.1.1, 4.1.9',
    needs: ['nodes'],
    check: ({ nodes }) =>
      nodes.flatMap((t) =>
        t.files
          .filter(
            (f) =>
              f.path.startsWith('/var/lib/kubelet/') ||
              f.path.startsWith('/etc/systemd/system/kubelet.service.d/'),
          )
          .filter((f) => !((octal(f.permissions) & 0o177) === 0))
          .map((f) => ({
            resource: `${t.address} ${f.path}`,
            attribute: 'permissions',
            message: `is ${f.permissions}, must be 0600 or stricter`,
          })),
      ),
  },
  {
    id: 'kp-apiservice-tls-verified',
    severity: 'high',
    title:
      "aggregated APIServices (metrics.k8s.io) verify their Service's TLS: a caBundle, no insecureSkipTLSVerify",
    rationale:
      "The API server forwards requests to an aggregated API with its front-proxy client certificate and the caller's identity in headers; without verification a pod that answers on the Service's address (or a spoofed endpoint) receives them and serves forged metrics to the HPAs.",
    standard:
      'kube-platform DESIGN.md §7 (TLS verified everywhere, no insecure-skip-tls-verify); Kubernetes docs, "Configure the Aggregation Layer" (caBundle)',
    needs: ['manifests'],
    check: ({ manifests }) =>
      manifests.flatMap((file) =>
        objectsOf(file)
          .filter(
            (o) =>
              o.kind === 'APIService' && String(o.apiVersion ?? '').startsWith('apiregistration.k8s.io/'),
          )
          .flatMap((o) => {
            const name = String((o.metadata as { name?: unknown } | undefined)?.name ?? '');
            const spec = o.spec && typeof o.spec === 'object' ? (o.spec as Record<string, unknown>) : {};
            return apiServiceTlsProblems(spec).map((p) => ({
              resource: `${file.path} APIService/${name}`,
              ...p,
            }));
          }),
      ),
  },
  kubeletRule(
    {
      id: 'cis-k8s-4.2.1',
      severity: 'high',
      title: 'kubelet: anonymous authentication disabled',
      rationale: 'The kubelet API runs commands in pods; anonymous access to it is node takeover.',
      standard: 'CIS Kubernetes Benchmark v1.12 4.2.1',
    },
    (c) =>
      get(c, 'authentication', 'anonymous', 'enabled') === false
        ? undefined
        : { attribute: 'authentication.anonymous.enabled', message: 'is not false' },
  ),
  kubeletRule(
    {
      id: 'cis-k8s-4.2.2',
      severity: 'critical',
      title: 'kubelet: authorization mode Webhook, not AlwaysAllow',
      rationale: 'AlwaysAllow lets every authenticated caller exec into every pod on the node.',
      standard: 'CIS Kubernetes Benchmark v1.12 4.2.2',
    },
    (c) =>
      get(c, 'authorization', 'mode') === 'Webhook'
        ? undefined
        : {
            attribute: 'authorization.mode',
            message: `is ${String(get(c, 'authorization', 'mode') ?? 'unset')}`,
          },
  ),
  kubeletRule(
    {
      id: 'cis-k8s-4.2.3',
      severity: 'high',
      title: 'kubelet: client certificates verified against the cluster CA (x509.clientCAFile)',
      rationale: "Without it the API server's client certificate cannot authenticate to the kubelet.",
      standard: 'CIS Kubernetes Benchmark v1.12 4.2.3',
    },
    (c) =>
      get(c, 'authentication', 'x509', 'clientCAFile')
        ? undefined
        : { attribute: 'authentication.x509.clientCAFile', message: 'is unset' },
  ),
  kubeletRule(
    {
      id: 'cis-k8s-4.2.4',
      severity: 'high',
      title: 'kubelet: the read-only port is off (readOnlyPort: 0)',
      rationale: 'Port 10255 serves pod specs and metrics without any authentication.',
      standard: 'CIS Kubernetes Benchmark v1.12 4.2.4',
    },
    (c) =>
      c.readOnlyPort === 0
        ? undefined
        : { attribute: 'readOnlyPort', message: `is ${String(c.readOnlyPort ?? 'unset (10255)')}` },
  ),
  kubeletRule(
    {
      id: 'cis-k8s-4.2.10',
      severity: 'medium',
      title: 'kubelet: client certificate rotation on (rotateCertificates: true)',
      rationale: 'A kubelet whose certificate expires drops out of the cluster; rotation renews it before.',
      standard: 'CIS Kubernetes Benchmark v1.12 4.2.10',
    },
    (c) =>
      c.rotateCertificates === true
        ? undefined
        : { attribute: 'rotateCertificates', message: `is ${String(c.rotateCertificates ?? 'unset')}` },
  ),
];

import type { PkiPlan } from './plan.js';
import type { CertProfile } from './x509.js';

/**
 * Where every PKI file lives, relative to the secrets root, and what each certificate must
 * say. Pure: no I/O. A node maps `<layer>/<rest>` to `/etc/kubernetes/<rest>` (manifest-sync),
 * so the paths below `secure/` and `common/` are kubeadm's /etc/kubernetes layout
 * (https://kubernetes.io/docs/setup/best-practices/certificates/).
 *
 * Layers (DESIGN.md §4): common = every node, secure = masters/etcd, compute = workers,
 * locked = operators only. The Kubernetes CA key is in `secure`, not `locked`, because
 * kube-controller-manager signs kubelet client certificates with it (the CSR signer,
 * `--cluster-signing-key-file`); kubeadm keeps it on the masters too. The cost: whoever
 * owns a master can mint any Kubernetes identity. The etcd and front-proxy CA keys are
 * not needed by any running component, so they are `locked`.
 *
 * Every master also receives every etcd member's server and peer keys (the whole
 * `secure/pki/etcd/members/`): the masters are one trust domain, accepted because a master
 * already holds more than those keys give (the Kubernetes CA key above, the API server's etcd
 * client key, which reads and writes all of etcd, and its own member's full copy of the data).
 * Another member's key lets a master impersonate that member only from that member's ENI
 * address. Separating them would need a layer, an encryption context and an IAM role per
 * member (src/secrets/README.md, "Trust domains").
 */

/** The three separate CAs (kubeadm's ca, etcd-ca, front-proxy-ca). */
export type CaId = 'kubernetes' | 'etcd' | 'front-proxy';

export interface CaSpec {
  id: CaId;
  /** subject CommonName, as kubeadm */
  cn: string;
  /** certificate path */
  cert: string;
  /** private key path */
  key: string;
}

export const CAS: Record<CaId, CaSpec> = {
  kubernetes: { id: 'kubernetes', cn: 'kubernetes', cert: 'secure/pki/ca.crt', key: 'secure/pki/ca.key' },
  etcd: { id: 'etcd', cn: 'etcd-ca', cert: 'secure/pki/etcd/ca.crt', key: 'locked/pki/etcd/ca.key' },
  'front-proxy': {
    id: 'front-proxy',
    cn: 'front-proxy-ca',
    cert: 'secure/pki/front-proxy-ca.crt',
    key: 'locked/pki/front-proxy-ca.key',
  },
};

/** Fixed paths of files that are not certificate pairs. */
export const PATHS = {
  /** copy of the Kubernetes CA certificate for every node (kubelet `clientCAFile`, kube-proxy) */
  commonCa: 'common/pki/ca.crt',
  /** service-account token signing key (kube-controller-manager `--service-account-private-key-file`, apiserver `--service-account-signing-key-file`) */
  saKey: 'secure/pki/sa.key',
  /** its public half (apiserver `--service-account-key-file`) */
  saPub: 'secure/pki/sa.pub',
  /** kube-apiserver `--token-auth-file` holding the kubelet bootstrap token */
  bootstrapTokenCsv: 'secure/bootstrap-token.csv',
  /** workers' kubelet `--bootstrap-kubeconfig`, through the internal load balancer */
  workerBootstrapKubeconfig: 'compute/bootstrap-kubelet.conf',
  /** masters' kubelet `--bootstrap-kubeconfig`, to the local apiserver */
  masterBootstrapKubeconfig: 'secure/bootstrap-kubelet.conf',
  /** the add-on applier's kubeconfig on masters (kp-addons.service), see {@link ADDON_MANAGER_USER} */
  addonsKubeconfig: 'secure/addons.conf',
  /** metrics-server's serving certificate, see {@link metricsServerNames} */
  metricsServerCert: 'secure/pki/metrics-server.crt',
  /** its key: kp-addons on the masters puts both into the Secret kube-system/metrics-server-serving-cert */
  metricsServerKey: 'secure/pki/metrics-server.key',
} as const;

/**
 * The names of metrics-server's serving certificate (issued by the Kubernetes CA, serverAuth).
 * The API server's aggregation layer reaches an APIService's Service as
 * `<service>.<namespace>.svc` and verifies the certificate against the APIService's `caBundle`
 * for that name (k8s.io/kube-aggregator pkg/apiserver/handler_proxy.go, the proxy's TLS `ServerName:
 * apiService.Spec.Service.Name + "." + apiService.Spec.Service.Namespace + ".svc"`); the fully qualified name is there for
 * clients inside the cluster that resolve the Service by it.
 *
 * @param clusterDomain the cluster DNS domain, e.g. `cluster.local`
 * @returns the DNS SANs, e.g. `metrics-server.kube-system.svc`,
 *   `metrics-server.kube-system.svc.cluster.local`
 */
export function metricsServerNames(clusterDomain: string): string[] {
  return ['metrics-server.kube-system.svc', `metrics-server.kube-system.svc.${clusterDomain}`];
}

/** The SSH key pair of the environment: private key for operators, public key for every node. */
export function sshPaths(environment: string): { privateKey: string; publicKey: string } {
  return { privateKey: `locked/ssh/${environment}`, publicKey: `common/ssh/${environment}.pub` };
}

/** A leaf certificate kept as a `.crt`/`.key` pair. */
export interface PairSpec {
  kind: 'pair';
  /** short name for messages, e.g. `apiserver` */
  name: string;
  ca: CaId;
  cert: string;
  key: string;
  profile: CertProfile;
}

/** A leaf certificate kept only inside a kubeconfig (client-certificate-data/client-key-data). */
export interface KubeconfigSpec {
  kind: 'kubeconfig';
  name: string;
  ca: CaId;
  path: string;
  /** apiserver URL */
  server: string;
  profile: CertProfile;
}

export type LeafSpec = PairSpec | KubeconfigSpec;

/** The apiserver on the same master (kubeadm's controlPlaneEndpoint for local components). */
export const LOCAL_APISERVER = 'https://127.0.0.1:6443';

/**
 * kubeadm ≥ 1.29 group bound to the cluster-admin ClusterRole by the ClusterRoleBinding
 * `kubeadm:cluster-admins` (which must exist for admin.conf and the apiserver→kubelet
 * client to be authorized); `system:masters` is kept for the break-glass super-admin.conf
 * only (https://kubernetes.io/docs/setup/best-practices/certificates/, kubeadm v1.29 release notes).
 */
export const CLUSTER_ADMINS_GROUP = 'kubeadm:cluster-admins';
export const MASTERS_GROUP = 'system:masters';

/**
 * The cluster add-on applier on the masters: `kp-addons.service` (cloud-init, master.yaml.tftpl)
 * runs `kubectl --kubeconfig /etc/kubernetes/addons.conf apply --server-side -R -f
 * /etc/kubernetes/addons/` against the local API server. The user name is this CN; the
 * manifests it applies are platform/manifests/secure/addons/.
 *
 * Why `system:masters` (RBAC bypassed, not revocable short of rotating the CA): the first
 * add-ons are the RBAC objects themselves (the kubelet TLS-bootstrapping bindings,
 * `kubeadm:cluster-admins`), and only a superuser can create a binding before any binding
 * exists; RBAC forbids granting permissions one does not hold (privilege-escalation
 * prevention, https://kubernetes.io/docs/reference/access-authn-authz/rbac/#privilege-escalation-prevention-and-bootstrapping).
 * kubeadm does the same step with super-admin.conf (also `system:masters`) on the master.
 * It adds no power where it lives: the file is in the `secure` layer, on masters only,
 * which already hold the Kubernetes CA key (`secure/pki/ca.key`) and could mint this
 * identity or any other. The operators' break-glass `locked/super-admin.conf` is not
 * shipped to nodes for this: the applier gets its own certificate (CN names it in the
 * audit log) and its own file.
 */
export const ADDON_MANAGER_USER = 'kube-platform:addon-manager';

const client = (cn: string, o: string[] = []): CertProfile => ({
  cn,
  o,
  usages: ['clientAuth'],
  dns: [],
  ips: [],
});

/**
 * Every leaf certificate of a plan: pairs, then kubeconfigs with client certificates.
 * Subjects, usages and SANs follow kubeadm (cmd/kubeadm/app/phases/certs/certlist.go).
 */
export function leafSpecs(plan: PkiPlan): LeafSpec[] {
  const d = plan.clusterDomain;
  const pairs: PairSpec[] = [
    {
      kind: 'pair',
      name: 'apiserver',
      ca: 'kubernetes',
      cert: 'secure/pki/apiserver.crt',
      key: 'secure/pki/apiserver.key',
      profile: {
        cn: 'kube-apiserver',
        o: [],
        usages: ['serverAuth'],
        dns: [
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          `kubernetes.default.svc.${d}`,
          plan.kubeapiInternalName,
          plan.kubeapiPublicName,
          'localhost',
        ],
        ips: [plan.kubernetesServiceIp, '127.0.0.1'],
      },
    },
    {
      kind: 'pair',
      name: 'apiserver-kubelet-client',
      ca: 'kubernetes',
      cert: 'secure/pki/apiserver-kubelet-client.crt',
      key: 'secure/pki/apiserver-kubelet-client.key',
      profile: client('kube-apiserver-kubelet-client', [CLUSTER_ADMINS_GROUP]),
    },
    {
      kind: 'pair',
      name: 'front-proxy-client',
      ca: 'front-proxy',
      cert: 'secure/pki/front-proxy-client.crt',
      key: 'secure/pki/front-proxy-client.key',
      profile: client('front-proxy-client'),
    },
    {
      kind: 'pair',
      name: 'apiserver-etcd-client',
      ca: 'etcd',
      cert: 'secure/pki/apiserver-etcd-client.crt',
      key: 'secure/pki/apiserver-etcd-client.key',
      profile: client('kube-apiserver-etcd-client'),
    },
    {
      kind: 'pair',
      name: 'metrics-server',
      ca: 'kubernetes',
      cert: PATHS.metricsServerCert,
      key: PATHS.metricsServerKey,
      profile: {
        cn: 'metrics-server',
        o: [],
        usages: ['serverAuth'],
        dns: metricsServerNames(plan.clusterDomain),
        ips: [],
      },
    },
  ];
  for (const m of plan.etcdMembers) {
    const dir = `secure/pki/etcd/members/${m.name}`;
    // etcd ≥ 3.2 also checks clientAuth on the server certificate (etcd-io/etcd#9785), hence both usages.
    pairs.push(
      {
        kind: 'pair',
        name: `etcd ${m.name} server`,
        ca: 'etcd',
        cert: `${dir}/server.crt`,
        key: `${dir}/server.key`,
        profile: {
          cn: m.name,
          o: [],
          usages: ['serverAuth', 'clientAuth'],
          dns: [m.dnsName, m.name, 'localhost'],
          ips: [m.ip, '127.0.0.1'],
        },
      },
      {
        kind: 'pair',
        name: `etcd ${m.name} peer`,
        ca: 'etcd',
        cert: `${dir}/peer.crt`,
        key: `${dir}/peer.key`,
        profile: {
          cn: m.name,
          o: [],
          usages: ['serverAuth', 'clientAuth'],
          dns: [m.dnsName, m.name],
          ips: [m.ip],
        },
      },
    );
  }
  const publicApi = `https://${plan.kubeapiPublicName}:443`;
  const kubeconfigs: KubeconfigSpec[] = [
    {
      kind: 'kubeconfig',
      name: 'controller-manager',
      ca: 'kubernetes',
      path: 'secure/controller-manager.conf',
      server: LOCAL_APISERVER,
      profile: client('system:kube-controller-manager'),
    },
    {
      kind: 'kubeconfig',
      name: 'scheduler',
      ca: 'kubernetes',
      path: 'secure/scheduler.conf',
      server: LOCAL_APISERVER,
      profile: client('system:kube-scheduler'),
    },
    {
      kind: 'kubeconfig',
      name: 'addon-manager',
      ca: 'kubernetes',
      path: PATHS.addonsKubeconfig,
      server: LOCAL_APISERVER,
      profile: client(ADDON_MANAGER_USER, [MASTERS_GROUP]), // see ADDON_MANAGER_USER for why system:masters
    },
    {
      kind: 'kubeconfig',
      name: 'admin',
      ca: 'kubernetes',
      path: 'locked/admin.conf',
      server: publicApi,
      profile: client('kubernetes-admin', [CLUSTER_ADMINS_GROUP]),
    },
    {
      kind: 'kubeconfig',
      name: 'super-admin',
      ca: 'kubernetes',
      path: 'locked/super-admin.conf',
      server: publicApi,
      profile: client('kubernetes-super-admin', [MASTERS_GROUP]),
    },
  ];
  return [...pairs, ...kubeconfigs];
}

/** The bootstrap-token kubeconfigs: path and apiserver URL. */
export function bootstrapKubeconfigs(plan: PkiPlan): { path: string; server: string }[] {
  return [
    { path: PATHS.workerBootstrapKubeconfig, server: `https://${plan.kubeapiInternalName}:443` },
    { path: PATHS.masterBootstrapKubeconfig, server: LOCAL_APISERVER },
  ];
}

import { X509Certificate } from 'node:crypto';
import { parseCidr } from '../config/cidr.js';
import type { EnvConfig } from '../config/load.js';
import { clusterDnsIp, etcdMembers, kubernetesServiceIp } from '../config/topology.js';
import { UserError, ValidationError } from '../errors.js';

/**
 * The values the control-plane templates in platform/manifests see: everything a template
 * may reference, derived from a validated {@link EnvConfig} and src/config/topology.ts only.
 * Handlebars runs in strict mode, so a template that names anything not listed here fails to
 * render (UserError, exit 2) instead of rendering an empty string.
 */

/** Registry of every control-plane image (the Kubernetes project's registry since 2023). */
export const IMAGE_REGISTRY = 'registry.k8s.io';

/**
 * Well-known ports of the control plane (kubeadm's constants, cmd/kubeadm/app/constants).
 * All TCP.
 */
export interface ControlPlanePorts {
  /** kube-apiserver secure port, `--secure-port` @default 6443 */
  apiserver: number;
  /** kube-controller-manager secure port (HTTPS, self-signed serving cert) @default 10257 */
  controllerManager: number;
  /** kube-scheduler secure port (HTTPS, self-signed serving cert) @default 10259 */
  scheduler: number;
  /** etcd client port (HTTPS, client certificates required) @default 2379 */
  etcdClient: number;
  /** etcd peer port (HTTPS, peer certificates required) @default 2380 */
  etcdPeer: number;
  /**
   * etcd's metrics/health listener (`listen-metrics-urls: http://127.0.0.1:2381`), the
   * kubelet probe target as in kubeadm: loopback only, serves /metrics, /health, /livez and
   * /readyz, never the key-value API. @default 2381
   */
  etcdMetrics: number;
}

/** Full image references of the four static pods, e.g. `registry.k8s.io/kube-apiserver:v1.34.2`. */
export interface ControlPlaneImages {
  /** `registry.k8s.io/etcd:<etcd version without v>-0` (the `-0` is the image build revision) */
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  /** `registry.k8s.io/kube-proxy:<kubernetesVersion>` (the kube-proxy add-on's DaemonSet) */
  kubeProxy: string;
}

/** One etcd member as the templates see it. */
export interface ManifestEtcdMember {
  /** member name, `etcd-<index>` (also the directory of its certificates under pki/etcd/members/) */
  name: string;
  /** fixed private IPv4 address of the member's ENI */
  ip: string;
  /** `etcd-<index>.<private zone>`, a SAN of the member's server certificate */
  dnsName: string;
  /** `https://<ip>:2379` */
  clientUrl: string;
  /** `https://<ip>:2380` */
  peerUrl: string;
}

/**
 * What the templates need of the environment's PKI (src/secrets/pki): public certificates
 * only, never a key. Keys reach the cluster by other ways (manifest-sync into
 * /etc/kubernetes/pki on the masters; kp-addons makes metrics-server's Secret from there).
 */
export interface ManifestPki {
  /**
   * the Kubernetes CA certificate, PEM (secure/pki/ca.crt as it is or as the PKI step will
   * write it: PkiChanges.caCertificates.kubernetes)
   */
  kubernetesCaPem: string;
}

/** Everything the templates under platform/manifests may use. */
export interface ManifestValues {
  /** environment name, e.g. `play-alice`; the controller-manager's `--cluster-name` */
  environment: string;
  /** Kubernetes release, `vX.Y.Z`, e.g. `v1.34.2` */
  kubernetesVersion: string;
  /** etcd release, `vX.Y.Z`, e.g. `v3.6.4` */
  etcdVersion: string;
  /** `registry.k8s.io` */
  imageRegistry: string;
  /** tag of the etcd image: the etcd version without `v`, plus `-0`, e.g. `3.6.4-0` */
  etcdImageTag: string;
  images: ControlPlaneImages;
  /** Service range (IPv4 CIDR), `--service-cluster-ip-range` */
  serviceCidr: string;
  /** Pod range (IPv4 CIDR), the controller-manager's `--cluster-cidr` */
  podCidr: string;
  /** prefix length of each node's slice of {@link podCidr}, `--node-cidr-mask-size` (kubeadm: 24) */
  nodeCidrMaskSize: number;
  /** cluster DNS domain, e.g. `cluster.local` */
  clusterDomain: string;
  /** internal API name, `kube.<private zone>` */
  kubeapiInternalName: string;
  /**
   * `https://<kubeapiInternalName>:443`: the internal API load balancer, for clients that
   * cannot use the `kubernetes` Service (kube-proxy programs it)
   */
  kubeapiInternalUrl: string;
  /** public API name, `kube-<env>.<public zone>` */
  kubeapiPublicName: string;
  /** first address of the Service range: the `kubernetes` Service's cluster IP */
  kubernetesServiceIp: string;
  /** tenth address of the Service range: the cluster DNS Service IP */
  clusterDnsIp: string;
  /** `https://<kubeapiInternalName>`, the service-account token issuer (`iss` claim) */
  serviceAccountIssuer: string;
  /** every etcd member, in member index order */
  etcdMembers: ManifestEtcdMember[];
  /** client URL of every member (`https://<ip>:2379`), in member order: kube-apiserver's `--etcd-servers` */
  etcdServers: string[];
  ports: ControlPlanePorts;
  /**
   * the Kubernetes CA certificate as base64 of its PEM: an APIService's `spec.caBundle`
   * (bytes, base64 in YAML), which the API server verifies metrics-server's serving
   * certificate against (that certificate is issued by this CA, secure/pki/metrics-server.crt)
   */
  kubernetesCaBundle: string;
}

/** kubeadm's default node CIDR size for IPv4 (kube-controller-manager `--node-cidr-mask-size`). */
const NODE_CIDR_MASK_SIZE = 24;

const PORTS: ControlPlanePorts = {
  apiserver: 6443,
  controllerManager: 10257,
  scheduler: 10259,
  etcdClient: 2379,
  etcdPeer: 2380,
  etcdMetrics: 2381,
};

/**
 * Builds the template values of an environment. Pure: no I/O.
 *
 * etcd members are addressed by their fixed ENI IP rather than their DNS name: the IP is a
 * SAN of each member's server certificate as well, and the control plane then does not
 * depend on the private Route53 zone to come up.
 *
 * @param cfg a validated environment (parseEnvironment / loadEnvironment)
 * @param pki the public certificates the templates embed (see {@link ManifestPki})
 * @returns the values; a fresh object on every call
 * @throws UserError (exit 2) when `pki.kubernetesCaPem` is not one PEM certificate of a CA
 * @throws ValidationError (exit 2) naming the environment file and POD_CIDR when the pod range
 *   cannot give every possible node (MASTER_COUNT + WORKER_MAX) its own /24: the
 *   controller-manager would leave the extra nodes without a pod range (NotReady).
 *   Source: kube-controller-manager reference, `--node-cidr-mask-size` (default 24 for IPv4).
 */
export function manifestValues(cfg: EnvConfig, pki: ManifestPki): ManifestValues {
  const caBundle = caBundleOf(pki.kubernetesCaPem);
  const pod = parseCidr(cfg.podCidr);
  const maxNodes = cfg.masters.count + cfg.workers.max;
  const slices = pod && pod.bits <= NODE_CIDR_MASK_SIZE ? 2 ** (NODE_CIDR_MASK_SIZE - pod.bits) : 0;
  if (slices < maxNodes) {
    throw new ValidationError(`${cfg.file}: POD_CIDR too small for the environment`, [
      {
        file: cfg.file,
        key: 'POD_CIDR',
        message:
          `${cfg.podCidr} holds ${slices} node pod ranges of /${NODE_CIDR_MASK_SIZE}, but up to ${maxNodes} ` +
          'nodes may run (MASTER_COUNT + WORKER_MAX); use a larger range',
      },
    ]);
  }
  const etcdTag = `${cfg.etcdVersion.replace(/^v/, '')}-0`;
  const members = etcdMembers(cfg).map((m) => ({
    name: m.name,
    ip: m.ip,
    dnsName: m.dnsName,
    clientUrl: `https://${m.ip}:${PORTS.etcdClient}`,
    peerUrl: `https://${m.ip}:${PORTS.etcdPeer}`,
  }));
  return {
    environment: cfg.name,
    kubernetesVersion: cfg.kubernetesVersion,
    etcdVersion: cfg.etcdVersion,
    imageRegistry: IMAGE_REGISTRY,
    etcdImageTag: etcdTag,
    images: {
      etcd: `${IMAGE_REGISTRY}/etcd:${etcdTag}`,
      kubeApiserver: `${IMAGE_REGISTRY}/kube-apiserver:${cfg.kubernetesVersion}`,
      kubeControllerManager: `${IMAGE_REGISTRY}/kube-controller-manager:${cfg.kubernetesVersion}`,
      kubeScheduler: `${IMAGE_REGISTRY}/kube-scheduler:${cfg.kubernetesVersion}`,
      kubeProxy: `${IMAGE_REGISTRY}/kube-proxy:${cfg.kubernetesVersion}`,
    },
    serviceCidr: cfg.serviceCidr,
    podCidr: cfg.podCidr,
    nodeCidrMaskSize: NODE_CIDR_MASK_SIZE,
    clusterDomain: cfg.clusterDomain,
    kubeapiInternalName: cfg.kubeapiInternalName,
    kubeapiInternalUrl: `https://${cfg.kubeapiInternalName}:443`,
    kubeapiPublicName: cfg.kubeapiPublicName,
    kubernetesServiceIp: kubernetesServiceIp(cfg),
    clusterDnsIp: clusterDnsIp(cfg),
    serviceAccountIssuer: `https://${cfg.kubeapiInternalName}`,
    etcdMembers: members,
    etcdServers: members.map((m) => m.clientUrl),
    ports: { ...PORTS },
    kubernetesCaBundle: caBundle,
  };
}

/**
 * base64 of a CA certificate's PEM, after checking it is exactly one certificate with
 * `CA:TRUE` (a leaf or a key here would make every aggregated API call fail, or leak).
 * @throws UserError naming what is wrong, never the content
 */
function caBundleOf(pem: string): string {
  const blocks = pem.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? [];
  if (blocks.length !== 1 || blocks[0] !== '-----BEGIN CERTIFICATE-----') {
    throw new UserError(
      `the Kubernetes CA for the manifests must be one PEM certificate, found ${blocks.length} PEM block(s)${blocks.length ? ` (${[...new Set(blocks)].join(', ')})` : ''}`,
    );
  }
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(pem);
  } catch {
    throw new UserError('the Kubernetes CA for the manifests is not a readable X.509 certificate');
  }
  if (!ca.ca) throw new UserError('the Kubernetes CA for the manifests is not a CA certificate (CA:FALSE)');
  return Buffer.from(pem.endsWith('\n') ? pem : `${pem}\n`, 'utf8').toString('base64');
}

import type { AsgRow, InstanceRow } from '../aws/inventory.js';
import type { NodeInfo, PodInfo } from '../kube/api.js';
import type { NodeStatus } from '../secrets/status.js';
import type { CertificateRecord } from '../state/schema.js';

/**
 * `validate`'s checks, pure (issue 13 item 1): is the cluster healthy, not just synced?
 * Each check turns a snapshot of the cluster — ASGs and instances (EC2), Nodes and Pods
 * (the Kubernetes API), each master's own report (its agent's status record with the
 * local etcd member's and API server's health), the secure layer's generation and the
 * certificates recorded in the cluster state — into failures that name what failed: the
 * node, pod, member or certificate.
 *
 * Checks follow kops `validate cluster` (pkg/validation/validate_cluster.go) and add what
 * kops cannot see: etcd from each member's own report, agents' generations, certificate
 * expiry, and the Kubernetes version skew policy (kubernetes.io/releases/version-skew-policy).
 */

/** Everything one validation looks at. */
export interface ClusterSnapshot {
  now: Date;
  asgs: AsgRow[];
  /** the environment's instances (listInstances: terminated ones left out) */
  instances: InstanceRow[];
  nodes: NodeInfo[];
  pods: PodInfo[];
  /** the masters' agents' status records, by instance id */
  masterStatuses: Record<string, NodeStatus>;
  /** the secure layer's current index generation */
  secureGeneration: number;
  /** certificates from the cluster state */
  certificates: CertificateRecord[];
  /** etcd member name by instance id (cluster state member map), for messages */
  memberOf?: Record<string, string>;
}

export type CheckId =
  | 'api'
  | 'asg'
  | 'node-joined'
  | 'node-ready'
  | 'control-plane'
  | 'critical-pod'
  | 'etcd'
  | 'apiserver'
  | 'generation'
  | 'certificate'
  | 'skew';

/** One failure: which check, what it is about, the operator's message. */
export interface Failure {
  check: CheckId;
  /** the node, pod, member, certificate or ASG concerned */
  subject: string;
  message: string;
}

export interface ValidateLimits {
  /** certificates must stay valid this many days @default 30 */
  certDays: number;
  /** a master's health report older than this many seconds is stale @default 180 */
  healthMaxAgeS: number;
}

export const DEFAULT_LIMITS: ValidateLimits = { certDays: 30, healthMaxAgeS: 180 };

/** The static pods every master runs (their mirror pods live in kube-system). */
export const CONTROL_PLANE = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'etcd'] as const;

const CRITICAL = new Set(['system-node-critical', 'system-cluster-critical']);
const DAY_MS = 86_400_000;

function running(i: InstanceRow): boolean {
  return i.state === 'running';
}

/** The Node of an instance: by providerID instance id, else by InternalIP. */
export function nodeOf(i: InstanceRow, nodes: NodeInfo[]): NodeInfo | undefined {
  return (
    nodes.find((n) => n.instanceId === i.instanceId) ??
    (i.privateIp ? nodes.find((n) => n.internalIp === i.privateIp) : undefined)
  );
}

function label(i: InstanceRow): string {
  return `${i.instanceId}${i.name ? ` (${i.name}${i.privateIp ? `, ${i.privateIp}` : ''})` : ''}`;
}

/** `v1.34.1` / `registry.k8s.io/kube-apiserver:v1.34.1` → [1, 34, 1]; undefined when not a version. */
export function parseKubeVersion(s: string | null | undefined): [number, number, number] | undefined {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(s?.split(':').at(-1) ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function componentPod(pods: PodInfo[], node: string, component: string): PodInfo | undefined {
  return pods.find(
    (p) =>
      p.namespace === 'kube-system' &&
      p.nodeName === node &&
      (p.labels.component === component || p.name === `${component}-${node}`),
  );
}

function checkAsgs(s: ClusterSnapshot, out: Failure[]): void {
  const byId = new Map(s.instances.map((i) => [i.instanceId, i]));
  for (const g of s.asgs) {
    const up = g.instances.filter((id) => {
      const i = byId.get(id);
      return i && running(i);
    }).length;
    if (up < g.desired) {
      out.push({
        check: 'asg',
        subject: g.name,
        message: `ASG ${g.name}: ${up} of ${g.desired} desired instances running`,
      });
    }
  }
}

function checkNodes(s: ClusterSnapshot, out: Failure[]): void {
  for (const i of s.instances.filter((x) => running(x) && x.layer !== 'bastion' && x.layer !== null)) {
    if (!nodeOf(i, s.nodes)) {
      out.push({
        check: 'node-joined',
        subject: i.instanceId,
        message: `instance ${label(i)} has not joined the cluster as a Node`,
      });
    }
  }
  for (const n of s.nodes) {
    if (!n.ready)
      out.push({
        check: 'node-ready',
        subject: n.name,
        message: `node ${n.name} is NotReady (${n.notReadyReason})`,
      });
    if (n.networkUnavailable) {
      out.push({
        check: 'node-ready',
        subject: n.name,
        message: `node ${n.name}: NetworkUnavailable is True (no pod network)`,
      });
    }
  }
}

function checkControlPlane(s: ClusterSnapshot, out: Failure[]): void {
  for (const m of s.instances.filter((x) => running(x) && x.layer === 'secure')) {
    const node = nodeOf(m, s.nodes);
    if (!node) continue; // named by node-joined
    for (const c of CONTROL_PLANE) {
      const pod = componentPod(s.pods, node.name, c);
      if (!pod) {
        out.push({
          check: 'control-plane',
          subject: node.name,
          message: `master ${node.name}: no ${c} pod in kube-system`,
        });
      } else if (!pod.ready || pod.phase !== 'Running') {
        out.push({
          check: 'control-plane',
          subject: `kube-system/${pod.name}`,
          message: `master ${node.name}: pod kube-system/${pod.name} is ${pod.phase}${pod.ready ? '' : ', not Ready'}`,
        });
      }
    }
  }
  for (const p of s.pods) {
    if (!p.priorityClassName || !CRITICAL.has(p.priorityClassName) || p.phase === 'Succeeded') continue;
    if (p.ready && p.phase === 'Running') continue;
    if (p.labels.component && (CONTROL_PLANE as readonly string[]).includes(p.labels.component)) continue; // named above
    out.push({
      check: 'critical-pod',
      subject: `${p.namespace}/${p.name}`,
      message: `pod ${p.namespace}/${p.name} (${p.priorityClassName}) is ${p.phase}${p.ready ? '' : ', not Ready'}${p.nodeName ? ` on ${p.nodeName}` : ', not scheduled'}`,
    });
  }
}

function checkMasterReports(s: ClusterSnapshot, limits: ValidateLimits, out: Failure[]): void {
  const masters = s.instances.filter((x) => running(x) && x.layer === 'secure');
  const leaders: string[] = [];
  const versions = new Map<string, string[]>();
  for (const m of masters) {
    const member = s.memberOf?.[m.instanceId] ?? `on ${m.instanceId}`;
    const who = `etcd member ${member}${s.memberOf?.[m.instanceId] ? ` (${m.instanceId})` : ''}`;
    const st = s.masterStatuses[m.instanceId];
    if (!st) {
      out.push({
        check: 'generation',
        subject: m.instanceId,
        message: `master ${label(m)}: its agent has not reported`,
      });
      out.push({ check: 'etcd', subject: member, message: `${who}: no health report` });
      continue;
    }
    if (st.generation < s.secureGeneration) {
      out.push({
        check: 'generation',
        subject: m.instanceId,
        message: `master ${label(m)}: agent at generation ${st.generation}, the secure layer is at ${s.secureGeneration}`,
      });
    } else if (st.error) {
      out.push({
        check: 'generation',
        subject: m.instanceId,
        message: `master ${label(m)}: agent error: ${st.error}`,
      });
    }
    const e = st.health?.etcd;
    if (!e) {
      out.push({ check: 'etcd', subject: member, message: `${who}: no health report` });
    } else {
      const age = (s.now.getTime() - Date.parse(e.checkedAt)) / 1000;
      if (age > limits.healthMaxAgeS) {
        out.push({
          check: 'etcd',
          subject: member,
          message: `${who}: health report is ${Math.round(age)} s old`,
        });
      } else if (!e.healthy) {
        out.push({
          check: 'etcd',
          subject: member,
          message: `${who} is unhealthy: ${e.reason || 'no reason given'}`,
        });
      } else {
        if (e.hasLeader === false)
          out.push({ check: 'etcd', subject: member, message: `${who} has no leader` });
        if (e.isLeader) leaders.push(member);
        if (e.version) versions.set(e.version, [...(versions.get(e.version) ?? []), member]);
      }
    }
    const a = st.health?.apiserver;
    if (a && !a.ready && (s.now.getTime() - Date.parse(a.checkedAt)) / 1000 <= limits.healthMaxAgeS) {
      out.push({
        check: 'apiserver',
        subject: m.instanceId,
        message: `kube-apiserver on ${label(m)} is not ready: ${a.detail}`,
      });
    }
  }
  const healthyReports = masters.length && !out.some((f) => f.check === 'etcd');
  if (healthyReports && leaders.length !== 1) {
    out.push({
      check: 'etcd',
      subject: 'etcd',
      message:
        leaders.length === 0
          ? 'etcd: no member reports being the leader'
          : `etcd: ${leaders.length} members report being the leader: ${leaders.join(', ')}`,
    });
  }
  if (versions.size > 1) {
    out.push({
      check: 'etcd',
      subject: 'etcd',
      message: `etcd: members run different versions: ${[...versions].map(([v, ms]) => `${v} (${ms.join(', ')})`).join('; ')}`,
    });
  }
}

function checkCertificates(s: ClusterSnapshot, limits: ValidateLimits, out: Failure[]): void {
  for (const c of s.certificates) {
    const left = (Date.parse(c.notAfter) - s.now.getTime()) / DAY_MS;
    if (left < limits.certDays) {
      out.push({
        check: 'certificate',
        subject: c.path,
        message:
          left < 0
            ? `certificate ${c.path} (${c.subject}) expired on ${c.notAfter}`
            : `certificate ${c.path} (${c.subject}) expires in ${Math.floor(left)} days (${c.notAfter}), less than ${limits.certDays}`,
      });
    }
  }
}

/**
 * Version skew (kubernetes.io/releases/version-skew-policy): kube-apiservers within one
 * minor of each other; kube-controller-manager and kube-scheduler not newer than the
 * oldest kube-apiserver and at most one minor older; kubelets not newer than the oldest
 * kube-apiserver and at most three minors older.
 */
function checkSkew(s: ClusterSnapshot, out: Failure[]): void {
  const version = (p: PodInfo) => parseKubeVersion(p.image);
  const api = s.pods.filter((p) => p.namespace === 'kube-system' && p.labels.component === 'kube-apiserver');
  const apiMinors = api
    .map(version)
    .filter((v): v is [number, number, number] => Boolean(v))
    .map((v) => v[1]);
  if (!apiMinors.length) return;
  const oldest = Math.min(...apiMinors);
  const newest = Math.max(...apiMinors);
  if (newest - oldest > 1) {
    out.push({
      check: 'skew',
      subject: 'kube-apiserver',
      message: `kube-apiserver versions span 1.${oldest} to 1.${newest}: more than one minor apart`,
    });
  }
  for (const p of s.pods.filter(
    (x) =>
      x.namespace === 'kube-system' &&
      ['kube-controller-manager', 'kube-scheduler'].includes(x.labels.component ?? ''),
  )) {
    const v = version(p);
    if (!v) continue;
    if (v[1] > oldest || v[1] < oldest - 1) {
      out.push({
        check: 'skew',
        subject: `kube-system/${p.name}`,
        message: `pod kube-system/${p.name} runs 1.${v[1]}, outside 1.${oldest - 1}–1.${oldest} allowed by the oldest kube-apiserver (version skew policy)`,
      });
    }
  }
  for (const n of s.nodes) {
    const v = parseKubeVersion(n.kubeletVersion);
    if (!v) continue;
    if (v[1] > oldest || v[1] < oldest - 3) {
      out.push({
        check: 'skew',
        subject: n.name,
        message: `node ${n.name}: kubelet ${n.kubeletVersion} is outside 1.${oldest - 3}–1.${oldest} allowed by the oldest kube-apiserver (version skew policy)`,
      });
    }
  }
}

/**
 * Runs every check on a snapshot.
 * @returns the failures, in check order (empty: the cluster is healthy)
 */
export function validateSnapshot(s: ClusterSnapshot, limits: ValidateLimits = DEFAULT_LIMITS): Failure[] {
  const out: Failure[] = [];
  checkAsgs(s, out);
  checkNodes(s, out);
  checkControlPlane(s, out);
  checkMasterReports(s, limits, out);
  checkCertificates(s, limits, out);
  checkSkew(s, out);
  return out;
}

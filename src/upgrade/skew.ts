import semver from 'semver';

/**
 * `upgrade --to` preflight: the Kubernetes version-skew policy and etcd's upgrade rules as
 * a pure function of the versions the cluster runs and the target. Each rule has an id and
 * its source; a violation of a `refuse` rule stops the upgrade before anything changes.
 *
 * Sources (cited per rule below):
 *   [skew]    https://kubernetes.io/releases/version-skew-policy/
 *   [kubeadm] cmd/kubeadm/app/phases/upgrade/policy.go (MaximumAllowedMinorVersionUpgradeSkew = 1,
 *             no downgrade of more than one minor, none at all across a minor here) and
 *             cmd/kubeadm/app/constants/constants.go (SupportedEtcdVersion)
 *   [etcd36]  https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/ ("before upgrading to 3.6 ...
 *             every member must run 3.5.26 or later"); etcd upgrades one minor at a time
 *             (https://etcd.io/docs/v3.6/upgrades/)
 */

/** What runs now (versions as `vX.Y.Z`; a node or member that reports none is left out). */
export interface ClusterVersions {
  /** kube-apiserver of every master */
  apiServers: string[];
  /** kube-controller-manager and kube-scheduler of every master */
  controllerManagers?: string[];
  schedulers?: string[];
  /** kubelet of every node, masters and workers */
  kubelets: string[];
  /** etcd of every member */
  etcdMembers: string[];
  /** kubectl in the build container */
  kubectl?: string;
}

export interface UpgradeTarget {
  kubernetes: string;
  /** the etcd the target runs (the environment's ETCD_VERSION) */
  etcd: string;
}

export type RuleId =
  | 'version-format'
  | 'kube-minor-skip'
  | 'kube-downgrade'
  | 'apiserver-ha-skew'
  | 'kubelet-newer-than-apiserver'
  | 'kubelet-too-old'
  | 'control-plane-newer-than-apiserver'
  | 'etcd-pairing'
  | 'etcd-downgrade'
  | 'etcd-minor-skip'
  | 'etcd-3.6-needs-3.5.26'
  | 'kubectl-skew';

export interface Finding {
  rule: RuleId;
  severity: 'refuse' | 'warn';
  message: string;
  source: string;
}

const SKEW = 'https://kubernetes.io/releases/version-skew-policy/';
const KUBEADM = 'kubeadm cmd/kubeadm/app/phases/upgrade/policy.go';
const KUBEADM_ETCD = 'kubeadm cmd/kubeadm/app/constants/constants.go SupportedEtcdVersion';
const ETCD36 = 'https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/';
const ETCD_UPG = 'https://etcd.io/docs/v3.6/upgrades/';

/**
 * The etcd minor kubeadm pairs with each Kubernetes minor (SupportedEtcdVersion: 1.31–1.33
 * ship 3.5.x, 1.34 and 1.35 ship 3.6.x).
 */
export const ETCD_FOR_KUBERNETES: Readonly<Record<string, string>> = {
  '1.30': '3.5',
  '1.31': '3.5',
  '1.32': '3.5',
  '1.33': '3.5',
  '1.34': '3.6',
  '1.35': '3.6',
};

/** The minimum 3.5 patch every member must run before a rolling upgrade to 3.6 [etcd36]. */
export const ETCD_35_MIN_FOR_36 = '3.5.26';

const minorOf = (v: string) => `${semver.major(v)}.${semver.minor(v)}`;
const minorDistance = (a: string, b: string) =>
  (semver.major(a) - semver.major(b)) * 1000 + semver.minor(a) - semver.minor(b);
const lowest = (vs: string[]) => [...vs].sort(semver.compare)[0];
const highest = (vs: string[]) => [...vs].sort(semver.rcompare)[0];

/**
 * Checks an upgrade of `current` to `target` against the skew policy. Pure.
 * @returns every finding (refusals and warnings), in rule order; empty = go
 */
export function preflight(current: ClusterVersions, target: UpgradeTarget): Finding[] {
  const out: Finding[] = [];
  const refuse = (rule: RuleId, message: string, source: string) =>
    out.push({ rule, severity: 'refuse', message, source });
  const bad = [
    target.kubernetes,
    target.etcd,
    ...current.apiServers,
    ...(current.controllerManagers ?? []),
    ...(current.schedulers ?? []),
    ...current.kubelets,
    ...current.etcdMembers,
    ...(current.kubectl ? [current.kubectl] : []),
  ].filter((v) => !/^v\d+\.\d+\.\d+$/.test(v) || !semver.valid(v));
  if (bad.length) {
    refuse('version-format', `not a release vX.Y.Z: ${[...new Set(bad)].join(', ')}`, SKEW);
    return out;
  }
  if (current.apiServers.length === 0) {
    refuse('version-format', 'no API server reported its version', SKEW);
    return out;
  }
  const to = target.kubernetes;
  const oldestApi = lowest(current.apiServers)!;
  const newestApi = highest(current.apiServers)!;

  // [skew] "kube-apiserver instances ... must be within one minor version"; an upgrade goes
  // from the oldest API server, so an HA cluster already spread over two minors can only finish.
  if (minorDistance(newestApi, oldestApi) > 1) {
    refuse(
      'apiserver-ha-skew',
      `API servers run ${oldestApi} and ${newestApi}: more than one minor apart`,
      SKEW,
    );
  }
  // [kubeadm] no downgrade: the target must not be older than any API server
  if (semver.lt(to, newestApi)) {
    refuse(
      'kube-downgrade',
      `${to} is older than the API server at ${newestApi}: downgrades are not supported`,
      KUBEADM,
    );
  }
  // [skew] "upgrade ... must not skip minor versions"; [kubeadm] MaximumAllowedMinorVersionUpgradeSkew = 1
  if (semver.major(to) !== semver.major(oldestApi) || minorDistance(to, oldestApi) > 1) {
    refuse(
      'kube-minor-skip',
      `${oldestApi} → ${to} skips a minor: upgrade one minor at a time (${oldestApi} → v${semver.major(oldestApi)}.${semver.minor(oldestApi) + 1}.x first)`,
      `${SKEW}; ${KUBEADM}`,
    );
  }
  // [skew] kubelet "must not be newer than kube-apiserver" and "may be up to three minor
  // versions older" (1.28+). The kubelets keep their version while the API servers move.
  for (const k of [...new Set(current.kubelets)]) {
    if (semver.gt(k, to) && minorDistance(k, to) >= 1) {
      refuse(
        'kubelet-newer-than-apiserver',
        `a kubelet runs ${k}, newer than the target API server ${to}`,
        SKEW,
      );
    }
    if (minorDistance(to, k) > 3) {
      refuse(
        'kubelet-too-old',
        `a kubelet runs ${k}: more than three minors older than ${to}; roll the workers to a newer kubelet first`,
        SKEW,
      );
    }
  }
  // [skew] kube-controller-manager and kube-scheduler "must not be newer than the
  // kube-apiserver instances they communicate with"
  for (const [what, vs] of [
    ['kube-controller-manager', current.controllerManagers ?? []],
    ['kube-scheduler', current.schedulers ?? []],
  ] as const) {
    for (const v of [...new Set(vs)]) {
      if (semver.gt(v, oldestApi) && minorDistance(v, oldestApi) >= 1) {
        refuse(
          'control-plane-newer-than-apiserver',
          `${what} runs ${v}, newer than the API server at ${oldestApi}`,
          SKEW,
        );
      }
    }
  }
  // [kubeadm] the etcd paired with the target minor
  const paired = ETCD_FOR_KUBERNETES[minorOf(to)];
  if (!paired) {
    refuse('etcd-pairing', `no etcd pairing is known for Kubernetes ${minorOf(to)}`, KUBEADM_ETCD);
  } else if (minorOf(target.etcd) !== paired) {
    refuse(
      'etcd-pairing',
      `Kubernetes ${minorOf(to)} runs etcd ${paired}.x (kubeadm), not ${target.etcd}`,
      KUBEADM_ETCD,
    );
  }
  // [etcd] no downgrade; one minor at a time; 3.5 → 3.6 only from ≥ 3.5.26 on every member
  for (const m of [...new Set(current.etcdMembers)]) {
    if (semver.lt(target.etcd, m) && minorDistance(m, target.etcd) >= 1) {
      refuse('etcd-downgrade', `an etcd member runs ${m}: ${target.etcd} would be a downgrade`, ETCD_UPG);
    }
    if (minorDistance(target.etcd, m) > 1) {
      refuse('etcd-minor-skip', `an etcd member runs ${m}: etcd upgrades one minor at a time`, ETCD_UPG);
    }
    if (minorOf(target.etcd) === '3.6' && minorOf(m) === '3.5' && semver.lt(m, ETCD_35_MIN_FOR_36)) {
      refuse(
        'etcd-3.6-needs-3.5.26',
        `an etcd member runs ${m}: every member must run ${ETCD_35_MIN_FOR_36} or later before 3.6`,
        ETCD36,
      );
    }
  }
  // [skew] "kubectl is supported within one minor version (older or newer) of kube-apiserver"
  if (current.kubectl && Math.abs(minorDistance(current.kubectl, to)) > 1) {
    out.push({
      rule: 'kubectl-skew',
      severity: 'warn',
      message: `kubectl in the container is ${current.kubectl}: more than one minor from ${to}`,
      source: SKEW,
    });
  }
  return out;
}

import type { ManifestValues } from '../manifests/values.js';
import { PHASES, type Phase } from './phases.js';
import type { UpgradeTarget } from './skew.js';

/**
 * How the target version reaches the rendered manifests during `upgrade --to` (README
 * "### upgrade"): the secure layer is rendered from the environment file as `run` renders
 * it, except for the images of the control-plane components, which each get the version
 * their phase allows. The environment file keeps the versions the upgrade started from
 * until the control plane runs the target everywhere; then the upgrade writes the target
 * into it (KUBERNETES_VERSION, ETCD_VERSION), so a later `run` renders what runs, and the
 * workers' launch templates (Terraform) take the target kubelet.
 *
 * Order (https://kubernetes.io/releases/version-skew-policy/#supported-component-upgrade-order):
 *
 *   phase        etcd     kube-apiserver  controller-manager, scheduler, kube-proxy  kubelet (workers)
 *   etcd         target   from            from                                       from
 *   apiservers   target   target          from                                       from
 *   controllers  target   target          target                                     from
 *   workers      target   target          target                                     target
 *
 * so controller-manager and scheduler never run newer than any API server, and kube-proxy
 * (which "must not be newer than kube-apiserver") moves with them.
 */

/** Component → version, as the cluster state's upgrade record keeps it (`desired`). */
export interface ComponentVersions {
  etcd: string;
  'kube-apiserver': string;
  'kube-controller-manager': string;
  'kube-scheduler': string;
  'kube-proxy': string;
  kubelet: string;
}

const ORDER: Phase[] = ['etcd', 'apiservers', 'controllers', 'workers'];

/**
 * The version each component has once `phase` has been applied (the phase itself included).
 * Phases outside the table (preflight, snapshot, validate-*) change nothing: they get the
 * versions of the last changing phase before them. Pure.
 */
export function versionsAfter(
  phase: Phase | null,
  from: UpgradeTarget,
  target: UpgradeTarget,
): ComponentVersions {
  const reached = (p: Phase) => {
    if (phase === null) return false;
    return PHASES.indexOf(phase) >= PHASES.indexOf(p) && ORDER.includes(p);
  };
  const k = (p: Phase) => (reached(p) ? target.kubernetes : from.kubernetes);
  return {
    etcd: reached('etcd') ? target.etcd : from.etcd,
    'kube-apiserver': k('apiservers'),
    'kube-controller-manager': k('controllers'),
    'kube-scheduler': k('controllers'),
    'kube-proxy': k('controllers'),
    kubelet: k('workers'),
  };
}

/**
 * `values` (manifestValues of the environment) with the images of `versions`: only the
 * image references change, so the rendered secure layer differs from the published one in
 * exactly the components whose version moved. Pure; a new object.
 */
export function stagedValues(values: ManifestValues, versions: ComponentVersions): ManifestValues {
  const reg = values.imageRegistry;
  const etcdTag = `${versions.etcd.replace(/^v/, '')}-0`;
  return {
    ...values,
    etcdVersion: versions.etcd,
    etcdImageTag: etcdTag,
    images: {
      ...values.images,
      etcd: `${reg}/etcd:${etcdTag}`,
      kubeApiserver: `${reg}/kube-apiserver:${versions['kube-apiserver']}`,
      kubeControllerManager: `${reg}/kube-controller-manager:${versions['kube-controller-manager']}`,
      kubeScheduler: `${reg}/kube-scheduler:${versions['kube-scheduler']}`,
      kubeProxy: `${reg}/kube-proxy:${versions['kube-proxy']}`,
    },
  };
}

/**
 * The secure-layer files each control-plane phase may change (layer-relative paths): a
 * render that changes anything else is refused, so an upgrade never carries an unrelated
 * change of the environment file to the masters.
 */
export const PHASE_FILES: Readonly<Record<'etcd' | 'apiservers' | 'controllers', readonly string[]>> = {
  etcd: ['manifests/etcd.yaml'],
  apiservers: ['manifests/kube-apiserver.yaml'],
  controllers: [
    'manifests/kube-controller-manager.yaml',
    'manifests/kube-scheduler.yaml',
    'addons/kube-proxy/daemon-set.yaml',
  ],
};

/**
 * Sets `KEY=value` lines of a dotenv text: replaces each key's line in place, appends the
 * keys it does not hold. Pure. Comments and other lines are kept byte for byte.
 */
export function setEnvKeys(text: string, keys: Record<string, string>): string {
  let out = text;
  for (const [k, v] of Object.entries(keys)) {
    const re = new RegExp(`^${k}=.*$`, 'm');
    if (re.test(out)) out = out.replace(re, `${k}=${v}`);
    else out = `${out}${out === '' || out.endsWith('\n') ? '' : '\n'}${k}=${v}\n`;
  }
  return out;
}

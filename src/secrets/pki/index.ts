/**
 * PKI and kubeconfigs of an environment (the "secrets done right" issue, part 1):
 * separate Kubernetes, etcd and front-proxy CAs, kubeadm-compatible leaves, kubeconfigs
 * that verify TLS, a kubelet bootstrap token generated once, and the SSH key pair.
 * See README.md beside this file for the layout and the tradeoffs.
 */
export {
  applyPki,
  type EnsureOptions,
  type EnsureResult,
  ensurePki,
  type PkiChanges,
  type PkiWrite,
  planPki,
} from './ensure.js';
export { checkExpiry, DEFAULT_WARN_DAYS, type Expiring } from './expiry.js';
export { parseKubeconfig, renderKubeconfig } from './kubeconfig.js';
export {
  ADDON_MANAGER_USER,
  bootstrapKubeconfigs,
  CAS,
  LOCAL_APISERVER,
  leafSpecs,
  MASTERS_GROUP,
  metricsServerNames,
  PATHS,
  sshPaths,
} from './layout.js';
export { DEFAULT_CA_DAYS, DEFAULT_LEAF_DAYS, type PkiPlan, pkiPlanFor, validatePlan } from './plan.js';
export { BOOTSTRAP_TOKEN_RE } from './token.js';

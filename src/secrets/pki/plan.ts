import { isIP } from 'node:net';
import type { EnvConfig } from '../../config/load.js';
import { DNS_NAME_RE, ENV_NAME_RE } from '../../config/schema.js';
import { etcdMembers, kubernetesServiceIp } from '../../config/topology.js';
import { type Problem, ValidationError } from '../../errors.js';

/** What the PKI of one environment is made for: names, addresses and lifetimes. */
export interface PkiPlan {
  /** environment name: names the kubeconfig cluster/context and the SSH key (`-C <env>`) */
  environment: string;
  /** cluster DNS domain, e.g. `cluster.local` (apiserver SAN kubernetes.default.svc.<domain>) */
  clusterDomain: string;
  /** cluster IP of the `kubernetes` Service: the first address of SERVICE_CIDR, e.g. 10.32.0.1 */
  kubernetesServiceIp: string;
  /** internal API name behind the internal load balancer, `kube.<private zone>` (port 443) */
  kubeapiInternalName: string;
  /** public API name, `kube-<env>.<public zone>` (port 443): the admin kubeconfigs' server */
  kubeapiPublicName: string;
  /** etcd members (one per master); each gets a server and a peer certificate */
  etcdMembers: { name: string; ip: string; dnsName: string }[];
  /** lifetime of new CA certificates in days @default 3650 (10 years, as kubeadm) */
  caDays?: number;
  /** lifetime of new leaf certificates in days @default 365 (1 year, as kubeadm) */
  leafDays?: number;
}

/** Default CA lifetime in days (kubeadm: 10 years). */
export const DEFAULT_CA_DAYS = 3650;
/** Default leaf lifetime in days (kubeadm: 1 year). */
export const DEFAULT_LEAF_DAYS = 365;
/** Longest lifetime accepted for any certificate, in days (100 years). */
export const MAX_DAYS = 36_500;

/** An etcd member name becomes a directory (`secure/pki/etcd/members/<name>/`): one DNS label. */
const MEMBER_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The PKI plan of a validated environment: names from the environment file, the service IP
 * (first address of SERVICE_CIDR) and the etcd members from src/config/topology.ts.
 * Lifetimes are left to their defaults.
 */
export function pkiPlanFor(cfg: EnvConfig): PkiPlan {
  return {
    environment: cfg.name,
    clusterDomain: cfg.clusterDomain,
    kubernetesServiceIp: kubernetesServiceIp(cfg),
    kubeapiInternalName: cfg.kubeapiInternalName,
    kubeapiPublicName: cfg.kubeapiPublicName,
    etcdMembers: etcdMembers(cfg).map(({ name, ip, dnsName }) => ({ name, ip, dnsName })),
  };
}

/**
 * Checks a plan before anything is generated (names end up in SANs, kubeconfigs and file
 * paths, so they are held to DNS-name / IP / label syntax).
 *
 * @returns the lifetimes to use, defaults applied
 * @throws ValidationError (UserError, exit 2) listing every bad field as `pki plan: <key>: ...`
 */
export function validatePlan(plan: PkiPlan): { caDays: number; leafDays: number } {
  const problems: Problem[] = [];
  const at = (key: string, message: string) => problems.push({ file: 'pki plan', key, message });
  if (!ENV_NAME_RE.test(plan.environment))
    at('environment', `${JSON.stringify(plan.environment)} is not an environment name`);
  for (const key of ['clusterDomain', 'kubeapiInternalName', 'kubeapiPublicName'] as const) {
    if (!DNS_NAME_RE.test(plan[key])) at(key, `${JSON.stringify(plan[key])} is not a lower-case DNS name`);
  }
  if (isIP(plan.kubernetesServiceIp) === 0) {
    at('kubernetesServiceIp', `${JSON.stringify(plan.kubernetesServiceIp)} is not an IP address`);
  }
  if (plan.etcdMembers.length === 0) at('etcdMembers', 'lists no member');
  const seen = new Set<string>();
  plan.etcdMembers.forEach((m, i) => {
    const key = `etcdMembers[${i}]`;
    if (!MEMBER_NAME_RE.test(m.name)) at(`${key}.name`, `${JSON.stringify(m.name)} is not a DNS label`);
    else if (seen.has(m.name)) at(`${key}.name`, `${m.name} is listed twice`);
    seen.add(m.name);
    if (isIP(m.ip) === 0) at(`${key}.ip`, `${JSON.stringify(m.ip)} is not an IP address`);
    if (!DNS_NAME_RE.test(m.dnsName))
      at(`${key}.dnsName`, `${JSON.stringify(m.dnsName)} is not a lower-case DNS name`);
  });
  const caDays = plan.caDays ?? DEFAULT_CA_DAYS;
  const leafDays = plan.leafDays ?? DEFAULT_LEAF_DAYS;
  for (const [key, v] of [
    ['caDays', caDays],
    ['leafDays', leafDays],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_DAYS)
      at(key, `${v} must be a whole number of days, 1..${MAX_DAYS}`);
  }
  if (leafDays > caDays)
    at('leafDays', `${leafDays} exceeds caDays (${caDays}): a leaf cannot outlive its CA`);
  if (problems.length) throw new ValidationError('invalid PKI plan', problems);
  return { caDays, leafDays };
}

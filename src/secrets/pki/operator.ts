import { UserError } from '../../errors.js';
import { renderKubeconfig } from './kubeconfig.js';
import { CLUSTER_ADMINS_GROUP } from './layout.js';
import {
  CLOCK_SKEW_MS,
  certificatePem,
  issueLeaf,
  newEcKey,
  parseCertificate,
  parsePrivateKey,
  privateKeyPem,
} from './x509.js';

/**
 * Per-operator, short-lived cluster credentials (`export-kubeconfig`): a client
 * certificate for the operator's own name, signed by the Kubernetes CA, in the group
 * `kubeadm:cluster-admins` (bound to cluster-admin by the add-on
 * `cluster-admins/cluster-role-binding`), valid for hours, not a year — as
 * `kops export kubecfg --admin` (default 18 h). Kubernetes takes the user name from the
 * certificate's CN and the groups from its O values ("Authenticating: X509 client
 * certificates"); the audit log then names the operator, not a shared `kubernetes-admin`.
 */

/** Default lifetime: kops' `--admin` default, 18 hours. */
export const DEFAULT_LIFETIME_S = 18 * 3600;
/** Longest lifetime accepted: a week (the shared admin.conf is the long-lived break-glass). */
export const MAX_LIFETIME_S = 7 * 86_400;
/** The group every operator certificate carries besides the cluster-admins group. */
export const OPERATORS_GROUP = 'kube-platform:operators';

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * Parses a lifetime in the ssh time format (sshd_config(5) TIME FORMATS: numbers with an
 * optional unit s, m, h, d or w, repeated: `18h`, `90m`, `1h30m`, `3600`).
 * @returns seconds, 1 to {@link MAX_LIFETIME_S}
 * @throws UserError (exit 2) for anything else
 */
export function parseLifetimeS(value: string): number {
  const parts = [...value.matchAll(/(\d+)([smhdwSMHDW]?)/g)];
  if (!/^(\d+[smhdwSMHDW]?)+$/.test(value) || parts.length === 0) {
    throw new UserError(`--lifetime ${value}: must be a time such as 18h, 90m or 1h30m`);
  }
  const s = parts.reduce((t, m) => t + Number(m[1]) * UNIT_S[(m[2] || 's').toLowerCase()]!, 0);
  if (s < 1 || s > MAX_LIFETIME_S) {
    throw new UserError(`--lifetime ${value}: must be between 1 second and ${MAX_LIFETIME_S / 86_400} days`);
  }
  return s;
}

/**
 * The operator's name from the AWS identity ARN: the IAM user name, or the session name of
 * an assumed role (SSO sessions carry the person's login there), or the role name.
 * @returns a Kubernetes user name: [A-Za-z0-9._@+=,-], at most 64 characters
 * @throws UserError when the ARN yields no usable name (the root user is refused)
 */
export function operatorName(arn: string): string {
  const resource = arn.split(':').slice(5).join(':');
  const [kind, ...rest] = resource.split('/');
  let name: string | undefined;
  if (kind === 'user') name = rest.at(-1);
  else if (kind === 'assumed-role') name = rest[1] ?? rest[0];
  else if (kind === 'role' || kind === 'federated-user') name = rest.at(-1);
  if (!name || resource === 'root' || !/^[A-Za-z0-9._@+=,-]{1,64}$/.test(name)) {
    throw new UserError(`cannot derive an operator name from the AWS identity ${arn}`, {
      hint: 'act as an IAM user or an assumed role (not the account root)',
    });
  }
  return name;
}

/** What {@link issueOperatorKubeconfig} made. */
export interface OperatorCredential {
  /** kubeconfig text: cluster, user `<name>@<env>`, context `<env>` */
  kubeconfig: string;
  /** the Kubernetes user name (the certificate's CN) */
  user: string;
  groups: string[];
  notBefore: Date;
  notAfter: Date;
}

/**
 * Issues a client certificate for `name`, signed by the Kubernetes CA, and wraps it in a
 * kubeconfig. notBefore is back-dated by {@link CLOCK_SKEW_MS}; notAfter is `now +
 * lifetimeS` (whole seconds), never after the CA's own notAfter.
 * @param o.caCertPem/o.caKeyPem the Kubernetes CA (secure/pki/ca.crt, secure/pki/ca.key)
 * @throws IntegrityError when the CA files are not a certificate and its key
 */
export async function issueOperatorKubeconfig(o: {
  environment: string;
  name: string;
  server: string;
  caCertPem: string;
  caKeyPem: string;
  lifetimeS: number;
  caWhere: string;
  now?: Date;
}): Promise<OperatorCredential> {
  const now = o.now ?? new Date();
  const ca = parseCertificate(o.caCertPem, `${o.caWhere}/ca.crt`);
  const caKey = parsePrivateKey(o.caKeyPem, `${o.caWhere}/ca.key`);
  const sec = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);
  const notBefore = sec(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = sec(Math.min(now.getTime() + o.lifetimeS * 1000, ca.notAfter.getTime()));
  const key = await newEcKey();
  const groups = [CLUSTER_ADMINS_GROUP, OPERATORS_GROUP];
  const cert = await issueLeaf(
    { cert: ca, key: caKey, where: `${o.caWhere}/ca.key` },
    key,
    { cn: o.name, o: groups, usages: ['clientAuth'], dns: [], ips: [] },
    { notBefore, notAfter },
  );
  const kubeconfig = renderKubeconfig({
    environment: o.environment,
    server: o.server,
    caPem: o.caCertPem,
    user: `${o.name}@${o.environment}`,
    auth: { clientCertPem: certificatePem(cert), clientKeyPem: privateKeyPem(key) },
  });
  return { kubeconfig, user: o.name, groups, notBefore, notAfter };
}

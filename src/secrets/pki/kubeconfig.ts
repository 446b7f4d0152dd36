import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { IntegrityError } from '../../errors.js';

/**
 * Kubeconfig files (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/,
 * clientcmd v1 `Config`): one cluster, one user, one context. The CA certificate and the
 * client certificate/key are embedded (`*-data`, base64 of the PEM); TLS is always verified
 * (there is no insecure-skip-tls-verify in what we write, and a file holding it is refused).
 * Output is deterministic: the same input gives the same bytes.
 */

/** How the user authenticates: a client certificate or a bearer token (bootstrap token). */
export type KubeconfigAuth = { clientCertPem: string; clientKeyPem: string } | { token: string };

export interface KubeconfigInput {
  /** environment name: names the cluster and the context */
  environment: string;
  /** apiserver URL, e.g. https://127.0.0.1:6443 */
  server: string;
  /** PEM of the CA that signed the apiserver certificate */
  caPem: string;
  /** user name inside the file, e.g. kubernetes-admin@prod */
  user: string;
  auth: KubeconfigAuth;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** Renders a kubeconfig as YAML. */
export function renderKubeconfig(input: KubeconfigInput): string {
  const user =
    'token' in input.auth
      ? { token: input.auth.token }
      : {
          'client-certificate-data': b64(input.auth.clientCertPem),
          'client-key-data': b64(input.auth.clientKeyPem),
        };
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: input.environment,
        cluster: { 'certificate-authority-data': b64(input.caPem), server: input.server },
      },
    ],
    contexts: [{ name: input.environment, context: { cluster: input.environment, user: input.user } }],
    'current-context': input.environment,
    preferences: {},
    users: [{ name: input.user, user }],
  };
  return stringify(doc, { lineWidth: 0 });
}

const kubeconfigSchema = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('Config'),
  clusters: z.array(
    z.object({
      name: z.string(),
      cluster: z.looseObject({
        server: z.string(),
        'certificate-authority-data': z.string().optional(),
        'insecure-skip-tls-verify': z.boolean().optional(),
      }),
    }),
  ),
  contexts: z.array(
    z.object({ name: z.string(), context: z.looseObject({ cluster: z.string(), user: z.string() }) }),
  ),
  'current-context': z.string(),
  users: z.array(
    z.object({
      name: z.string(),
      user: z.looseObject({
        'client-certificate-data': z.string().optional(),
        'client-key-data': z.string().optional(),
        token: z.string().optional(),
      }),
    }),
  ),
});

/** What a kubeconfig holds for its current context (PEM texts decoded from base64). */
export interface ParsedKubeconfig {
  server: string;
  caPem?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  token?: string;
  insecureSkipTlsVerify: boolean;
}

const unb64 = (text: string | undefined) =>
  text === undefined ? undefined : Buffer.from(text, 'base64').toString('utf8');

/**
 * Parses a kubeconfig and resolves its current context.
 *
 * @param where the file, for errors. Messages carry line numbers and key paths only,
 *   never the file's content (it holds keys and tokens).
 * @throws IntegrityError when the text is not YAML, not a kubeconfig, or its current
 *   context, cluster or user is missing
 */
export function parseKubeconfig(text: string, where: string): ParsedKubeconfig {
  let raw: unknown;
  try {
    raw = parse(text, { prettyErrors: false });
  } catch (e) {
    const line = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new IntegrityError(`${where}${line === undefined ? '' : `:${line}`}: not valid YAML`);
  }
  const res = kubeconfigSchema.safeParse(raw);
  if (!res.success) {
    const keys = res.error.issues.map((i) => i.path.join('.') || '(top)').join(', ');
    throw new IntegrityError(`${where}: not a kubeconfig (bad or missing ${keys})`);
  }
  const cfg = res.data;
  const context = cfg.contexts.find((c) => c.name === cfg['current-context'])?.context;
  const cluster = context && cfg.clusters.find((c) => c.name === context.cluster)?.cluster;
  const user = context && cfg.users.find((u) => u.name === context.user)?.user;
  if (!context || !cluster || !user) {
    throw new IntegrityError(`${where}: current-context does not resolve to a cluster and a user`);
  }
  return {
    server: cluster.server,
    caPem: unb64(cluster['certificate-authority-data']),
    clientCertPem: unb64(user['client-certificate-data']),
    clientKeyPem: unb64(user['client-key-data']),
    token: user.token,
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  };
}

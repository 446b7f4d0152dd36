import { randomInt } from 'node:crypto';
import { IntegrityError } from '../../errors.js';

/**
 * The kubelet bootstrap token (kubelet TLS bootstrapping).
 *
 * Format (https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/#token-format):
 * `<token-id>.<token-secret>`, `[a-z0-9]{6}.[a-z0-9]{16}`. The id is public (it names the
 * token); the secret is not.
 *
 * How the cluster learns it: kube-apiserver reads `secure/bootstrap-token.csv` (on a master
 * `/etc/kubernetes/bootstrap-token.csv`) as its static token file, `--token-auth-file`
 * (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#static-token-file):
 * one CSV line `token,user,uid,"group1,group2"`. The token authenticates as user
 * `system:bootstrap:<id>` in the groups `system:bootstrappers` and
 * `system:bootstrappers:kubeadm:default-node-token`, the identity a bootstrap-token Secret
 * would give, so the usual RBAC for TLS bootstrapping applies unchanged (bind the group to
 * `system:node-bootstrapper` and to the nodeclient CSR auto-approval ClusterRole). Unlike a
 * bootstrap-token Secret it needs no running cluster to be registered (no chicken and egg)
 * and it does not expire: it is generated once, never appended to or rotated by `run`.
 * To rotate it, delete the CSV and both bootstrap-kubelet.conf files and run again; nodes
 * that already hold a kubelet client certificate are unaffected.
 */

/** `[a-z0-9]{6}.[a-z0-9]{16}`: the bootstrap token format; group 1 is the id, group 2 the secret. */
export const BOOTSTRAP_TOKEN_RE = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomString(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** A new bootstrap token: 6 + 16 characters drawn uniformly from [a-z0-9] (≈ 82 bits of secret). */
export function generateBootstrapToken(): string {
  return `${randomString(6)}.${randomString(16)}`;
}

/** The token id (public part) of a well-formed token. */
export function tokenId(token: string): string {
  return token.slice(0, 6);
}

/** Groups the bootstrap token authenticates with (as a kubeadm bootstrap token does). */
export const BOOTSTRAP_GROUPS = ['system:bootstrappers', 'system:bootstrappers:kubeadm:default-node-token'];

/** The kube-apiserver static token file holding the token: one line, newline-terminated. */
export function tokenAuthFile(token: string): string {
  const user = `system:bootstrap:${tokenId(token)}`;
  return `${token},${user},${user},"${BOOTSTRAP_GROUPS.join(',')}"\n`;
}

/**
 * Reads the token back from a static token file written by {@link tokenAuthFile}.
 * @param where the file, for errors (the token itself is never in a message)
 * @throws IntegrityError when the first field is not a well-formed bootstrap token
 */
export function parseTokenAuthFile(text: string, where: string): string {
  const first = text.split('\n', 1)[0]?.split(',', 1)[0]?.trim() ?? '';
  if (!BOOTSTRAP_TOKEN_RE.test(first)) {
    throw new IntegrityError(`${where}: first field is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})`);
  }
  return first;
}

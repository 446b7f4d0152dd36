import { isKeyFile } from '../secrets/local.js';

/**
 * Whether a file's content may be shown in a preview. Keys and credentials are reported only
 * as "changed", never as content: the locked layer, anything that looks like a private key,
 * kubeconfigs (`.conf`: client keys or tokens), token files and `.key` files. Manifests,
 * add-ons and configurations without keys are shown as a unified diff.
 */
export function isSecretFile(layer: string, rel: string, content: Buffer): boolean {
  if (layer === 'locked') return true;
  if (/\.(key|conf|csv|pem)$/.test(rel) || /token|password|secret/i.test(rel)) return true;
  if (/^(pki|ssh)\//.test(rel) && !rel.endsWith('.crt') && !rel.endsWith('.pub')) return true;
  return (
    isKeyFile(rel, content) ||
    /-----BEGIN [A-Z ]*PRIVATE KEY-----|token:|client-key-data/.test(content.toString('utf8'))
  );
}

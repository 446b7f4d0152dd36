import { gunzipSync } from 'node:zlib';
import { parse as parseYaml } from 'yaml';
import { liveOfType, type PlanView } from './plan-json.js';

/**
 * The files each kind of node writes at boot, decoded from the planned launch templates'
 * user data: base64 (RFC 4648) of gzip (RFC 1952) of a `#cloud-config` document whose
 * `write_files` list holds the kubelet configuration, the systemd units and the node scripts
 * (platform/terraform/modules/launch-template, https://cloudinit.readthedocs.io/en/latest/reference/modules.html#write-files).
 */

/** One file cloud-init writes. */
export interface NodeFile {
  path: string;
  /** octal string as written in the cloud-config, e.g. "0644"; cloud-init's default is 0644 */
  permissions: string;
  content: string;
}

/** A launch template's node files, keyed by the template name (e.g. `prod-secure`). */
export interface NodeTemplate {
  /** Terraform address of the launch template */
  address: string;
  /** template name, `<environment>-<secure|compute|bastion>` */
  name: string;
  files: NodeFile[];
}

export type NodeFiles = NodeTemplate[];

/**
 * Decodes the user data of one launch template.
 * @param userData the `user_data` attribute: base64 of gzip, or base64 of plain text
 * @returns the write_files entries; [] when the document has none
 * @throws Error when the text is not a YAML cloud-config
 */
export function decodeUserData(userData: string): NodeFile[] {
  const raw = Buffer.from(userData, 'base64');
  const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  const doc = parseYaml(text) as { write_files?: unknown } | null;
  const list = Array.isArray(doc?.write_files) ? (doc.write_files as Record<string, unknown>[]) : [];
  return list.map((f) => ({
    path: String(f.path ?? ''),
    permissions: typeof f.permissions === 'string' ? f.permissions : '0644',
    content: typeof f.content === 'string' ? f.content : '',
  }));
}

/**
 * The node files of every planned launch template whose user data is known at plan time.
 * @throws Error from {@link decodeUserData} when a template's user data is not a cloud-config
 */
export function nodeFilesOf(plan: PlanView): NodeFiles {
  return liveOfType(plan, 'aws_launch_template')
    .filter((r) => typeof r.after.user_data === 'string')
    .map((r) => ({
      address: r.address,
      name: String(r.after.name ?? r.address),
      files: decodeUserData(r.after.user_data as string),
    }));
}

/** A parsed YAML document, or undefined when the text is not YAML. */
export function yamlOf(text: string): Record<string, unknown> | undefined {
  try {
    const v = parseYaml(text) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The etcd configuration file a node script writes with a here-document (`cat >… <<CONFIG`
 * in templates/etcd-claim.sh.tftpl), with the script's `pki=` variable substituted.
 * @returns the parsed YAML, or undefined when the script writes none
 */
export function etcdConfigOf(script: string): Record<string, unknown> | undefined {
  const m = /<<'?CONFIG'?\n([\s\S]*?)\nCONFIG\n/.exec(script);
  if (!m) return undefined;
  const pki = /^pki=(\S+)$/m.exec(script)?.[1];
  const body = pki === undefined ? m[1]! : m[1]!.replaceAll('$pki', pki);
  return yamlOf(body);
}

/** Parses a file mode written as octal text ("0600", "600"). NaN when it is not octal. */
export function octal(mode: string): number {
  return /^[0-7]{3,4}$/.test(mode) ? Number.parseInt(mode, 8) : Number.NaN;
}

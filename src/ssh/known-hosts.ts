import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PlatformError } from '../errors.js';
import { exec } from '../exec/index.js';
import { atomicWrite } from '../fsutil.js';

/**
 * Pinned host keys: an environment's own known_hosts file (format: sshd(8) "SSH_KNOWN_HOSTS
 * FILE FORMAT", one `host keytype base64-key` per line), the keys read from where they
 * come from (ssh-keyscan output, EC2 console output), and their fingerprints.
 *
 * Every key taken in is checked strictly (known key type, base64, the blob's own type name
 * equal to the declared one, RFC 4253 §6.6), so a hostile source cannot smuggle a
 * `@cert-authority` marker or a wildcard host into the file.
 */

/** A public host key: its type name and base64 key blob, as in known_hosts. */
export interface HostKey {
  type: string;
  key: string;
}

/** Key types OpenSSH hosts offer (ssh-keyscan(1) -t; RFC 5656, RFC 8709, RFC 8332 use ssh-rsa blobs). */
const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Validates a key: a known type, base64, and a blob that starts with the same type name
 * (the SSH wire encoding: uint32 length + name, RFC 4253 §6.6).
 */
export function isValidHostKey(k: HostKey): boolean {
  if (!KEY_TYPES.has(k.type) || !B64_RE.test(k.key)) return false;
  const blob = Buffer.from(k.key, 'base64');
  if (blob.length < 4) return false;
  const len = blob.readUInt32BE(0);
  return len === k.type.length && blob.subarray(4, 4 + len).toString('latin1') === k.type;
}

/**
 * The name a host's key is filed under in known_hosts: the host itself for port 22, else
 * `[host]:port` (sshd(8) SSH_KNOWN_HOSTS FILE FORMAT).
 */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/**
 * The OpenSSH SHA256 fingerprint of a key, as ssh-keygen -l prints it: `SHA256:` + the
 * unpadded base64 of the SHA-256 of the key blob (ssh-keygen(1) -E; default since OpenSSH 6.8).
 */
export function fingerprint(k: HostKey): string {
  const digest = createHash('sha256').update(Buffer.from(k.key, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}

/**
 * Parses ssh-keyscan(1) output (`name keytype key` lines, `#` comments) strictly.
 *
 * @param allowed the only names accepted (as ssh-keyscan prints them: `host` or `[host]:port`)
 * @returns keys by name, in input order; names without keys are absent
 * @throws PlatformError on a line that is not a valid key line for an allowed name
 */
export function parseKeyscan(text: string, allowed: string[]): Map<string, HostKey[]> {
  const out = new Map<string, HostKey[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [name, type, key, ...rest] = line.split(/\s+/);
    const k = { type: type ?? '', key: key ?? '' };
    if (rest.length > 0 || !name || !allowed.includes(name) || !isValidHostKey(k)) {
      throw new PlatformError(`unexpected ssh-keyscan output line: ${JSON.stringify(line.slice(0, 120))}`);
    }
    const list = out.get(name) ?? [];
    if (!list.some((x) => x.type === k.type && x.key === k.key)) list.push(k);
    out.set(name, list);
  }
  return out;
}

const BEGIN_KEYS = '-----BEGIN SSH HOST KEY KEYS-----';
const END_KEYS = '-----END SSH HOST KEY KEYS-----';

/**
 * The host keys cloud-init prints to the serial console at the end of the first boot
 * (cloud-init's `keys_to_console` module: the block between `-----BEGIN SSH HOST KEY
 * KEYS-----` and `-----END SSH HOST KEY KEYS-----`, one `type key comment` per line; lines
 * may carry a prefix such as a timestamp). EC2 returns that console output through the
 * authenticated API (GetConsoleOutput), which is why it is a trustworthy source.
 *
 * @returns the valid keys of the last complete block ([] when there is none)
 */
export function parseConsoleHostKeys(text: string): HostKey[] {
  const lines = text.split(/\r?\n/);
  let end = -1;
  for (let i = lines.length - 1; i >= 0 && end === -1; i--) if (lines[i]!.includes(END_KEYS)) end = i;
  let begin = -1;
  for (let i = end - 1; i >= 0 && begin === -1; i--) if (lines[i]!.includes(BEGIN_KEYS)) begin = i;
  if (begin === -1) return [];
  const keys: HostKey[] = [];
  for (const line of lines.slice(begin + 1, end)) {
    const m = /(?:^|\s)(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)/.exec(line);
    const k = m ? { type: m[1]!, key: m[2]! } : undefined;
    if (k && isValidHostKey(k) && !keys.some((x) => x.key === k.key)) keys.push(k);
  }
  return keys;
}

/**
 * The keys pinned for `name` in `file` (`ssh-keygen -F name -f file`, which also finds hashed
 * entries).
 * @returns [] when the file or the name is absent
 */
export async function pinnedKeys(file: string, name: string): Promise<HostKey[]> {
  if ((await readFile(file).catch(() => undefined)) === undefined) return [];
  const r = await exec('ssh-keygen', ['-F', name, '-f', file], { cwd: path.dirname(file), reject: false });
  if (r.exitCode !== 0) return [];
  const keys: HostKey[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [, type, key] = line.trim().split(/\s+/);
    if (type && key) keys.push({ type, key });
  }
  return keys;
}

/** What pinning did for one name. */
export interface PinResult {
  name: string;
  /** keys pinned before (empty: first pin) */
  previous: HostKey[];
  keys: HostKey[];
  /** true when the name had other keys before (a replaced host, or an attacker) */
  changed: boolean;
}

/**
 * Pins host keys: for each name, removes what `file` held for it (`ssh-keygen -R name -f
 * file`, which keeps the previous file as `<file>.old`) and appends the new keys. The file
 * is written atomically, mode 0600, its directory 0700.
 *
 * @param pins keys by known_hosts name (see {@link knownHostsName}); each key already validated
 * @throws PlatformError when a key is invalid or ssh-keygen fails
 */
export async function pinHostKeys(file: string, pins: Map<string, HostKey[]>): Promise<PinResult[]> {
  const results: PinResult[] = [];
  for (const [name, keys] of pins) {
    if (keys.length === 0 || !keys.every(isValidHostKey))
      throw new PlatformError(`no valid host key for ${name}`);
    const previous = await pinnedKeys(file, name);
    if (previous.length > 0) await exec('ssh-keygen', ['-R', name, '-f', file], { cwd: path.dirname(file) });
    const same = (a: HostKey[], b: HostKey[]) =>
      a.every((x) => b.some((y) => y.type === x.type && y.key === x.key));
    results.push({
      name,
      previous,
      keys,
      changed: previous.length > 0 && !(same(previous, keys) && same(keys, previous)),
    });
  }
  const existing = await readFile(file, 'utf8').catch(() => '');
  const added = [...pins].flatMap(([name, keys]) => keys.map((k) => `${name} ${k.type} ${k.key}\n`)).join('');
  const sep = existing === '' || existing.endsWith('\n') ? '' : '\n';
  await atomicWrite(file, `${existing}${sep}${added}`, 0o600, 0o700);
  return results;
}

/**
 * Reads a host's keys with ssh-keyscan(1) (`-T` timeout in seconds, all key types).
 * This trusts the network path on first use (TOFU): the caller shows the fingerprints.
 *
 * @returns the keys, filed under {@link knownHostsName}
 * @throws PlatformError when the host offers no key within the timeout
 */
export async function keyscan(host: string, port: number, cwd: string, timeoutS = 5): Promise<HostKey[]> {
  const r = await exec('ssh-keyscan', ['-T', String(timeoutS), '-p', String(port), host], {
    cwd,
    reject: false,
  });
  const name = knownHostsName(host, port);
  const keys = parseKeyscan(r.stdout, [name]).get(name) ?? [];
  if (keys.length === 0) {
    throw new PlatformError(`ssh-keyscan got no host key from ${host} port ${port}`, {
      hint: 'is the address right and port open to you (SSH_ACCESS_LIST)? or pin with --pin console',
    });
  }
  return keys;
}

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../../exec/index.js';

/**
 * The environment's SSH key pair, made by OpenSSH's own `ssh-keygen` through the exec()
 * wrapper: Ed25519 (ssh-keygen(1) `-t ed25519`), no passphrase (`-N ''`: an empty
 * argument, not a secret), comment = the environment name.
 */

/**
 * Generates a new Ed25519 key pair in a private temporary directory under `workDir` (which
 * must exist and be 0700: the key is written there first) and returns both halves; the
 * temporary directory is removed.
 *
 * @param comment the key comment (`-C`), the environment name
 * @returns privateKey: OpenSSH private key text; publicKey: `ssh-ed25519 <base64> <comment>\n`
 * @throws ExecError / PlatformError when ssh-keygen fails or is not installed
 */
export async function generateSshKey(
  workDir: string,
  comment: string,
): Promise<{ privateKey: string; publicKey: string }> {
  const dir = await mkdtemp(path.join(workDir, '.ssh-keygen-'));
  try {
    const file = path.join(dir, 'key');
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { cwd: dir });
    const privateKey = await readFile(file, 'utf8');
    const publicKey = await derivePublicKey(file);
    return { privateKey, publicKey };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The public key of an OpenSSH private key file (`ssh-keygen -y -f`), newline-terminated.
 * The file must be mode 0600 or ssh-keygen refuses it.
 *
 * @throws ExecError when the file is not a readable, unencrypted private key
 */
export async function derivePublicKey(privateKeyFile: string): Promise<string> {
  const r = await exec('ssh-keygen', ['-y', '-f', privateKeyFile], { cwd: path.dirname(privateKeyFile) });
  return `${r.stdout.trim()}\n`;
}

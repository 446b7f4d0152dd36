import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { type Problem, UserError, ValidationError } from '../errors.js';
import { listFiles, readRegularFile } from '../fsutil.js';
import { isManifestFile } from '../manifests/manifest-path.js';
import { displayPath } from '../paths.js';
import { sha256 } from './envelope.js';
import { isSafePath, type Layer } from './layers.js';
import type { LocalFile } from './store.js';

/**
 * File modes a layer may publish. The agent writes each file on the nodes as root with
 * the mode its index names, so a mode outside this list (0777, setuid, group-writable) is
 * refused rather than spread to every node.
 */
export const PUBLISHABLE_MODES: readonly number[] = [0o600, 0o640, 0o644, 0o700, 0o755];

/** Private key material: never published wider than 0600. */
const KEY_CONTENT_RE = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|^\s*client-key-data:/m;

/** True when a layer file holds a private key: a `.key` file, a PEM private key or a kubeconfig with a client key. */
export function isKeyFile(rel: string, content: Buffer): boolean {
  return rel.endsWith('.key') || KEY_CONTENT_RE.test(content.toString('latin1'));
}

/**
 * Why `mode` may not be published for a file, or undefined when it may.
 * @param mode permission bits (0..0o7777)
 */
export function modeProblem(rel: string, content: Buffer, mode: number): string | undefined {
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  if (!PUBLISHABLE_MODES.includes(mode)) {
    return `mode ${octal} cannot be published (allowed: ${PUBLISHABLE_MODES.map((m) => `0${m.toString(8)}`).join(', ')}); chmod it`;
  }
  if (mode !== 0o600 && isKeyFile(rel, content)) {
    return `mode ${octal}: a private key is published only as 0600; chmod 600 it`;
  }
  return undefined;
}

/** What is at a layer's local path. */
export type LayerDirState = 'missing' | 'directory';

/**
 * Checks the local path of a layer, `secrets/<layer>`, without following links.
 * @returns 'missing' when nothing is there, 'directory' for a real directory
 * @throws UserError (exit 2) for a symbolic link (a link would publish files from outside
 *   the tree in the layer's name) or anything that is not a directory
 */
export async function layerDirState(secretsRoot: string, layer: Layer): Promise<LayerDirState> {
  const dir = path.join(secretsRoot, layer);
  const st = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!st) return 'missing';
  if (st.isSymbolicLink()) {
    throw new UserError(
      `${displayPath(dir)}: the layer directory is a symbolic link; layers are published only from inside the secrets tree, nothing was published`,
      { hint: `replace the link with a directory holding the layer's files` },
    );
  }
  if (!st.isDirectory()) {
    throw new UserError(
      `${displayPath(dir)}: is not a directory (a layer is a directory of files); nothing was published`,
    );
  }
  return 'directory';
}

/**
 * Reads the local working copy of one layer, `secrets/<layer>/**`, for publishing.
 * Symbolic links inside the layer are skipped; the layer directory itself must be a real
 * directory ({@link layerDirState}). Every file's mode must be publishable ({@link modeProblem}),
 * and every file under `manifests/` a static pod the node agent accepts.
 * @returns files with layer-relative paths, digests, sizes, modes and bytes, sorted by path;
 *   [] when the layer directory does not exist
 * @throws UserError naming a file whose path cannot be published safely, or the layer
 *   directory when it is a link or not a directory
 * @throws ValidationError listing every file whose mode cannot be published
 */
export async function readLayerDir(secretsRoot: string, layer: Layer): Promise<LocalFile[]> {
  const dir = path.join(secretsRoot, layer);
  if ((await layerDirState(secretsRoot, layer)) === 'missing') return [];
  const files: LocalFile[] = [];
  const problems: Problem[] = [];
  for (const rel of await listFiles(dir)) {
    if (!isSafePath(rel))
      throw new UserError(`${path.join(dir, rel)}: file name cannot be published (use [A-Za-z0-9._-])`);
    const full = path.join(dir, rel);
    const st = await lstat(full);
    if (!st.isFile()) continue; // replaced by something else since the listing
    const content = await readRegularFile(full);
    const mode = st.mode & 0o7777;
    const bad = modeProblem(rel, content, mode);
    if (bad) problems.push({ file: displayPath(full), message: bad });
    // a manifest every node agent would refuse is not published (the agent's own schema,
    // loaded only for a layer that has manifests: its validator is 0.9 MB of code)
    if (isManifestFile(rel)) {
      const { describeProblem, staticPodProblems } = await import('../manifests/static-pods.js');
      for (const p of staticPodProblems(content))
        problems.push({
          file: displayPath(full),
          ...(p.line ? { line: p.line } : {}),
          message: describeProblem(p),
        });
    }
    files.push({ path: rel, content, sha256: sha256(content), size: content.length, mode });
  }
  if (problems.length > 0) {
    throw new ValidationError(
      `layer ${layer}: files that cannot be published; nothing was published`,
      problems,
    );
  }
  return files;
}

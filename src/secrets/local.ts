import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { listFiles } from '../fsutil.js';
import { sha256 } from './envelope.js';
import { isSafePath, type Layer } from './layers.js';
import type { LocalFile } from './store.js';

/**
 * Reads the local working copy of one layer, `secrets/<layer>/**`, for publishing.
 * @returns files with layer-relative paths, digests, sizes, modes and bytes, sorted by path
 * @throws UserError naming a file whose path cannot be published safely
 */
export async function readLayerDir(secretsRoot: string, layer: Layer): Promise<LocalFile[]> {
  const dir = path.join(secretsRoot, layer);
  const files: LocalFile[] = [];
  for (const rel of await listFiles(dir)) {
    if (!isSafePath(rel))
      throw new UserError(`${path.join(dir, rel)}: file name cannot be published (use [A-Za-z0-9._-])`);
    const full = path.join(dir, rel);
    const [content, st] = await Promise.all([readFile(full), stat(full)]);
    files.push({ path: rel, content, sha256: sha256(content), size: content.length, mode: st.mode & 0o777 });
  }
  return files;
}

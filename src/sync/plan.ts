import path from 'node:path';
import type { IndexEntry, LayerIndex } from '../secrets/index-format.js';

/**
 * Pure planning for manifest-sync (DESIGN.md §5): which files to write and which to
 * remove so that the local directories match a layer's index.
 */

/** Where index paths land on the node. */
export interface PathMap {
  /** kubelet's staticPodPath, for paths under `manifests/` (default /etc/kubernetes/manifests) */
  dest: string;
  /** for every other path (pki/, kubeconfigs); undefined = those paths are not synced */
  root?: string;
}

/** What the agent remembers between passes (persisted as JSON in its state file). */
export interface SyncState {
  /** generation of the index last applied; never goes backwards */
  generation: number;
  /** hex SHA-256 of that index's plaintext */
  indexDigest: string | null;
  /** files this agent wrote: absolute path → plaintext SHA-256 */
  written: Record<string, string>;
}

export const EMPTY_STATE: SyncState = { generation: 0, indexDigest: null, written: {} };

export type Action =
  | { kind: 'write'; path: string; target: string; entry: IndexEntry }
  | { kind: 'remove'; target: string };

/** How a local file is compared with an index entry: content digest and permission bits. */
export function fingerprint(sha256: string, mode: number): string {
  return `${sha256}:${mode.toString(8)}`;
}

/** The absolute local path of an index path, or undefined when the map does not cover it. */
export function targetOf(indexPath: string, map: PathMap): string | undefined {
  if (indexPath.startsWith('manifests/')) return path.join(map.dest, indexPath.slice('manifests/'.length));
  return map.root ? path.join(map.root, indexPath) : undefined;
}

/**
 * Plans one pass.
 *
 * @param local {@link fingerprint} of each target as it is on disk now (missing = absent)
 * @returns writes for files that are missing or differ (content or mode is judged by the
 *   fingerprint: content digest and mode), then removals of files this agent
 *   wrote earlier that the index no longer lists. Files it did not write are never removed.
 */
export function planSync(
  index: LayerIndex,
  state: SyncState,
  map: PathMap,
  local: Record<string, string | undefined>,
): Action[] {
  const actions: Action[] = [];
  const wanted = new Set<string>();
  for (const [p, entry] of Object.entries(index.files).sort(([a], [b]) => a.localeCompare(b))) {
    const target = targetOf(p, map);
    if (!target) continue;
    wanted.add(target);
    if (local[target] !== fingerprint(entry.sha256, entry.mode)) actions.push({ kind: 'write', path: p, target, entry });
  }
  for (const target of Object.keys(state.written).sort()) {
    if (!wanted.has(target)) actions.push({ kind: 'remove', target });
  }
  return actions;
}

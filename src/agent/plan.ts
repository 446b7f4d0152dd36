import path from 'node:path';
import { IntegrityError } from '../errors.js';
import type { IndexEntry, LayerIndex } from '../secrets/index-format.js';

/**
 * Pure planning for manifest-sync (DESIGN.md §5): whether an index may be applied at all
 * (generation never backwards, hash chain), which files to write and which to remove so
 * that the local directories match a layer's index.
 */

/** Where index paths land on the node. */
export interface PathMap {
  /** kubelet's staticPodPath, for paths under `manifests/` (default /etc/kubernetes/manifests) */
  dest: string;
  /** for every other path (pki/, kubeconfigs); undefined = those paths are not synced */
  root?: string;
}

/** A file of the index the agent could not apply; its last good version stays in place. */
export interface FileError {
  /** layer-relative path, e.g. `manifests/etcd.yaml` */
  path: string;
  error: string;
}

/** What the agent remembers between passes (persisted as JSON in its state file). */
export interface SyncState {
  /** generation of the index last applied (possibly with file errors); never goes backwards */
  generation: number;
  /** hex SHA-256 of that index's plaintext */
  indexDigest: string | null;
  /**
   * files this agent owns: absolute path → plaintext SHA-256 it wrote (or is about to write:
   * the state is saved before the writes, so a crash never loses track of a file)
   */
  written: Record<string, string>;
  /** files of `generation` that were not applied (invalid manifests), with why */
  fileErrors: FileError[];
}

export const EMPTY_STATE: SyncState = { generation: 0, indexDigest: null, written: {}, fileErrors: [] };

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
 * Decides whether an index read from the bucket may be applied over `state`.
 *
 * - a lower generation than the one applied is a rollback (an old index copied back);
 * - the same generation with another digest is a rewritten index (generations are unique:
 *   the index is written with a conditional write, DESIGN.md §4);
 * - the next generation must name the applied index as `previous` (the hash chain).
 * Skipping generations (the agent was down) is fine: the chain cannot be checked then.
 *
 * @param digest hex SHA-256 of the index plaintext
 * @throws IntegrityError naming the layer and both generations or digests
 */
export function checkIndex(layer: string, index: LayerIndex, digest: string, state: SyncState): void {
  if (index.generation < state.generation) {
    throw new IntegrityError(
      `index/${layer}: generation ${index.generation} is older than the applied generation ${state.generation} (rollback refused)`,
    );
  }
  if (!state.indexDigest) return;
  if (index.generation === state.generation && digest !== state.indexDigest) {
    throw new IntegrityError(
      `index/${layer}: generation ${index.generation} was already applied with another index (digest ${state.indexDigest.slice(0, 12)}, now ${digest.slice(0, 12)}): rewritten index refused`,
    );
  }
  if (index.generation === state.generation + 1 && index.previous !== state.indexDigest) {
    throw new IntegrityError(
      `index/${layer}: generation ${index.generation} does not follow the applied generation ${state.generation} (previous digest ${String(index.previous).slice(0, 12)}, applied ${state.indexDigest.slice(0, 12)}): broken hash chain refused`,
    );
  }
}

/**
 * Plans one pass.
 *
 * @param local {@link fingerprint} of each target as it is on disk now (missing = absent)
 * @returns writes for files that are missing or differ (content digest or mode), sorted by
 *   path, then removals of files this agent wrote earlier that the index no longer lists.
 *   Files it did not write are never removed.
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
    if (local[target] !== fingerprint(entry.sha256, entry.mode))
      actions.push({ kind: 'write', path: p, target, entry });
  }
  for (const target of Object.keys(state.written).sort()) {
    if (!wanted.has(target)) actions.push({ kind: 'remove', target });
  }
  return actions;
}

/**
 * The delay before retrying a failed operation: exponential backoff with "full jitter"
 * (uniform in [0, min(cap, base · 2^(failures-1))]), AWS Architecture Blog, "Exponential
 * Backoff And Jitter" (2015). Pure: `random` is injected.
 *
 * @param failures consecutive failures so far (≥ 1)
 * @param baseS first ceiling, seconds (the poll interval)
 * @param capS largest ceiling, seconds (30 for manifest-sync)
 * @param random a number in [0, 1)
 * @returns seconds, in [0, capS]
 */
export function backoffS(failures: number, baseS: number, capS: number, random: number): number {
  const ceiling = Math.min(capS, baseS * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return random * ceiling;
}

import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { atomicWrite, fileMode } from '../fsutil.js';
import { log } from '../log.js';
import { sha256 } from '../secrets/envelope.js';
import type { SecretStore } from '../secrets/store.js';
import { validateStaticPod } from './validate.js';
import { type Action, EMPTY_STATE, fingerprint, type PathMap, planSync, type SyncState, targetOf } from './plan.js';

/**
 * One pass of manifest-sync for one layer (DESIGN.md §5): read the layer's index, verify
 * it (authenticity, environment/layer, generation never backwards), fetch only the files
 * that differ by VersionId, verify their digests, validate manifests, write atomically
 * (dot-prefixed temp file in the same directory, fsync, rename, fsync of the directory:
 * kubelet never sees a partial file), then remove files this agent wrote earlier that the
 * index no longer lists. On any error nothing is removed and the last good files stay.
 */

export interface SyncOptions {
  store: SecretStore;
  layer: string;
  map: PathMap;
  /** JSON file remembering generation and the files written (created on first pass) */
  stateFile: string;
  /** ETag of the index applied by the previous pass: the read is conditional (304 = no work) */
  etag?: string;
}

export interface SyncResult {
  generation: number;
  written: string[];
  removed: string[];
  /** true when the index had not changed since the last pass */
  unchanged: boolean;
  /** ETag of the index now applied (pass it back as `etag` next time) */
  etag?: string;
}

/** Reads the agent state; a missing file is the empty state. */
export async function readState(stateFile: string): Promise<SyncState> {
  try {
    return { ...EMPTY_STATE, ...(JSON.parse(await readFile(stateFile, 'utf8')) as SyncState) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ...EMPTY_STATE, written: {} };
    throw e;
  }
}

async function localFingerprint(target: string): Promise<string | undefined> {
  try {
    const [data, mode] = await Promise.all([readFile(target), fileMode(target)]);
    return fingerprint(sha256(data), mode ?? 0);
  } catch {
    return undefined;
  }
}

/**
 * Runs one pass.
 * @throws IntegrityError when the index or an object fails verification, or the index
 *   generation is lower than the one already applied (rollback)
 *   or a manifest is not a valid static pod (then nothing at all is written)
 */
export async function syncOnce(opts: SyncOptions): Promise<SyncResult> {
  const snap = await opts.store.readIndex(opts.layer, opts.etag);
  if (snap === 'not-modified') {
    return { generation: -1, written: [], removed: [], unchanged: true, etag: opts.etag };
  }
  const state = await readState(opts.stateFile);
  if (!snap) {
    log.info(`layer ${opts.layer}: nothing published yet`);
    return { generation: state.generation, written: [], removed: [], unchanged: true };
  }
  const { index } = snap;
  if (index.generation < state.generation) {
    throw new IntegrityError(
      `index/${opts.layer}: generation ${index.generation} is older than the applied generation ${state.generation} (rollback refused)`,
    );
  }
  const local: Record<string, string | undefined> = {};
  for (const p of Object.keys(index.files)) {
    const t = targetOf(p, opts.map);
    if (t) local[t] = await localFingerprint(t);
  }
  const actions = planSync(index, state, opts.map, local);
  const writes = actions.filter((a): a is Extract<Action, { kind: 'write' }> => a.kind === 'write');
  const fetched = await opts.store.fetchAll(opts.layer, index, (p) => writes.some((w) => w.path === p));
  // validate everything before writing anything
  for (const w of writes) {
    if (w.path.startsWith('manifests/')) validateStaticPod(fetched.get(w.path)!, `${opts.layer}/${w.path}`);
  }
  const written: string[] = [];
  for (const w of writes) {
    await atomicWrite(w.target, fetched.get(w.path)!, w.entry.mode, 0o755);
    written.push(w.target);
  }
  const removed: string[] = [];
  for (const a of actions) {
    if (a.kind !== 'remove') continue;
    await rm(a.target, { force: true });
    removed.push(a.target);
  }
  const next: SyncState = { generation: index.generation, indexDigest: snap.digest, written: {} };
  for (const [p, e] of Object.entries(index.files)) {
    const t = targetOf(p, opts.map);
    if (t) next.written[t] = e.sha256;
  }
  await atomicWrite(opts.stateFile, `${JSON.stringify(next, null, 1)}\n`, 0o600, 0o700);
  return {
    generation: index.generation,
    written,
    removed,
    unchanged: written.length === 0 && removed.length === 0 && index.generation === state.generation,
    etag: snap.etag,
  };
}

/** Default state file of a layer: in /var/lib/kube-platform, or beside a redirected --dest. */
export function defaultStateFile(layer: string, dest: string, redirected: boolean): string {
  return redirected
    ? path.join(dest, `.manifest-sync-${layer}.json`)
    : path.join('/var/lib/kube-platform', `manifest-sync-${layer}.json`);
}

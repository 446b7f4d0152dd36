import { rm } from 'node:fs/promises';
import { IntegrityError } from '../errors.js';
import { atomicWrite } from '../fsutil.js';
import type { LayerIndex } from '../secrets/index-format.js';
import type { RolloutGate } from '../secrets/rollout.js';
import { MissingObjectError, type SecretStore } from '../secrets/store.js';
import { type Action, checkIndex, type FileError, type PathMap, planSync, targetOf } from './plan.js';
import { type AgentState, localFingerprint, readState, saveState } from './state.js';
import { ManifestError, validateStaticPod } from './validate.js';

/**
 * One pass of the manifest-sync agent (DESIGN.md §5), {@link syncOnce}; the loop that runs
 * it is src/agent/agent.ts.
 *
 * A pass reads the layer's index (conditionally: HTTP 304 = nothing to do, no KMS call),
 * verifies it (envelope authentication by SecretStore; generation never backwards and the
 * hash chain by {@link checkIndex}), fetches only the files that differ by VersionId, verifies
 * their digests, validates each manifest against the Kubernetes schema, and writes it
 * atomically (dot-prefixed temp file in the same directory, fsync, rename, fsync of the
 * directory: kubelet never sees a partial file). A manifest that fails validation is not
 * written — its last good version stays — and is reported; the other files are applied.
 * Files this agent wrote earlier that the index no longer lists are removed, only by a pass
 * without any error. An index that fails verification blocks the whole pass.
 */

export interface SyncOptions {
  store: SecretStore;
  layer: string;
  map: PathMap;
  /** JSON file remembering generation and the files written (created on first pass) */
  stateFile: string;
  /** ETag of the index already handled: the read is conditional (304 = no work, no KMS call) */
  etag?: string;
  /** aborts the S3 requests of the pass (each is also bounded by `requestTimeoutS`) */
  signal?: AbortSignal;
  /** seconds one request may take before it is abandoned @default 10 */
  requestTimeoutS?: number;
  /** filled with the ETag of the index as soon as it is read (also when the pass then fails) and the index once verified */
  observed?: { etag?: string; index?: LayerIndex };
  /** the state as the caller last saw it (the loop keeps it in memory); default: read `stateFile` */
  state?: AgentState;
  /** the layer's staged-rollout gate (masters, secure layer): which index this node may apply */
  gate?: RolloutGate;
  /**
   * called when the pass is about to apply a generation other than the applied one (its
   * index verified), before any file is fetched or written: the pre-rollout etcd snapshot,
   * src/agent/presnap.ts; a throw ends the pass with that error — nothing is written, the
   * last good files stay
   */
  beforeApply?: (next: { generation: number; digest: string }, current: number) => Promise<void>;
}

export interface SyncResult {
  /** 'unchanged': 304; 'empty': the layer was never published; 'applied': the index was applied */
  kind: 'unchanged' | 'empty' | 'applied';
  /** generation now applied (possibly with file errors) */
  generation: number;
  written: string[];
  removed: string[];
  /** manifests of this generation that were not written (their last good version stays) */
  fileErrors: FileError[];
  /** true when something changed: files, generation or the set of file errors */
  changed: boolean;
  /** ETag of the index read (pass it back as `etag` next time) */
  etag?: string;
  /** the state after the pass */
  state: AgentState;
}

function requestSignal(o: Pick<SyncOptions, 'signal' | 'requestTimeoutS'>): AbortSignal {
  const t = AbortSignal.timeout((o.requestTimeoutS ?? 10) * 1000);
  return o.signal ? AbortSignal.any([o.signal, t]) : t;
}

/**
 * Runs one pass for one layer.
 * @throws IntegrityError when the index or an object fails verification, or the index is a
 *   rollback, rewritten, or breaks the hash chain — nothing is written then; errors of S3 and
 *   KMS (unreachable, denied, timed out) — nothing is removed then
 */
export async function syncOnce(opts: SyncOptions): Promise<SyncResult> {
  // staged rollouts (src/secrets/rollout.ts): while a rollout is open its record is read
  // first, and a changed record re-reads the index; a settled record is re-read only after
  // the index changed (one request a tick while idle: bench/sync-idle)
  const gate = opts.gate;
  const gateFirst = gate !== undefined && !gate.settled;
  const gateChanged = gateFirst ? await gate.refresh(requestSignal(opts)) : false;
  const latest = await opts.store.readIndex(opts.layer, gateChanged ? undefined : opts.etag, {
    abortSignal: requestSignal(opts),
    ...(opts.observed ? { observed: opts.observed } : {}),
  });
  if (gate && !gateFirst && latest !== 'not-modified') await gate.refresh(requestSignal(opts));
  const state = opts.state ?? (await readState(opts.stateFile));
  const none = { written: [], removed: [], fileErrors: state.fileErrors, changed: false, state };
  if (latest === 'not-modified')
    return { kind: 'unchanged', generation: state.generation, etag: opts.etag, ...none };
  if (!latest) {
    // generations only go up: an index that vanished after one was applied was deleted
    if (state.generation > 0) {
      throw new IntegrityError(
        `index/${opts.layer} is missing, but generation ${state.generation} of layer ${opts.layer} was applied here: the index was deleted; the last good files stay`,
      );
    }
    return { kind: 'empty', generation: state.generation, ...none };
  }
  // a node the rollout record does not allow yet (or after an abort) applies the previous index
  const chosen = opts.gate ? await opts.gate.choose(latest, requestSignal(opts)) : { snap: latest };
  const snap = chosen.snap;
  if (opts.observed) opts.observed.index = snap.index;
  const { index } = snap;
  // going back is allowed only to the previous generation an authentic record names
  if (!(chosen.revert !== undefined && index.generation === chosen.revert)) {
    checkIndex(opts.layer, index, snap.digest, state);
  }
  // before any fetch (a refused attempt costs no S3 or KMS request) and any write
  if (opts.beforeApply && index.generation !== state.generation) {
    await opts.beforeApply({ generation: index.generation, digest: snap.digest }, state.generation);
  }

  const local: Record<string, string | undefined> = {};
  for (const p of Object.keys(index.files)) {
    const t = targetOf(p, opts.map);
    if (t) local[t] = await localFingerprint(t);
  }
  const actions = planSync(index, state, opts.map, local);
  const writes = actions.filter((a): a is Extract<Action, { kind: 'write' }> => a.kind === 'write');
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(8);
  const fetched = new Map<string, Buffer>();
  const fileErrors: FileError[] = [];
  await Promise.all(
    writes.map((w) =>
      limit(async () => {
        try {
          fetched.set(
            w.path,
            await opts.store.fetchFile(opts.layer, w.path, w.entry, { abortSignal: requestSignal(opts) }),
          );
        } catch (e) {
          // a version the index names is gone: that file keeps its last good copy, the
          // rest of the pass goes on, and the error is reported
          if (!(e instanceof MissingObjectError)) throw e;
          fileErrors.push({ path: w.path, error: e.message });
        }
      }),
    ),
  );
  const good = writes.filter((w) => {
    if (!fetched.has(w.path)) return false;
    if (!w.path.startsWith('manifests/')) return true;
    try {
      validateStaticPod(fetched.get(w.path)!, `${opts.layer}/${w.path}`);
      return true;
    } catch (e) {
      if (!(e instanceof ManifestError)) throw e;
      fileErrors.push({ path: w.path, error: e.message });
      return false;
    }
  });

  // Ownership first: the state names every file about to be written before it is written,
  // so a crash (SIGKILL, power loss) between here and the final save never leaves a file
  // this agent wrote but does not know it owns. The generation only moves at the end.
  const owned = { ...state.written };
  for (const w of good) owned[w.target] = w.entry.sha256;
  if (good.some((w) => state.written[w.target] !== w.entry.sha256)) {
    await saveState(opts.stateFile, { ...state, written: owned });
  }
  const written: string[] = [];
  for (const w of good) {
    await atomicWrite(w.target, fetched.get(w.path)!, w.entry.mode, 0o755);
    written.push(w.target);
  }
  const removed: string[] = [];
  if (fileErrors.length === 0) {
    for (const a of actions) {
      if (a.kind !== 'remove') continue;
      await rm(a.target, { force: true });
      delete owned[a.target];
      removed.push(a.target);
    }
  }
  // after the pass every file the index lists (and this pass did not refuse) is this agent's
  const refused = new Set(fileErrors.map((f) => f.path));
  for (const [p, e] of Object.entries(index.files)) {
    const t = targetOf(p, opts.map);
    if (t && !refused.has(p)) owned[t] = e.sha256;
  }
  const ownedChanged =
    JSON.stringify(Object.entries(owned).sort()) !== JSON.stringify(Object.entries(state.written).sort());
  const generationMoved = index.generation !== state.generation;
  const next: AgentState = {
    generation: index.generation,
    indexDigest: snap.digest,
    written: owned,
    fileErrors,
    appliedAt: generationMoved || !state.appliedAt ? new Date().toISOString() : state.appliedAt,
  };
  const errorsChanged = JSON.stringify(fileErrors) !== JSON.stringify(state.fileErrors);
  if (generationMoved || ownedChanged || errorsChanged || !state.appliedAt) {
    await saveState(opts.stateFile, next);
  }
  return {
    kind: 'applied',
    generation: index.generation,
    written,
    removed,
    fileErrors,
    changed: generationMoved || written.length > 0 || removed.length > 0 || errorsChanged,
    etag: snap.etag,
    state: next,
  };
}

import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError, PlatformError } from '../errors.js';
import { atomicWrite, fileMode, TEMP_FILE_RE } from '../fsutil.js';
import { log } from '../log.js';
import { sha256 } from '../secrets/envelope.js';
import type { LayerIndex } from '../secrets/index-format.js';
import type { RolloutGate } from '../secrets/rollout.js';
import type { LocalHealth, NodeStatus } from '../secrets/status.js';
import { MissingObjectError, type SecretStore } from '../secrets/store.js';
import {
  type Action,
  backoffS,
  checkIndex,
  EMPTY_STATE,
  type FileError,
  fingerprint,
  type PathMap,
  planSync,
  type SyncState,
  targetOf,
} from './plan.js';
import { ManifestError, validateStaticPod } from './validate.js';

/**
 * The manifest-sync agent (DESIGN.md §5): one pass ({@link syncOnce}) and the long-running
 * loop ({@link runAgent}).
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

/** Per-layer state file: in `stateDir`, or beside a redirected --dest (a dot-file kubelet ignores). */
export function defaultStateFile(
  layer: string,
  dest: string,
  redirected: boolean,
  stateDir?: string,
): string {
  if (stateDir) return path.join(stateDir, `manifest-sync-${layer}.json`);
  return redirected
    ? path.join(dest, `.manifest-sync-${layer}.json`)
    : path.join('/var/lib/kube-platform', `manifest-sync-${layer}.json`);
}

/** The state persisted between passes, plus when its generation was applied. */
export interface AgentState extends SyncState {
  /** ISO 8601 time `generation` was applied; null before the first pass */
  appliedAt: string | null;
}

/**
 * Reads the agent state of a layer; a missing file is the empty state.
 * @throws PlatformError when the file exists but is not a state file (it is written
 *   atomically, so this means someone else wrote it): the hint says how to start over
 */
export async function readState(stateFile: string): Promise<AgentState> {
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      return { ...EMPTY_STATE, written: {}, appliedAt: null };
    throw e;
  }
  try {
    const s = JSON.parse(text) as Partial<AgentState>;
    if (typeof s.generation !== 'number' || typeof s.written !== 'object' || !s.written)
      throw new Error('bad shape');
    return {
      generation: s.generation,
      indexDigest: s.indexDigest ?? null,
      written: s.written,
      fileErrors: Array.isArray(s.fileErrors) ? s.fileErrors : [],
      appliedAt: s.appliedAt ?? null,
    };
  } catch (e) {
    throw new PlatformError(`${stateFile}: not a manifest-sync state file`, {
      cause: e,
      hint: 'remove it to start over (files the agent wrote earlier will then no longer be removed by it)',
    });
  }
}

async function saveState(stateFile: string, s: AgentState): Promise<void> {
  await atomicWrite(stateFile, `${JSON.stringify(s, null, 1)}\n`, 0o600, 0o700);
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
 * Removes temp files an earlier run left behind when it was killed mid-write (they are
 * dot-files, which kubelet ignores, but they would pile up). Only names of the temp-file
 * pattern are touched. Missing directories are skipped.
 * @returns the paths removed
 */
export async function removeStaleTemps(dirs: Iterable<string>): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of new Set(dirs)) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (!TEMP_FILE_RE.test(n)) continue;
      await rm(path.join(dir, n), { force: true });
      removed.push(path.join(dir, n));
    }
  }
  return removed;
}

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
  // staged rollouts (src/secrets/rollout.ts): a changed rollout record re-reads the index
  const gateChanged = opts.gate ? await opts.gate.refresh(requestSignal(opts)) : false;
  const latest = await opts.store.readIndex(opts.layer, gateChanged ? undefined : opts.etag, {
    abortSignal: requestSignal(opts),
    ...(opts.observed ? { observed: opts.observed } : {}),
  });
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

/** Options of the long-running agent. */
export interface AgentOptions {
  store: SecretStore;
  /** layers to keep in step, e.g. ['secure'] */
  layers: string[];
  map: PathMap;
  stateFile: (layer: string) => string;
  /** seconds between index polls @default 1 */
  intervalS: number;
  /** seconds between status reports while nothing changes @default 60 */
  heartbeatS: number;
  /** the node id status is reported under; undefined: no status reports */
  nodeId?: string;
  /** seconds one S3 request may take before it is abandoned @default 5 */
  requestTimeoutS?: number;
  /** largest backoff between retries of a failed pass, seconds @default 30 */
  backoffCapS?: number;
  /** stops the loop (SIGTERM) */
  signal: AbortSignal;
  /** the staged-rollout gate of a layer, if it has one (src/secrets/rollout.ts) */
  gate?: (layer: string) => RolloutGate | undefined;
  /** the local control plane's health, added to the status report of the layers it names */
  health?: { layers: string[]; probe: () => Promise<LocalHealth> };
}

/** What the loop tracks per layer between ticks. */
interface LayerRun {
  layer: string;
  state: AgentState;
  /** ETag of the index last applied without error */
  etag?: string;
  /** ETag of an index whose pass failed: polled with If-None-Match until it changes */
  failedEtag?: string;
  /** the failure was an IntegrityError: the same bytes will fail again, retry only on change */
  failedForGood: boolean;
  /** the last failure did not reach the bucket (timeout, connection): no status report can go out */
  unreachable: boolean;
  failures: number;
  /** epoch ms before which a failed pass is not retried (backoff) */
  retryAt: number;
  /** epoch ms before which a repeated error is not logged again */
  logAt: number;
  failingSince?: number;
  error: string | null;
  /** epoch ms of the last status report written */
  reportedAt: number;
  /** a change waits to be reported */
  dirty: boolean;
  /** the index last applied, for the local drift check on heartbeats */
  index?: LayerIndex;
}

function describeError(e: unknown): string {
  const err = e as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'the bucket did not answer in time';
  const status = err.$metadata?.httpStatusCode;
  const msg = err.message || err.name || String(e);
  return status
    ? `${msg} (HTTP ${status})`
    : err.code && !msg.includes(err.code)
      ? `${msg} (${err.code})`
      : msg;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** True when local files no longer match the applied index (someone edited or removed one). */
async function drifted(index: LayerIndex, map: PathMap, skip: Set<string>): Promise<boolean> {
  for (const [p, e] of Object.entries(index.files)) {
    const t = targetOf(p, map);
    if (!t || skip.has(p)) continue;
    if ((await localFingerprint(t)) !== fingerprint(e.sha256, e.mode)) return true;
  }
  return false;
}

/**
 * Runs the agent until `signal` aborts (SIGTERM).
 *
 * Scheduling, per layer, on a fixed-rate clock of `intervalS` (ticks that would overlap a
 * slow one are skipped, never bunched):
 * - each tick makes one conditional GET of the index (If-None-Match: the applied ETag); a
 *   304 costs no KMS call and no file access;
 * - the heartbeat status report takes the place of that tick's poll, so an idle agent makes
 *   exactly 60 / intervalS requests a minute per layer (60 at the defaults);
 * - after a change or an error the status is written in the same tick.
 * Errors: a pass that fails (a fetch, KMS, a write) is retried after an exponential backoff
 * with full jitter capped at `backoffCapS` (30 s); until then the index is polled with
 * If-None-Match on the failing index's ETag, so a new publish (the likely fix) is tried at
 * once. An index that fails verification (IntegrityError) is not retried until it changes.
 * The poll itself is not backed off: it is the one request per interval the agent makes
 * anyway, so an outage does not add load, and the agent notices the bucket is back within
 * one interval (each request is bounded by `requestTimeoutS`). Repeated identical errors are
 * logged on the backoff schedule, not every second. Nothing is removed and no file is
 * touched while a pass fails: the last good files stay.
 * Backoff source: AWS Architecture Blog, "Exponential Backoff And Jitter".
 */
export async function runAgent(o: AgentOptions): Promise<void> {
  const intervalMs = o.intervalS * 1000;
  const capS = o.backoffCapS ?? 30;
  const requestTimeoutS = o.requestTimeoutS ?? 5;
  const runs: LayerRun[] = [];
  const gates = new Map<string, RolloutGate>();
  for (const layer of o.layers) {
    const g = o.gate?.(layer);
    if (g) gates.set(layer, g);
    const state = await readState(o.stateFile(layer));
    const dirs = [o.map.dest, ...Object.keys(state.written).map((t) => path.dirname(t))];
    for (const t of await removeStaleTemps(dirs)) log.debug(`layer ${layer}: removed stale temp file ${t}`);
    runs.push({
      layer,
      state,
      failedForGood: false,
      unreachable: false,
      failures: 0,
      retryAt: 0,
      logAt: 0,
      error: null,
      reportedAt: 0,
      dirty: true,
    });
  }

  const report = async (run: LayerRun, now: number): Promise<void> => {
    if (!o.nodeId) {
      run.dirty = false;
      return;
    }
    const status: NodeStatus = {
      node: o.nodeId,
      layer: run.layer,
      generation: run.state.generation,
      indexDigest: run.state.indexDigest,
      appliedAt: run.state.appliedAt,
      heartbeatAt: new Date(now).toISOString(),
      error: run.error,
      fileErrors: run.state.fileErrors,
      ...(o.health?.layers.includes(run.layer) ? { health: await o.health.probe() } : {}),
    };
    await o.store.putStatus(run.layer, o.nodeId, status, {
      abortSignal: AbortSignal.any([o.signal, AbortSignal.timeout(requestTimeoutS * 1000)]),
    });
    run.reportedAt = now;
    run.dirty = false;
  };

  const fail = (run: LayerRun, e: unknown, now: number, observedEtag: string | undefined) => {
    const msg = describeError(e);
    run.failures++;
    run.failingSince ??= now;
    run.failedEtag = observedEtag;
    run.failedForGood = e instanceof IntegrityError && observedEtag !== undefined;
    const delayS = backoffS(run.failures, o.intervalS, capS, Math.random());
    run.retryAt = now + delayS * 1000;
    if (msg !== run.error || now >= run.logAt) {
      const next = run.failedForGood
        ? 'not retried until the index changes'
        : observedEtag === undefined
          ? `polling every ${o.intervalS} s`
          : `retry in ${delayS.toFixed(1)} s`;
      log.error(`layer ${run.layer}: ${msg} (keeping the last good files; ${next})`);
      run.logAt = now + backoffS(run.failures, o.intervalS, capS, 1) * 1000;
    }
    if (msg !== run.error) run.dirty = true;
    run.error = msg;
  };

  const tick = async (run: LayerRun): Promise<void> => {
    const now = Date.now();
    const heartbeatDue = o.nodeId !== undefined && now - run.reportedAt >= o.heartbeatS * 1000;
    if (heartbeatDue && !run.dirty && !run.unreachable) {
      // the heartbeat replaces this tick's poll (request budget), also while an index is
      // refused (the report says so); a local drift check costs no request
      try {
        if (
          run.index &&
          (await drifted(run.index, o.map, new Set(run.state.fileErrors.map((f) => f.path))))
        ) {
          log.info(
            `layer ${run.layer}: local files differ from generation ${run.state.generation}: repairing`,
          );
          run.etag = undefined;
        } else {
          await report(run, now);
          return;
        }
      } catch (e) {
        fail(run, e, now, run.failedEtag);
        run.unreachable = !(e instanceof PlatformError);
        return;
      }
    }
    const backingOff =
      run.failures > 0 && run.failedEtag !== undefined && (run.failedForGood || now < run.retryAt);
    const observed: { etag?: string; index?: LayerIndex } = {};
    let reached = true;
    try {
      const r = await syncOnce({
        store: o.store,
        layer: run.layer,
        map: o.map,
        stateFile: o.stateFile(run.layer),
        etag: backingOff ? run.failedEtag : run.etag,
        state: run.state,
        signal: o.signal,
        requestTimeoutS,
        observed,
        ...(gates.get(run.layer) ? { gate: gates.get(run.layer)! } : {}),
      });
      run.state = r.state;
      if (!(backingOff && r.kind === 'unchanged')) {
        // a 304 on the applied index, or a pass that went through: healthy
        if (run.failures > 0) {
          log.info(
            `layer ${run.layer}: recovered after ${((now - (run.failingSince ?? now)) / 1000).toFixed(1)} s`,
          );
          run.dirty = true;
        }
        run.failures = 0;
        run.unreachable = false;
        run.failingSince = undefined;
        run.failedEtag = undefined;
        run.failedForGood = false;
        run.error = null;
        if (r.kind === 'applied') {
          run.etag = r.etag;
          run.index = observed.index;
        }
      }
      if (r.changed) {
        run.dirty = true;
        log.info(
          `layer ${run.layer}: generation ${r.generation} applied (${r.written.length} written, ${r.removed.length} removed${r.fileErrors.length ? `, ${r.fileErrors.length} refused` : ''})`,
        );
        for (const f of r.fileErrors) {
          log.error(`layer ${run.layer}: ${f.path} not applied, its last good version stays: ${f.error}`);
        }
      }
    } catch (e) {
      if (o.signal.aborted) return; // SIGTERM aborted the requests of this tick: not an error
      reached = e instanceof PlatformError;
      run.unreachable = !reached;
      // a failed pass may have saved new ownership (before its writes): take it from disk
      run.state = await readState(o.stateFile(run.layer)).catch(() => run.state);
      fail(run, e, now, observed.etag);
    }
    if (run.dirty && reached && !o.signal.aborted) {
      try {
        await report(run, Date.now());
      } catch (e) {
        log.debug(`layer ${run.layer}: status report failed: ${describeError(e)}`);
      }
    }
  };

  log.info(
    `manifest-sync: ${o.nodeId ? `node ${o.nodeId}, ` : ''}layers ${o.layers.join(', ')}, every ${o.intervalS} s` +
      `${o.nodeId ? `, heartbeat ${o.heartbeatS} s` : ''}`,
  );
  let next = Date.now();
  while (!o.signal.aborted) {
    await Promise.all(runs.map((r) => tick(r)));
    next += intervalMs;
    const now = Date.now();
    if (next <= now) next += Math.ceil((now - next + 1) / intervalMs) * intervalMs;
    await sleep(next - Date.now(), o.signal);
  }
  log.info('manifest-sync: stopped');
}

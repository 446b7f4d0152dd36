import path from 'node:path';
import { IntegrityError, PlatformError } from '../errors.js';
import { log } from '../log.js';
import type { LayerIndex } from '../secrets/index-format.js';
import type { RolloutGate } from '../secrets/rollout.js';
import type { LocalHealth, NodeStatus } from '../secrets/status.js';
import type { SecretStore } from '../secrets/store.js';
import { type SyncOptions, syncOnce } from './pass.js';
import { backoffS, fingerprint, type PathMap, targetOf } from './plan.js';
import { type PresnapOptions, presnapHook } from './presnap.js';
import { type AgentState, localFingerprint, readState, removeStaleTemps } from './state.js';

/**
 * The manifest-sync agent's loop (DESIGN.md §5): {@link runAgent} keeps layers in step,
 * tick by tick; `--once` is one tick of the same loop ({@link runAgentOnce}). A tick runs
 * one pass (src/agent/pass.ts); the state between passes is src/agent/state.ts.
 */

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
  /**
   * the local control plane's health, added to the status report of the layers it names;
   * probed every `probeS` seconds (@default 5) too, and a change (healthy ↔ not, leader,
   * version) is reported at once instead of at the next heartbeat
   */
  health?: { layers: string[]; probe: () => Promise<LocalHealth>; probeS?: number };
  /**
   * masters: the etcd snapshot taken before the target of a staged rollout of `layer` when
   * this node is the first of its order (src/agent/presnap.ts); needs `nodeId` and the
   * layer's `gate`
   */
  presnap?: { layer: string } & Pick<PresnapOptions, 'take' | 'retryS'>;
}

/**
 * What of a health probe counts as a change worth a report at once: etcd healthy, leader
 * presence and leadership, version; API server ready. Timestamps and reasons' wording do not.
 */
export function healthSignature(h: LocalHealth): string {
  const e = h.etcd;
  const a = h.apiserver;
  return JSON.stringify([e?.healthy, e?.hasLeader, e?.isLeader, e?.version, a?.ready]);
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
  /** the error of the last tick's pass (undefined: it went through) */
  lastError?: unknown;
  /** the last tick applied a change (and logged it, with its refused files) */
  lastChanged: boolean;
  /** epoch ms of the last health probe (layers with health only) */
  probedAt: number;
  /** that probe's result and {@link healthSignature} */
  lastHealth?: LocalHealth;
  healthSig?: string;
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
  const { runs, tick } = await startLoop(o);
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

/** Options of {@link runAgentOnce}: the agent's, without the schedule. */
export type OnceOptions = Omit<
  AgentOptions,
  'intervalS' | 'heartbeatS' | 'signal' | 'backoffCapS' | 'health'
>;

/**
 * `manifest-sync --once`: one tick of the loop per layer, in order — the same pass, logs and
 * status report (with a node id) as the running agent's first tick — then the first layer's
 * failure, if any, as the command's error.
 * @throws the error of the first layer whose pass failed (IntegrityError exit 4 for an index
 *   or object that fails verification; S3/KMS errors), or an IntegrityError naming the
 *   manifests refused by validation (the other files were applied)
 */
export async function runAgentOnce(o: OnceOptions): Promise<void> {
  // once: a pass may take the bounded time of a single command (10 s per request)
  const { runs, tick } = await startLoop(
    {
      requestTimeoutS: 10,
      ...o,
      intervalS: 1,
      heartbeatS: Number.POSITIVE_INFINITY,
      signal: new AbortController().signal,
    },
    { once: true },
  );
  for (const run of runs) await tick(run);
  for (const run of runs) {
    if (run.lastError !== undefined) throw run.lastError;
    if (!run.lastChanged)
      for (const f of run.state.fileErrors)
        log.error(`layer ${run.layer}: ${f.path} not applied, its last good version stays: ${f.error}`);
    if (run.state.fileErrors.length) {
      throw new IntegrityError(`layer ${run.layer}: ${run.state.fileErrors.map((f) => f.error).join('; ')}`, {
        hint: 'fix the manifest and publish again; the other files were applied',
      });
    }
  }
}

/**
 * The loop's per-layer state (state files read, stale temp files removed) and its tick.
 * `once`: errors are not logged (the command reports the first one).
 */
async function startLoop(
  o: AgentOptions,
  mode: { once?: boolean } = {},
): Promise<{ runs: LayerRun[]; tick: (run: LayerRun) => Promise<void> }> {
  const capS = o.backoffCapS ?? 30;
  const requestTimeoutS = o.requestTimeoutS ?? 5;
  const runs: LayerRun[] = [];
  const gates = new Map<string, RolloutGate>();
  const beforeApply = new Map<string, NonNullable<SyncOptions['beforeApply']>>();
  for (const layer of o.layers) {
    const g = o.gate?.(layer);
    if (g) gates.set(layer, g);
    if (g && o.presnap?.layer === layer && o.nodeId !== undefined) {
      const { take, retryS } = o.presnap;
      beforeApply.set(
        layer,
        presnapHook({ node: o.nodeId, record: () => g.record, take, ...(retryS ? { retryS } : {}) }),
      );
    }
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
      lastChanged: false,
      probedAt: 0,
    });
  }

  const healthProbeMs = (o.health?.probeS ?? 5) * 1000;
  /** Probes (or, within this tick, reuses the probe of) the local health; returns it. */
  const probeHealth = async (run: LayerRun, now: number, forReport: boolean): Promise<LocalHealth> => {
    if (!(forReport && run.lastHealth && run.probedAt === now)) {
      run.lastHealth = await o.health!.probe();
      run.probedAt = now;
    }
    const sig = healthSignature(run.lastHealth);
    if (!forReport && run.healthSig !== undefined && sig !== run.healthSig) {
      const e = run.lastHealth.etcd;
      const a = run.lastHealth.apiserver;
      log.info(
        `layer ${run.layer}: local health changed (etcd ${e ? (e.healthy ? 'healthy' : `unhealthy: ${e.reason}`) : 'not probed'}, API server ${a ? (a.ready ? 'ready' : `not ready: ${a.detail}`) : 'not probed'}): reporting it now`,
      );
      run.dirty = true;
    }
    if (forReport || run.healthSig === undefined) run.healthSig = sig;
    return run.lastHealth;
  };

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
      ...(o.health?.layers.includes(run.layer) ? { health: await probeHealth(run, now, true) } : {}),
    };
    await o.store.putStatus(run.layer, o.nodeId, status, {
      abortSignal: AbortSignal.any([o.signal, AbortSignal.timeout(requestTimeoutS * 1000)]),
    });
    run.reportedAt = now;
    run.dirty = false;
  };

  const fail = (run: LayerRun, e: unknown, now: number, observedEtag: string | undefined) => {
    const msg = describeError(e);
    run.lastError = e;
    run.failures++;
    run.failingSince ??= now;
    run.failedEtag = observedEtag;
    run.failedForGood = e instanceof IntegrityError && observedEtag !== undefined;
    const delayS = backoffS(run.failures, o.intervalS, capS, Math.random());
    run.retryAt = now + delayS * 1000;
    if (!mode.once && (msg !== run.error || now >= run.logAt)) {
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
    run.lastError = undefined;
    run.lastChanged = false;
    if (
      o.nodeId !== undefined &&
      o.health?.layers.includes(run.layer) &&
      now - run.probedAt >= healthProbeMs
    ) {
      // a loopback probe, no request to AWS: a change is reported on this tick, not at the heartbeat
      await probeHealth(run, now, false);
    }
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
        ...(beforeApply.get(run.layer) ? { beforeApply: beforeApply.get(run.layer)! } : {}),
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
        run.lastChanged = true;
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
      // a node the rollout gate held on the previous index keeps the latest index's ETag as
      // the applied one; a pass that then failed on that same index (the target, once
      // allowed) must read it again after the backoff — a 304 on it is not "in step"
      if (observed.etag !== undefined && observed.etag === run.etag) run.etag = undefined;
    }
    if (run.dirty && reached && !o.signal.aborted) {
      try {
        await report(run, Date.now());
      } catch (e) {
        log.debug(`layer ${run.layer}: status report failed: ${describeError(e)}`);
      }
    }
  };

  return { runs, tick };
}

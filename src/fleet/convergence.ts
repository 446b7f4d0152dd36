import type { InstanceRow } from '../aws/inventory.js';
import { type NodeStatus, parseStatus, statusProblem } from '../secrets/status.js';
import type { SecretStore } from '../secrets/store.js';

/**
 * Convergence of a layer (issue 5): after a publish, has every running instance that syncs
 * the layer applied the new generation? Instances come from the inventory (EC2, by the
 * Environment tag), what their agents applied from `status/<layer>/<instance id>`.
 */

/** How the operator's messages name the instances of a layer. */
export function layerNodesLabel(layer: string): string {
  return (
    { secure: 'masters', compute: 'workers', common: 'nodes', locked: 'operators' }[layer] ?? `${layer} nodes`
  );
}

/**
 * The running (or starting) instances whose agents sync `layer`: masters carry the tag
 * Layer=secure, workers Layer=compute; every node (masters, workers, bastion) syncs `common`.
 * Stopped and terminating instances run no agent and are left out.
 */
export function instancesForLayer(rows: InstanceRow[], layer: string): InstanceRow[] {
  return rows.filter(
    (r) =>
      (r.state === 'running' || r.state === 'pending') &&
      (layer === 'common' ? r.layer !== null : r.layer === layer),
  );
}

/** One instance that has not converged, and why. */
export interface Missing {
  instanceId: string;
  /** the Name tag */
  name: string;
  /** e.g. `no status reported`, `at generation 3`, or the agent's error */
  reason: string;
}

export interface ConvergenceResult {
  layer: string;
  /** the generation waited for */
  generation: number;
  /** instances that applied `generation` (or later) without error */
  converged: number;
  total: number;
  missing: Missing[];
  /** seconds from the start of the wait to the last check */
  elapsedS: number;
}

/**
 * One check, pure: which instances have applied `generation` without error.
 *
 * An instance converged when its report shows a generation ≥ `generation`, no error and no
 * refused file. Otherwise it is missing with the reason: the agent's error or refused files
 * ("applied with errors"), the generation it is at and how long ago it last reported, or
 * that it never reported.
 *
 * @param statuses reports by node id (as read from the bucket)
 * @param now epoch ms, for the age of a report
 */
export function checkConvergence(
  instances: InstanceRow[],
  statuses: Map<string, NodeStatus>,
  layer: string,
  generation: number,
  now: number,
): Omit<ConvergenceResult, 'elapsedS'> {
  const missing: Missing[] = [];
  let converged = 0;
  for (const i of instances) {
    const s = statuses.get(i.instanceId);
    const problem = s && statusProblem(s);
    if (s && !problem && s.generation >= generation) {
      converged++;
      continue;
    }
    let reason: string;
    if (!s) reason = 'no status reported';
    else if (problem && s.generation >= generation) reason = problem;
    else {
      const age = Math.max(0, (now - Date.parse(s.heartbeatAt)) / 1000);
      reason = `at generation ${s.generation} (last report ${age.toFixed(0)} s ago)${problem ? `: ${problem}` : ''}`;
    }
    missing.push({ instanceId: i.instanceId, name: i.name, reason });
  }
  return { layer, generation, converged, total: instances.length, missing };
}

/** Reads the layer's status reports, keyed by node id; reports that do not parse are skipped. */
export async function readLayerStatuses(store: SecretStore, layer: string): Promise<Map<string, NodeStatus>> {
  const out = new Map<string, NodeStatus>();
  for (const r of await store.readStatuses(layer)) {
    const s = parseStatus(r.json);
    if (s) out.set(r.node, s);
  }
  return out;
}

export interface WaitOptions {
  store: SecretStore;
  /** the environment's inventory (src/aws/inventory.ts listInstances); filtered here by layer */
  instances: InstanceRow[];
  layer: string;
  /** generation to wait for; default: the layer's current index generation */
  generation?: number;
  /** seconds before giving up @default 120 */
  timeoutS?: number;
  /** seconds between checks @default 0.5 */
  pollS?: number;
  /** called after each check (progress on stderr) */
  onCheck?: (r: ConvergenceResult) => void;
}

/**
 * Waits until every running instance of `layer` reports `generation`, or the timeout.
 * Each check costs one ListObjectsV2 and one GetObject per report.
 *
 * @returns the last check: `converged === total` when it converged; otherwise `missing` names
 *   each instance that did not, with its reason (it does not throw on timeout: the caller
 *   decides, e.g. `sync-status --wait` exits 5)
 * @throws errors of S3 (unreachable, denied)
 */
export async function waitForConvergence(o: WaitOptions): Promise<ConvergenceResult> {
  const start = Date.now();
  const instances = instancesForLayer(o.instances, o.layer);
  let generation = o.generation;
  if (generation === undefined) {
    const snap = await o.store.readIndex(o.layer);
    generation = snap && snap !== 'not-modified' ? snap.index.generation : 0;
  }
  const deadline = start + (o.timeoutS ?? 120) * 1000;
  for (;;) {
    const now = Date.now();
    const r = {
      ...checkConvergence(instances, await readLayerStatuses(o.store, o.layer), o.layer, generation, now),
      elapsedS: (Date.now() - start) / 1000,
    };
    o.onCheck?.(r);
    if (r.converged === r.total || Date.now() >= deadline) return r;
    await new Promise((res) =>
      setTimeout(res, Math.min((o.pollS ?? 0.5) * 1000, Math.max(0, deadline - Date.now()))),
    );
  }
}

/**
 * The operator's summary line, e.g. `masters converged 3/3 in 1.4 s (generation 4)` or
 * `masters converged 2/3 (timed out after 30.0 s, generation 4); missing: i-0abc (play-secure): at generation 3 ...`.
 * @param waited false for a single check (no wait): `masters converged 2/3 at generation 4; missing: ...`
 */
export function formatConvergence(r: ConvergenceResult, waited = true): string {
  const head = `${layerNodesLabel(r.layer)} converged ${r.converged}/${r.total}`;
  const missing = r.missing
    .map((m) => `${m.instanceId}${m.name ? ` (${m.name})` : ''}: ${m.reason}`)
    .join('; ');
  if (!waited) return `${head} at generation ${r.generation}${missing ? `; missing: ${missing}` : ''}`;
  if (r.converged === r.total) return `${head} in ${r.elapsedS.toFixed(1)} s (generation ${r.generation})`;
  return `${head} (timed out after ${r.elapsedS.toFixed(1)} s, generation ${r.generation}); missing: ${missing}`;
}

import type { KubeApi, PodInfo } from '../kube/api.js';

/**
 * Draining a node (kubectl drain, as kops rolling-update runs it: IgnoreAllDaemonSets,
 * DeleteEmptyDirData, evictions retried every 5 s, --drain-timeout 15 m;
 * pkg/instancegroups/instancegroups.go). Evictions go through the policy/v1 Eviction
 * subresource, so PodDisruptionBudgets are respected; a 429 names the PDB and the pod at
 * once (the first attempt is immediate), unlike kops, which retried silently (kops#2537).
 */

/** Pods drain leaves: DaemonSet pods (their controller ignores unschedulable) and mirror pods (static pods cannot be evicted). */
export function evictable(p: PodInfo): boolean {
  return !p.daemonSet && !p.mirror && p.phase !== 'Succeeded' && p.phase !== 'Failed';
}

/** A pod a PDB keeps on the node. */
export interface Blocked {
  pod: string;
  pdb: string | null;
  message: string;
}

export interface DrainOptions {
  /** seconds before giving up @default 900 */
  timeoutS: number;
  /** seconds between eviction rounds @default 5 */
  retryS?: number;
  /** called when a pod's eviction is refused for the first time, and every minute after */
  onBlocked?: (b: Blocked) => void;
  onEvicted?: (pod: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  signal?: AbortSignal;
}

export type DrainResult =
  | { drained: true; evicted: string[] }
  | { drained: false; evicted: string[]; blocked: Blocked[] };

/**
 * Evicts every evictable pod on `node` until none is left or the timeout.
 * @returns drained, or the pods still blocked (with their PDBs) at the timeout
 */
export async function drainNode(kube: KubeApi, node: string, o: DrainOptions): Promise<DrainResult> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + o.timeoutS * 1000;
  const evicted: string[] = [];
  const lastReported = new Map<string, number>();
  for (;;) {
    o.signal?.throwIfAborted();
    const pods = (await kube.listPods(`spec.nodeName=${node}`)).filter(evictable);
    if (!pods.length) return { drained: true, evicted };
    const blocked: Blocked[] = [];
    for (const p of pods) {
      const id = `${p.namespace}/${p.name}`;
      const r = await kube.evict(p.namespace, p.name);
      if (r.evicted) {
        evicted.push(id);
        o.onEvicted?.(id);
        continue;
      }
      const b = { pod: id, pdb: r.pdb, message: r.message };
      blocked.push(b);
      const last = lastReported.get(id);
      if (last === undefined || now() - last >= 60_000) {
        lastReported.set(id, now());
        o.onBlocked?.(b);
      }
    }
    // everything listed was evicted: list again shortly (evicted pods may still be terminating)
    const waitMs = blocked.length ? (o.retryS ?? 5) * 1000 : 1000;
    if (now() + waitMs > deadline) {
      return blocked.length
        ? { drained: false, evicted, blocked }
        : {
            drained: false,
            evicted,
            blocked: pods.map((p) => ({
              pod: `${p.namespace}/${p.name}`,
              pdb: null,
              message: 'still terminating',
            })),
          };
    }
    await sleep(waitMs);
  }
}

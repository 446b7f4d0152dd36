import path from 'node:path';
import { type AgentOptions, runAgent } from '../../src/agent/agent.js';
import { RolloutGate } from '../../src/secrets/rollout.js';
import type { LocalHealth } from '../../src/secrets/status.js';
import type { SecretStore } from '../../src/secrets/store.js';

/**
 * The masters of a staged-rollout test: one real manifest-sync agent loop per node id
 * (src/agent/agent.ts runAgent), syncing the secure layer into `<work>/<node>/manifests`
 * through its RolloutGate, polling every 0.2 s and reporting every 0.5 s, with the local
 * health `probe(node)` returns (the test decides which master is healthy).
 */
export interface MasterAgentsOptions {
  store: SecretStore;
  environment: string;
  nodes: readonly string[];
  /** scratch directory: manifests and agent state files go below it */
  work: string;
  /** stops every loop */
  signal: AbortSignal;
  probe: (node: string) => () => Promise<LocalHealth>;
  /** the pre-rollout etcd snapshot of a node (src/agent/presnap.ts); none by default */
  presnap?: (node: string) => AgentOptions['presnap'];
}

/**
 * Starts the agents ({@link MasterAgentsOptions}).
 * @returns each agent loop's promise (settles after `signal` aborts)
 */
export function startMasterAgents(o: MasterAgentsOptions): Promise<void>[] {
  return o.nodes.map((node) =>
    runAgent({
      store: o.store,
      layers: ['secure'],
      map: { dest: path.join(o.work, node, 'manifests') },
      stateFile: (l) => path.join(o.work, `${node}.${l}.state.json`),
      intervalS: 0.2,
      heartbeatS: 0.5,
      nodeId: node,
      signal: o.signal,
      gate: (l) => new RolloutGate(o.store, o.environment, l, node),
      health: { layers: ['secure'], probe: o.probe(node) },
      ...(o.presnap?.(node) ? { presnap: o.presnap(node)! } : {}),
    }),
  );
}

/**
 * Polls `cond` every 100 ms until it holds.
 * @param timeoutMs @default 30000
 * @throws Error naming `what` when it does not hold within `timeoutMs`
 */
export async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

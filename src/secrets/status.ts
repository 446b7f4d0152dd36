import { z } from 'zod';

/**
 * The status report each manifest-sync agent writes to `status/<layer>/<node-id>` (DESIGN.md
 * §4) after every change and on a heartbeat; `run --wait` and `sync-status` read them.
 */

/** What a master's agent saw of its local etcd member and API server (probes: src/agent/health.ts). */
export const etcdHealthSchema = z.object({
  checkedAt: z.string(),
  healthy: z.boolean(),
  /** why not healthy (etcd's reason, or the probe's error); empty when healthy */
  reason: z.string(),
  hasLeader: z.boolean().nullable(),
  isLeader: z.boolean().nullable(),
  /** server version, e.g. 3.6.5 */
  version: z.string().nullable(),
});

export const apiserverHealthSchema = z.object({
  checkedAt: z.string(),
  ready: z.boolean(),
  /** the failed checks of /readyz (`[-]...` lines) or the probe's error; empty when ready */
  detail: z.string(),
});

export const localHealthSchema = z.object({
  etcd: etcdHealthSchema.optional(),
  apiserver: apiserverHealthSchema.optional(),
});

export type EtcdHealth = z.infer<typeof etcdHealthSchema>;
export type ApiserverHealth = z.infer<typeof apiserverHealthSchema>;
export type LocalHealth = z.infer<typeof localHealthSchema>;

const fileErrorSchema = z.object({ path: z.string(), error: z.string() });

const statusSchema = z.object({
  node: z.string(),
  layer: z.string(),
  /** generation of the index last applied (possibly with file errors); 0 = none yet */
  generation: z.number().int().nonnegative(),
  /** hex SHA-256 of that index's plaintext */
  indexDigest: z.string().nullable(),
  /** ISO 8601 time the generation was applied */
  appliedAt: z.string().nullable(),
  /** ISO 8601 time of this report */
  heartbeatAt: z.string(),
  /** the last error of the agent for this layer (the index refused, the bucket unreachable...), null when healthy */
  error: z.string().nullable(),
  /** files of `generation` that were not applied (their last good version stays) */
  fileErrors: z.array(fileErrorSchema),
  /** masters: the local etcd member's and API server's health, with timestamps (src/agent/health.ts) */
  health: localHealthSchema.optional(),
});

export type NodeStatus = z.infer<typeof statusSchema>;

/** Parses a status report read from the bucket; undefined when it is not one. */
export function parseStatus(json: unknown): NodeStatus | undefined {
  const r = statusSchema.safeParse(json);
  return r.success ? r.data : undefined;
}

/** One line summary of what is wrong with a node's report, or undefined when it is healthy. */
export function statusProblem(s: NodeStatus): string | undefined {
  if (s.error) return s.error;
  if (s.fileErrors.length) {
    return `generation ${s.generation} applied with errors: ${s.fileErrors.map((f) => `${f.path}: ${f.error}`).join('; ')}`;
  }
  return undefined;
}

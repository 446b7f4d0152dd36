import { z } from 'zod';
import { IntegrityError } from '../errors.js';
import { isSafePath } from './layers.js';

/**
 * The encrypted per-layer index `index/<layer>` (DESIGN.md §4): the list of a layer's
 * files with their plaintext SHA-256, size, mode and S3 VersionId, a generation that only
 * goes up, and the digest of the previous index (a hash chain operators can audit).
 * Written last, with a conditional write, so a publish is atomic.
 */

export const INDEX_FORMAT = 1;

const entrySchema = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Unix permission bits, e.g. 0o600 = 384 */
  mode: z.number().int().min(0).max(0o777),
  versionId: z.string().min(1).max(1024),
});

const indexSchema = z.strictObject({
  format: z.literal(INDEX_FORMAT),
  environment: z.string(),
  layer: z.string(),
  generation: z.number().int().positive(),
  /** hex SHA-256 of the previous index's plaintext; null for generation 1 */
  previous: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  updatedAt: z.string(),
  files: z.record(z.string(), entrySchema),
});

export type IndexEntry = z.infer<typeof entrySchema>;
export type LayerIndex = z.infer<typeof indexSchema>;

/**
 * Parses and checks a decrypted index.
 * @throws IntegrityError when it is malformed, names an unsafe path, or belongs to another
 *   environment or layer
 */
export function parseIndex(plaintext: Buffer, expected: { environment: string; layer: string }): LayerIndex {
  let json: unknown;
  try {
    json = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw new IntegrityError(`index/${expected.layer}: not valid JSON`);
  }
  const r = indexSchema.safeParse(json);
  if (!r.success)
    throw new IntegrityError(`index/${expected.layer}: malformed (${r.error.issues[0]?.message})`);
  const idx = r.data;
  if (idx.environment !== expected.environment || idx.layer !== expected.layer) {
    throw new IntegrityError(
      `index/${expected.layer}: belongs to environment "${idx.environment}" layer "${idx.layer}", expected "${expected.environment}" layer "${expected.layer}"`,
    );
  }
  for (const p of Object.keys(idx.files)) {
    if (!isSafePath(p)) throw new IntegrityError(`index/${expected.layer}: unsafe path ${JSON.stringify(p)}`);
  }
  return idx;
}

/** Serialises an index deterministically (sorted file paths). */
export function serializeIndex(idx: LayerIndex): Buffer {
  const files: Record<string, IndexEntry> = {};
  for (const p of Object.keys(idx.files).sort()) files[p] = idx.files[p]!;
  return Buffer.from(`${JSON.stringify({ ...idx, files }, null, 1)}\n`);
}

/** A local file as the planner sees it. */
export interface LocalFileInfo {
  /** layer-relative path, e.g. `manifests/etcd.yaml` */
  path: string;
  sha256: string;
  size: number;
  mode: number;
}

/** What a publish of one layer will do. */
export interface PublishPlan {
  /** new files: upload */
  added: string[];
  /** content differs: upload */
  changed: string[];
  /** same content, different mode: index-only update, no upload */
  modeChanged: string[];
  /** listed in the index, gone locally: leave the index (old versions stay in the bucket) */
  removed: string[];
  unchanged: string[];
}

/**
 * Plans a publish by comparing local plaintext digests with the index — never ciphertexts,
 * which differ on every encryption. Pure.
 */
export function planPublish(local: LocalFileInfo[], index: LayerIndex | undefined): PublishPlan {
  const plan: PublishPlan = { added: [], changed: [], modeChanged: [], removed: [], unchanged: [] };
  const current = index?.files ?? {};
  const seen = new Set<string>();
  for (const f of [...local].sort((a, b) => a.path.localeCompare(b.path))) {
    seen.add(f.path);
    const e = current[f.path];
    if (!e) plan.added.push(f.path);
    else if (e.sha256 !== f.sha256 || e.size !== f.size) plan.changed.push(f.path);
    else if (e.mode !== f.mode) plan.modeChanged.push(f.path);
    else plan.unchanged.push(f.path);
  }
  plan.removed = Object.keys(current)
    .filter((p) => !seen.has(p))
    .sort();
  return plan;
}

/** True when the plan changes nothing. */
export function isEmptyPlan(p: PublishPlan): boolean {
  return p.added.length + p.changed.length + p.modeChanged.length + p.removed.length === 0;
}

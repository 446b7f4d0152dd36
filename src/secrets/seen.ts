import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { atomicWrite } from '../fsutil.js';
import type { IndexSnapshot, SecretStore } from './store.js';

/**
 * The highest generation of each layer this working copy has seen — fetched by
 * `fetch-secrets` or written by `upload-secrets`/`run` — kept beside the working copy
 * (`secrets/<env>/.fetched-generations.json`, a dot-file: not a layer, never published).
 * Generations only go up (DESIGN.md §4), so an index older than one seen is a replay and
 * an index that vanished after a generation was seen is a deletion; both are integrity
 * errors (exit 4), found before anything is written locally or to the bucket.
 */
export const SEEN_FILE = '.fetched-generations.json';

/** Layer → highest generation seen. */
export type SeenGenerations = Record<string, number>;

/**
 * Reads the seen generations of a working copy; a missing or unreadable file is "nothing
 * seen" (and entries that are not positive integers are ignored).
 */
export async function readSeen(dir: string): Promise<SeenGenerations> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path.join(dir, SEEN_FILE), 'utf8'));
  } catch {
    return {};
  }
  const out: SeenGenerations = {};
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    for (const [k, v] of Object.entries(json))
      if (Number.isInteger(v) && (v as number) > 0) out[k] = v as number;
  }
  return out;
}

/**
 * Records generations as seen (each layer keeps the higher of the old and the new value).
 * Creates the working copy directory (0700) if needed.
 */
export async function recordSeen(dir: string, generations: SeenGenerations): Promise<void> {
  const seen = await readSeen(dir);
  for (const [layer, g] of Object.entries(generations)) seen[layer] = Math.max(seen[layer] ?? 0, g);
  await atomicWrite(path.join(dir, SEEN_FILE), `${JSON.stringify(seen, null, 1)}\n`, 0o600, 0o700);
}

/**
 * Checks a layer's index read from the bucket against the generation seen before.
 * @param snap the index read (undefined: there is no `index/<layer>`)
 * @throws IntegrityError (exit 4) when the index is gone although a generation was seen,
 *   or is older than the generation seen (a replayed index)
 */
export function checkSeen(layer: string, snap: IndexSnapshot | undefined, seen: SeenGenerations): void {
  const last = seen[layer] ?? 0;
  if (!snap) {
    if (last > 0) {
      throw new IntegrityError(
        `index/${layer} is missing, but generation ${last} of layer ${layer} was seen before: the index was deleted; nothing was written`,
        {
          hint: `S3 versioning keeps the index's earlier versions: upload-secrets --recover --layer ${layer}`,
        },
      );
    }
    return;
  }
  if (snap.index.generation < last) {
    throw new IntegrityError(
      `index/${layer}: generation ${snap.index.generation} is older than generation ${last} fetched before (rollback refused); nothing was written`,
    );
  }
}

/**
 * Reads `index/<layer>` for a publish and checks it against the seen generations.
 * @returns the snapshot to publish against (`null`: the layer was never published), for
 *   `SecretStore.prepare(..., { base })`
 * @throws IntegrityError as {@link checkSeen}, or when the index fails authentication
 */
export async function readIndexForPublish(
  store: SecretStore,
  layer: string,
  seen: SeenGenerations,
): Promise<IndexSnapshot | null> {
  const snap = await store.readIndex(layer);
  if (snap === 'not-modified') throw new Error('unreachable: unconditional read');
  checkSeen(layer, snap, seen);
  return snap ?? null;
}

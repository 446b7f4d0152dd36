import { IntegrityError } from '../errors.js';
import { DecryptDeniedError } from './keyring.js';
import { type IndexSnapshot, type IndexVersion, NO_OBJECT, type SecretStore } from './store.js';

/**
 * The way back from a corrupted index (`upload-secrets --recover`). S3 versioning keeps
 * every version of `index/<layer>`; after one fails authentication (tampered, truncated,
 * written by something else) no publish can build on it. Recovery reads every stored
 * version, takes the newest that authenticates *and* continues the generation chain as
 * the base, and publishes the local working copy as a new generation above every
 * generation seen — in the bucket's authentic versions and in this working copy — with a
 * conditional write over the current (corrupt) object. Agents accept it because it only
 * moves forward (src/agent/plan.ts checkIndex: a generation more than one above the applied
 * one is not chain-checked; exactly one above must name the applied digest).
 */

/** One stored index version as recovery judged it. */
export interface JudgedVersion extends IndexVersion {
  /** the verified index, when it authenticates */
  snap?: IndexSnapshot;
  /** why it does not, when it does not */
  error?: string;
}

/** What recovery of one layer will do. Pure data: {@link planRecovery}. */
export interface RecoveryPlan {
  layer: string;
  /** versions newer than the base that failed authentication (what is being repaired) */
  failed: JudgedVersion[];
  /** the newest authentic version that continues the chain: the new index builds on it */
  base: JudgedVersion & { snap: IndexSnapshot };
  /** the generation the new index gets */
  generation: number;
  /** the ETag of the version S3 serves now (NO_OBJECT when deleted): the new index is written only over it */
  currentEtag: string;
}

/**
 * Chooses the base and the new generation. Pure.
 *
 * A version continues the chain when it is generation 1 with no previous digest, or an
 * authentic version of generation g−1 has the digest its `previous` names. The new
 * generation is one above the highest authentic or seen generation; when the base is not
 * that highest one, one more is skipped, so that an agent at the highest generation does
 * not see "exactly one above, but a foreign previous digest".
 *
 * @param versions every stored version, newest first (the first is the one served now)
 * @param seen the highest generation this working copy saw (0: none)
 * @throws IntegrityError when there are no versions, when the current version
 *   authenticates (nothing to recover), or when no version continues the chain
 */
export function planRecovery(layer: string, versions: JudgedVersion[], seen: number): RecoveryPlan {
  const current = versions[0];
  if (!current) throw new IntegrityError(`index/${layer}: no stored version: nothing to recover from`);
  if (current.snap) {
    throw new IntegrityError(
      `index/${layer}: the current version (generation ${current.snap.index.generation}) authenticates: nothing to recover`,
      { hint: 'publish with upload-secrets as usual' },
    );
  }
  const authentic = versions.filter((v): v is JudgedVersion & { snap: IndexSnapshot } => Boolean(v.snap));
  const byDigest = new Map(authentic.map((v) => [v.snap.digest, v]));
  const continues = (v: JudgedVersion & { snap: IndexSnapshot }): boolean => {
    const { generation, previous } = v.snap.index;
    if (generation === 1) return previous === null;
    const prev = previous === null ? undefined : byDigest.get(previous);
    return prev !== undefined && prev.snap.index.generation === generation - 1;
  };
  const baseIndex = versions.findIndex(
    (v) => v.snap && continues(v as JudgedVersion & { snap: IndexSnapshot }),
  );
  if (baseIndex < 0) {
    throw new IntegrityError(
      `index/${layer}: none of its ${versions.length} stored versions authenticates and continues the generation chain`,
    );
  }
  const base = versions[baseIndex] as JudgedVersion & { snap: IndexSnapshot };
  const highest = Math.max(seen, ...authentic.map((v) => v.snap.index.generation));
  const generation = highest + (base.snap.index.generation === highest ? 1 : 2);
  return {
    layer,
    failed: versions.slice(0, baseIndex).filter((v) => !v.snap),
    base,
    generation,
    currentEtag: current.deleteMarker ? NO_OBJECT : current.etag,
  };
}

/**
 * Reads every stored version of a layer's index and judges each (authentic or why not).
 * @returns newest first
 */
export async function judgeIndexVersions(store: SecretStore, layer: string): Promise<JudgedVersion[]> {
  const out: JudgedVersion[] = [];
  for (const v of await store.listIndexVersions(layer)) {
    if (v.deleteMarker) {
      out.push({ ...v, error: 'deleted (a delete marker)' });
      continue;
    }
    try {
      out.push({ ...v, snap: await store.readIndexVersion(layer, v.versionId) });
    } catch (e) {
      if (!(e instanceof IntegrityError || e instanceof DecryptDeniedError)) throw e;
      out.push({ ...v, error: e.message });
    }
  }
  return out;
}

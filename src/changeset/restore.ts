import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConflictError } from '../errors.js';
import { atomicWrite, listFiles } from '../fsutil.js';
import { displayPath } from '../paths.js';
import type { Layer } from '../secrets/layers.js';
import { recordSeen, type SeenGenerations } from '../secrets/seen.js';
import type { IndexSnapshot, SecretStore } from '../secrets/store.js';

/**
 * A working copy restored from the bucket for planning: `run` on a machine whose
 * `secrets/<env>/` is empty (a fresh clone, a CI runner, a deleted copy) plans against the
 * layers the bucket holds, as `fetch-secrets` would write them, instead of generating a
 * new PKI over a live cluster (issue 13: "deleting secrets/<env>/ … and running `run --plan`
 * afterwards shows no changes and the same certificate fingerprints").
 * The files are written to a private temporary directory (0700, files with the index's
 * modes), never under secrets/ until the apply; {@link disposeRestore} removes it.
 */
export interface RestoredCopy {
  /** the temporary secrets root the plan read (absolute) */
  root: string;
  /** layer → generation restored */
  generations: Record<string, number>;
  /** files restored */
  files: number;
}

/**
 * Pure: whether the working copy is behind the bucket, and what to do about it.
 * - nothing behind (every published layer's generation was seen here): `in-step`;
 * - behind, and the working copy holds no file of any layer: `restore` (a fresh copy);
 * - behind, with local files: `conflict` — publishing them would overwrite what someone
 *   else published since (a lost update) or replace a PKI this copy never saw.
 * @param bases layer → the bucket's current index (null: never published)
 * @param seen the generations this working copy has seen (secrets/<env>/.fetched-generations.json)
 * @param localFiles how many files the working copy holds, all layers together
 */
export function restoreDecision(
  bases: Map<Layer, IndexSnapshot | null>,
  seen: SeenGenerations,
  localFiles: number,
): { kind: 'in-step' } | { kind: 'restore' } | { kind: 'conflict'; behind: string[] } {
  const behind: string[] = [];
  for (const [layer, base] of bases) {
    if (base && base.index.generation > (seen[layer] ?? 0))
      behind.push(
        `${layer} is at generation ${base.index.generation}, this copy saw ${seen[layer] ?? 'none'}`,
      );
  }
  if (!behind.length) return { kind: 'in-step' };
  return localFiles === 0 ? { kind: 'restore' } : { kind: 'conflict', behind };
}

/**
 * Decides and, for a fresh working copy, fetches every published layer (verified as
 * fetch-secrets verifies it) into a private temporary directory.
 * @param secrets the working copy, `secrets/<env>/`
 * @returns the restored copy, or undefined when the working copy is in step with the bucket
 * @throws ConflictError (exit 3) when the working copy has files but is behind the bucket,
 *   naming each layer; IntegrityError when a fetched file fails verification (nothing kept)
 */
export async function restoreForPlan(
  store: SecretStore,
  secrets: string,
  environment: string,
  bases: Map<Layer, IndexSnapshot | null>,
  seen: SeenGenerations,
): Promise<RestoredCopy | undefined> {
  let localFiles = 0;
  for (const layer of bases.keys()) localFiles += (await listFiles(path.join(secrets, layer))).length;
  const d = restoreDecision(bases, seen, localFiles);
  if (d.kind === 'in-step') return undefined;
  if (d.kind === 'conflict') {
    throw new ConflictError(
      `${displayPath(secrets)} is behind the bucket (${d.behind.join('; ')}): publishing it would overwrite what was published since; nothing was written`,
      {
        hint: `fetch-secrets -e ${environment} (it refuses to overwrite local changes without --force), then run again`,
      },
    );
  }
  const root = await mkdtemp(path.join(os.tmpdir(), 'kp-restore-'));
  try {
    const generations: Record<string, number> = {};
    let files = 0;
    for (const [layer, base] of bases) {
      if (!base) continue;
      const data = await store.fetchAll(layer, base.index);
      for (const [f, content] of data) {
        await atomicWrite(path.join(root, layer, f), content, base.index.files[f]!.mode, 0o700);
        files++;
      }
      generations[layer] = base.index.generation;
    }
    return { root, generations, files };
  } catch (e) {
    await rm(root, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The apply's first local step: copies the restored files into `secrets/<env>/` (which held
 * none when the plan was made) and records their generations as seen.
 * @throws ConflictError when the working copy gained files since the plan
 */
export async function applyRestore(restored: RestoredCopy, secrets: string): Promise<void> {
  for (const layer of Object.keys(restored.generations)) {
    if ((await listFiles(path.join(secrets, layer))).length)
      throw new ConflictError(
        `${displayPath(secrets)}/${layer} gained files since the plan restored it from the bucket; nothing was restored`,
      );
  }
  for (const layer of Object.keys(restored.generations)) {
    for (const f of await listFiles(path.join(restored.root, layer))) {
      const from = path.join(restored.root, layer, f);
      const mode = (await stat(from)).mode & 0o777;
      await atomicWrite(path.join(secrets, layer, f), await readFile(from), mode, 0o700);
    }
  }
  await recordSeen(secrets, restored.generations);
}

/** Removes the temporary copy (the plan's and the apply's last step, also on errors). */
export async function disposeRestore(restored: RestoredCopy | undefined): Promise<void> {
  if (restored) await rm(restored.root, { recursive: true, force: true });
}

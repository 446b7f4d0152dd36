import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { PlatformError } from '../errors.js';
import { atomicWrite, fileMode, TEMP_FILE_RE } from '../fsutil.js';
import { sha256 } from '../secrets/envelope.js';
import { EMPTY_STATE, fingerprint, type SyncState } from './plan.js';

/**
 * The agent's state on the node (DESIGN.md §5): per layer, a JSON file with the generation
 * applied, the index digest, the files the agent wrote (so it removes only its own) and the
 * files it refused; plus the housekeeping of interrupted writes.
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

/** Writes the agent state of a layer atomically (0600, its directory 0700). */
export async function saveState(stateFile: string, s: AgentState): Promise<void> {
  await atomicWrite(stateFile, `${JSON.stringify(s, null, 1)}\n`, 0o600, 0o700);
}

/** The fingerprint (digest and mode) of a local file; undefined when it cannot be read. */
export async function localFingerprint(target: string): Promise<string | undefined> {
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

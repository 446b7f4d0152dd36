import { chmod, lstat, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Problem, UserError, ValidationError } from '../errors.js';
import { atomicWrite, readRegularFile } from '../fsutil.js';
import { displayPath } from '../paths.js';
import { LAYERS, type RenderedFile, renderTree } from './render.js';
import type { ManifestValues } from './values.js';

/** Mode of every directory created or kept under the secrets root (DESIGN.md §7). */
export const SECRETS_DIR_MODE = 0o700;

/** What {@link writeRendered} did, as layer-relative paths in the order of the input. */
export interface WriteResult {
  /** files created or replaced */
  written: string[];
  /** files whose bytes were already identical: left untouched (mtime kept; mode corrected if it differed) */
  unchanged: string[];
}

/** Problems with a layer-relative path: absolute, `..`, `.`, empty or dot-prefixed segments, unknown layer. */
function pathProblems(p: string): string[] {
  const segments = p.split('/');
  const out: string[] = [];
  if (p.startsWith('/') || p.includes('\\')) out.push('must be a relative path with / separators');
  if (segments.some((s) => s === '' || s === '.' || s === '..'))
    out.push('has an empty, "." or ".." segment');
  if (segments.some((s) => s.startsWith('.')))
    out.push('has a dot-prefixed segment (reserved for temporary files)');
  if (segments.length < 2 || !(LAYERS as readonly string[]).includes(segments[0]!)) {
    out.push(`must start with a layer: ${LAYERS.join(', ')}`);
  }
  return out;
}

/**
 * Creates `dir` and its parents up from `root` (included) with mode 0700, and tightens existing
 * ones to 0700. @throws UserError when one of them exists and is not a directory
 */
async function ensurePrivateDir(root: string, dir: string): Promise<void> {
  const rel = path.relative(root, dir);
  let current = root;
  for (const segment of ['', ...rel.split(path.sep).filter(Boolean)]) {
    current = segment === '' ? root : path.join(current, segment);
    await mkdir(current, { recursive: true, mode: SECRETS_DIR_MODE });
    // the root may be a symbolic link to a directory; below it, links are refused
    const st = current === root ? await stat(current) : await lstat(current);
    if (!st.isDirectory()) throw new UserError(`${displayPath(current)}: not a directory`);
    if ((st.mode & 0o777) !== SECRETS_DIR_MODE) await chmod(current, SECRETS_DIR_MODE);
  }
}

/**
 * Writes rendered files into the local working copy of the secrets bucket, `secretsRoot/<path>`.
 *
 * Every path is checked before anything is written. A file whose bytes already match is not
 * rewritten (its mtime stays, so nothing downstream sees a change; its mode is corrected if it
 * differs). Other files are written atomically (see atomicWrite: temp file + fsync + rename).
 * Directories are created with mode 0700, and existing ones on the way are tightened to 0700.
 *
 * @param secretsRoot the secrets working copy (paths.secretsDir()); created if missing
 * @param files rendered files (renderTree()); paths layer-relative with `/` separators
 * @returns written and unchanged paths, in input order
 * @throws ValidationError (exit 2) when a path is absolute, has `..`/`.`/dot-prefixed/empty
 *   segments, does not start with a layer, appears twice, or a mode is not within 0..0o777 —
 *   nothing is written then
 * @throws the fs error of a failed write; files written before it stay (each one whole)
 */
export async function writeRendered(secretsRoot: string, files: RenderedFile[]): Promise<WriteResult> {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    for (const message of pathProblems(f.path)) problems.push({ file: f.path, message });
    if (seen.has(f.path)) problems.push({ file: f.path, message: 'listed twice' });
    seen.add(f.path);
    if (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o777) {
      problems.push({ file: f.path, message: `mode ${String(f.mode)} is not a file permission (0..0o777)` });
    }
  }
  if (problems.length > 0) {
    throw new ValidationError(`cannot write rendered files under ${displayPath(secretsRoot)}`, problems);
  }

  const root = path.resolve(secretsRoot);
  const result: WriteResult = { written: [], unchanged: [] };
  for (const f of files) {
    const target = path.join(root, ...f.path.split('/'));
    await ensurePrivateDir(root, path.dirname(target));
    const bytes = Buffer.from(f.content, 'utf8');
    const existing = await readRegularFile(target).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (existing?.equals(bytes)) {
      if (((await stat(target)).mode & 0o777) !== f.mode) await chmod(target, f.mode);
      result.unchanged.push(f.path);
      continue;
    }
    await atomicWrite(target, bytes, f.mode, SECRETS_DIR_MODE);
    result.written.push(f.path);
  }
  return result;
}

/**
 * Renders a template tree and writes it: everything is rendered and validated first, so when
 * any template fails nothing at all is written.
 *
 * @param templateDir root of the template tree (platform/manifests)
 * @param values template values (manifestValues())
 * @param secretsRoot the secrets working copy (paths.secretsDir())
 * @throws ValidationError (exit 2) from renderTree or writeRendered, before any write
 */
export async function renderToSecrets(
  templateDir: string,
  values: ManifestValues,
  secretsRoot: string,
): Promise<WriteResult> {
  const files = await renderTree(templateDir, values);
  return writeRendered(secretsRoot, files);
}

import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from './errors.js';
import { displayPath } from './paths.js';

/** Names of atomicWrite's temp files: `.<name>.<12 hex>.tmp` (a dot-file: kubelet ignores it). */
export const TEMP_FILE_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;

function tempFile(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Atomic file writes: the bytes go to a dot-prefixed temp file in the same directory
 * (kubelet and our own walkers ignore dot-files), are fsync'ed, renamed over the target
 * (rename(2) is atomic within a file system), and the directory is fsync'ed so the rename
 * survives a crash. A reader sees the old file or the new one, never a partial one.
 *
 * @param mode Unix permission bits of the file (e.g. 0o600)
 * @param dirMode permission bits of directories created on the way (e.g. 0o700)
 */
export async function atomicWrite(
  file: string,
  data: Buffer | string,
  mode = 0o600,
  dirMode = 0o700,
): Promise<void> {
  await writeAndRename(file, data, mode, dirMode);
  await fsyncDir(path.dirname(file));
}

/** One file of {@link atomicWriteAll}. */
export interface FileToWrite {
  file: string;
  data: Buffer | string;
  /** Unix permission bits of the file (e.g. 0o600) */
  mode: number;
}

/**
 * Writes files as {@link atomicWrite} does, up to `opts.concurrency` (default 16) at a
 * time, and fsyncs each directory once, after every rename into it, instead of once per
 * file: what a fetch of hundreds of files needs (one after another, each with its own
 * fsyncs, 300 files took 0.5-1.5 s on the shared build machine, 2026-12-02).
 *
 * Each file is all-or-nothing, as with atomicWrite; the set is not. On a failure no further
 * write is started, every write already started is finished (its temp file removed if its
 * rename failed) and the directories of the files renamed are fsynced before the error of
 * the first failing file (in `files` order) is thrown.
 * @param opts.dirMode permission bits of directories created on the way (default 0o700)
 */
export async function atomicWriteAll(
  files: FileToWrite[],
  opts: { dirMode?: number; concurrency?: number } = {},
): Promise<void> {
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(opts.concurrency ?? 16);
  const dirMode = opts.dirMode ?? 0o700;
  const renamedIn = new Set<string>();
  let failed = false;
  const results = await Promise.allSettled(
    files.map((f) =>
      limit(async () => {
        if (failed) return;
        try {
          await writeAndRename(f.file, f.data, f.mode, dirMode);
          renamedIn.add(path.dirname(f.file));
        } catch (e) {
          failed = true;
          throw e;
        }
      }),
    ),
  );
  await Promise.all([...renamedIn].map((d) => limit(() => fsyncDir(d))));
  const first = results.find((r) => r.status === 'rejected');
  if (first) throw first.reason;
}

/** atomicWrite without the directory's fsync: temp file, fsync, rename. */
async function writeAndRename(
  file: string,
  data: Buffer | string,
  mode: number,
  dirMode: number,
): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: dirMode });
  const tmp = tempFile(file);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // open()'s mode is filtered by the umask
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** fsync(2) a directory so a rename in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } catch {
    // some file systems refuse fsync on directories; the rename is still atomic
  } finally {
    await dh.close();
  }
}

/**
 * Lists regular files under `root` recursively as `/`-separated relative paths, sorted.
 * Skips dot-files and dot-directories (temp files) and anything that is not a regular file
 * or directory (symlinks are not followed). A missing root yields [].
 */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, rel: string): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const ent of entries) {
      if (ent.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) await walk(path.join(dir, ent.name), r);
      else if (ent.isFile()) out.push(r);
    }
  }
  await walk(root, '');
  return out.sort();
}

/** Permission bits of a file, or undefined when it does not exist. */
export async function fileMode(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mode & 0o777;
  } catch {
    return undefined;
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Reads a file the toolkit takes as input (an environment file, a PKI file, a layer
 * file), refusing anything but a regular file *before* reading: a FIFO would block the
 * read forever, a directory fails with EISDIR and no name. The file is opened with
 * O_NONBLOCK (so opening a FIFO returns at once) and checked with fstat on the open
 * descriptor, so it cannot be swapped between the check and the read.
 *
 * @param file path to read (symbolic links are followed)
 * @returns the bytes
 * @throws UserError (exit 2) naming the file when it is a directory, FIFO, socket or device
 * @throws the open(2) error (ENOENT, EACCES) as it is, for callers that handle a missing file
 */
export async function readRegularFile(file: string): Promise<Buffer> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new UserError(`${displayPath(file)}: is ${kindOf(st)}, expected a regular file`);
    }
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

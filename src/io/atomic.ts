// The one way mope-clip writes anything a user keeps: build it under a temporary name beside the target (same
// folder, so the final rename never crosses a file system and never lands in / or the working directory), flush
// it to disk, then rename it over the target. A reader never sees a half-written file or folder, and a crash or
// an error leaves the previous version intact.
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { OutputError } from '../errors.ts';

let counter = 0;

/** Creates `dir` (and parents); a file in the way or a permission problem is an OutputError naming it. */
export function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new OutputError(
        `cannot create folder ${dir}: a file of that name (or of one of its parents) is in the way.`,
      );
    }
    throw new OutputError(`cannot create folder ${dir}: ${(e as Error).message}.`);
  }
}

const USER_FS_ERRORS = new Set(['ENOSPC', 'EACCES', 'EROFS', 'EISDIR', 'EPERM', 'EDQUOT']);

/** File-system failures a user can cause or fix (full disk, permissions) become OutputErrors naming the path. */
function asOutputError(path: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code && USER_FS_ERRORS.has(code) ? new OutputError(`cannot write ${path}: ${(e as Error).message}.`) : e;
}

function refuseFolder(path: string): void {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    return; // does not exist yet
  }
  if (isDir) throw new OutputError(`cannot write ${path}: it is an existing folder; expected a file name.`);
}

/** A fresh hidden name beside `target`: DIR/.NAME.TAG-PID-N. */
export function tempBeside(target: string, tag = 'tmp'): string {
  const abs = resolve(target);
  return join(dirname(abs), `.${basename(abs)}.${tag}-${process.pid}-${Date.now().toString(36)}-${counter++}`);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes through `write(fd)` into a temporary file beside `path`, fsyncs it and renames it over `path`. */
export function writeWithFdAtomic(path: string, write: (fd: number) => void): void {
  ensureDir(dirname(resolve(path)));
  refuseFolder(path);
  const tmp = tempBeside(path);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw asOutputError(path, e);
  }
  let open = true;
  try {
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(tmp, path);
  } catch (e) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw asOutputError(path, e);
  }
}

/** Writes all of `data` to `fd` in pieces of at most 64 MiB (writeSync may write less than asked). */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length;) off += writeSync(fd, data, off, Math.min(1 << 26, data.length - off));
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  writeWithFdAtomic(path, (fd) => writeAll(fd, bytes));
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** Copies `src` to `dst` through a temporary file beside `dst`. */
export function copyFileAtomic(src: string, dst: string): void {
  ensureDir(dirname(resolve(dst)));
  refuseFolder(dst);
  const tmp = tempBeside(dst);
  try {
    copyFileSync(src, tmp);
    fsyncPath(tmp);
    renameSync(tmp, dst);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw asOutputError(dst, e);
  }
}

export interface FolderSwapNames {
  /** Where the new folder is built (default: a fresh hidden name beside the target). */
  tmp?: string;
  /** Where the previous folder waits while the new one is renamed in (default: a fresh hidden name). */
  old?: string;
}

/**
 * Builds a folder with `build(tmp)` beside `target` and swaps it in: the previous folder (if any) is moved aside,
 * the new one renamed into place, then the previous one deleted. On an error the temporary folder is removed and
 * the previous folder is put back. Fixed `names` let a resumable writer find an interrupted swap's `old` folder.
 */
export function replaceFolderAtomic<T>(target: string, build: (tmp: string) => T, names: FolderSwapNames = {}): T {
  const dir = resolve(target);
  const tmp = names.tmp ?? tempBeside(dir, 'new');
  const old = names.old ?? tempBeside(dir, 'old');
  ensureDir(dirname(dir));
  rmSync(tmp, { recursive: true, force: true });
  let result: T;
  try {
    mkdirSync(tmp, { recursive: true });
    result = build(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  swapIn(tmp, dir, old);
  return result;
}

/** The async twin of replaceFolderAtomic, for builders that await (data export, ONNX export with evaluation). */
export async function replaceFolderAtomicAsync<T>(
  target: string,
  build: (tmp: string) => Promise<T>,
  names: FolderSwapNames = {},
): Promise<T> {
  const dir = resolve(target);
  const tmp = names.tmp ?? tempBeside(dir, 'new');
  const old = names.old ?? tempBeside(dir, 'old');
  ensureDir(dirname(dir));
  rmSync(tmp, { recursive: true, force: true });
  let result: T;
  try {
    mkdirSync(tmp, { recursive: true });
    result = await build(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  swapIn(tmp, dir, old);
  return result;
}

function swapIn(tmp: string, dir: string, old: string): void {
  rmSync(old, { recursive: true, force: true });
  const had = existsSync(dir);
  if (had) renameSync(dir, old);
  try {
    renameSync(tmp, dir);
  } catch (e) {
    if (had && !existsSync(dir)) renameSync(old, dir);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}

// Atomic file output: write to a temporary file in the destination folder, then rename over the target,
// so a reader never sees a half-written file and a crash never destroys the previous version.
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { OutputError } from '../errors.ts';

/** Creates `dir` (and parents); a file in the way or a permission problem is an OutputError naming it. */
export function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new OutputError(`cannot create folder ${dir}: a file of that name (or of one of its parents) is in the way.`);
    }
    throw new OutputError(`cannot create folder ${dir}: ${(e as Error).message}.`);
  }
}

/** Writes `path` through a temporary file beside it (same folder, so the rename is atomic), then renames. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const target = resolve(path);
  const dir = dirname(target);
  ensureDir(dir);
  try {
    if (statSync(target).isDirectory()) {
      throw new OutputError(`cannot write ${path}: it is an existing folder; expected a file name.`);
    }
  } catch (e) {
    if (e instanceof OutputError) throw e;
  }
  const tmp = join(dir, `.${basename(target)}.tmp-${process.pid}-${Date.now()}`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (['ENOSPC', 'EACCES', 'EROFS', 'EISDIR', 'EPERM', 'EDQUOT'].includes(code ?? '')) {
      throw new OutputError(`cannot write ${path}: ${(e as Error).message}.`);
    }
    throw e;
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

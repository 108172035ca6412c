// Output path checks, run before any work: an output is never an input or inside an input folder (so a run cannot
// overwrite what it reads), and an existing path must be of the right kind (a folder for --out DIR, a file for
// --out FILE). Paths are compared after resolving symlinks of their existing part.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { OutputError } from '../errors.ts';

/** Names of the files mope-clip reads from a checkpoint folder. */
const FOLDER_INPUTS =
  /^(config\.json|preprocessor_config\.json|tokenizer(_config)?\.json|special_tokens_map\.json|vocab\.json|merges\.txt|.*\.safetensors(\.index\.json)?)$/;

/** Absolute path with symlinks resolved in its longest existing prefix (the rest kept as written). */
export function canonicalPath(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  while (!existsSync(head)) {
    const parent = dirname(head);
    if (parent === head) break;
    tail.unshift(basename(head));
    head = parent;
  }
  let real = head;
  try {
    real = realpathSync(head);
  } catch {
    // keep the resolved path
  }
  return tail.length ? join(real, ...tail) : real;
}

/** True when `p` equals `dir` or lies inside it. */
export function isSameOrInside(p: string, dir: string): boolean {
  const r = relative(canonicalPath(dir), canonicalPath(p));
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

export interface NamedInput {
  /** The flag or argument that names the input, e.g. "--model". */
  flag: string;
  path: string | undefined;
}

function kindOf(path: string): 'file' | 'dir' | 'other' | null {
  try {
    const st = statSync(path);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch {
    return null;
  }
}

/** The first existing ancestor of `path` must be a folder (a file in the way cannot hold the output). */
function checkParents(path: string, flag: string): void {
  let p = dirname(resolve(path));
  for (;;) {
    const k = kindOf(p);
    if (k === 'dir') return;
    if (k !== null) {
      throw new OutputError(
        `${flag} ${path}: ${p} is an existing file, not a folder, so nothing can be written under it.`,
      );
    }
    const parent = dirname(p);
    if (parent === p) return;
    p = parent;
  }
}

function checkNotInput(out: string, flag: string, inputs: NamedInput[], file: boolean): void {
  for (const i of inputs) {
    if (!i.path || !existsSync(i.path)) continue;
    // A file beside the inputs of a folder (scores.json in the model folder) is fine unless it has the name of a
    // file the commands read there (config.json, *.safetensors, tokenizer and preprocessor files).
    if (file && canonicalPath(out) !== canonicalPath(i.path) && !FOLDER_INPUTS.test(basename(out))) continue;
    if (isSameOrInside(out, i.path)) {
      const same = canonicalPath(out) === canonicalPath(i.path);
      throw new OutputError(
        `${flag} ${out} ${same ? 'is' : 'lies inside'} the input ${i.flag} ${i.path}; writing there would ` +
          'overwrite what this command reads. Choose another output path.',
      );
    }
  }
}

/**
 * Checks an output file path: not an existing folder or non-regular file, parent not a file, not an input, and not
 * named like a checkpoint file inside an input folder (scores.json there is fine: it replaces nothing read).
 */
export function checkOutputFile(out: string, flag: string, inputs: NamedInput[] = []): void {
  const k = kindOf(out);
  if (k === 'dir') {
    throw new OutputError(
      `${flag} ${out} is an existing folder; expected a file name (for example ${join(out, 'out.json')}).`,
    );
  }
  if (k === 'other') {
    throw new OutputError(
      `${flag} ${out} exists and is not a regular file (a device, FIFO or socket); expected a file name.`,
    );
  }
  checkParents(out, flag);
  checkNotInput(out, flag, inputs, true);
}

/** Checks an output folder path: not an existing file, parent not a file, not an input nor inside one. */
export function checkOutputDir(out: string, flag: string, inputs: NamedInput[] = []): void {
  const k = kindOf(out);
  if (k === 'file' || k === 'other') {
    throw new OutputError(
      `${flag} ${out} is an existing file; expected a folder (missing, empty or one this command wrote before).`,
    );
  }
  checkParents(out, flag);
  checkNotInput(out, flag, inputs, false);
}

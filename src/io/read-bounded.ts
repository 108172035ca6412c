// Bounded reads of input files: only regular files (never a FIFO, device or directory, which could block or
// never end), never more than the limit of their kind, and JSON parsed only below a nesting depth.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { DataError, type MopeError } from '../errors.ts';
import { formatBytes, LIMITS } from './limits.ts';

type ErrorClass = new (message: string) => MopeError;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens `path` without blocking (O_NONBLOCK, so a FIFO cannot hang the open) and checks that it is a regular file
 * of at most maxBytes. Returns the open descriptor and size; the caller closes it.
 */
export function openRegularFile(
  path: string,
  what: string,
  maxBytes: number,
  Err: ErrorClass = DataError,
): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Err(
      code === 'ENOENT' ? `${what} ${path} does not exist.` : `cannot read ${what} ${path}: ${(e as Error).message}.`,
    );
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new Err(`${what} ${path} must be a regular file, found ${kindOf(st)}.`);
  }
  if (st.size > maxBytes) {
    closeSync(fd);
    throw new Err(
      `${what} ${path} is ${formatBytes(st.size)}, more than the ${formatBytes(maxBytes)} limit for this kind of file.`,
    );
  }
  return { fd, size: st.size };
}

/** The whole content of a regular file of at most maxBytes. */
export function readRegularFile(path: string, what: string, maxBytes: number, Err: ErrorClass = DataError): Buffer {
  const { fd, size } = openRegularFile(path, what, maxBytes, Err);
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } catch (e) {
    throw new Err(`cannot read ${what} ${path}: ${(e as Error).message}.`);
  } finally {
    closeSync(fd);
  }
}

/** UTF-8 text of a regular file of at most maxBytes (a leading BOM is kept; callers strip it where they did). */
export function readRegularText(path: string, what: string, maxBytes: number, Err: ErrorClass = DataError): string {
  return readRegularFile(path, what, maxBytes, Err).toString('utf8');
}

/** Nesting depth of a JSON text (brackets outside strings); stops counting once past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0,
    max = 0,
    inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inStr) {
      if (c === 92)
        i++; // backslash
      else if (c === 34) inStr = false;
      continue;
    }
    if (c === 34) inStr = true;
    else if (c === 91 || c === 123) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 93 || c === 125) depth--;
  }
  return max;
}

/** JSON.parse that refuses nesting deeper than LIMITS.jsonDepth and reports syntax errors as `Err` naming `file`. */
export function parseJsonBounded(text: string, file: string, Err: ErrorClass = DataError, expected = ''): unknown {
  const depth = jsonDepth(text, LIMITS.jsonDepth);
  if (depth > LIMITS.jsonDepth) {
    throw new Err(
      `${file}: JSON nested more than ${LIMITS.jsonDepth} levels deep; ${expected || 'no mope-clip file nests that deep'}.`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Err(`${file}: not valid JSON (${(e as Error).message})${expected ? `; expected ${expected}` : ''}.`);
  }
}

/** Reads and parses a JSON file: regular file, size limit, depth limit. */
export function readJsonBounded(
  path: string,
  what: string,
  maxBytes: number,
  Err: ErrorClass = DataError,
  expected = '',
): unknown {
  let text = readRegularText(path, what, maxBytes, Err);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return parseJsonBounded(text, path, Err, expected);
}

/** Refuses a text whose longest line is over LIMITS.lineBytes (a binary or hostile file read as text). */
export function checkLineLengths(text: string, file: string, Err: ErrorClass = DataError): void {
  let start = 0,
    line = 1;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    if (end - start > LIMITS.lineBytes) {
      throw new Err(
        `${file}:${line}: a line of ${formatBytes(end - start)} characters, more than the ${formatBytes(LIMITS.lineBytes)} limit per line; is this the right file?`,
      );
    }
    if (nl < 0) return;
    start = nl + 1;
    line++;
  }
}

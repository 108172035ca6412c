// Streamed reads of data files (csv, tsv, jsonl, coco json): the regular file is read in chunks and decoded as
// UTF-8 across chunk boundaries, so memory holds one chunk and the record being parsed, never the whole file.
// Only regular files are read (openRegularFile refuses FIFOs, devices and directories).
import { closeSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { DataError, type MopeError } from '../errors.ts';
import { formatBytes, LIMITS } from './limits.ts';
import { openRegularFile } from './read-bounded.ts';

type ErrorClass = new (message: string) => MopeError;

/** Bytes read per chunk. */
export const CHUNK_BYTES = 1024 * 1024;

/** The text of a regular file of at most maxBytes, chunk by chunk (a leading UTF-8 BOM dropped). */
export function* readTextChunks(
  path: string,
  what: string,
  maxBytes: number,
  Err: ErrorClass = DataError,
  chunkBytes = CHUNK_BYTES,
): Generator<string> {
  const { fd } = openRegularFile(path, what, maxBytes, Err);
  const buf = Buffer.allocUnsafe(chunkBytes);
  const dec = new StringDecoder('utf8');
  let total = 0;
  let first = true;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, chunkBytes, null);
      } catch (e) {
        throw new Err(`cannot read ${what} ${path}: ${(e as Error).message}.`);
      }
      if (n === 0) break;
      total += n;
      // The size was checked at open; a file that grows while read is held to the same limit.
      if (total > maxBytes) {
        throw new Err(`${what} ${path} grew past the ${formatBytes(maxBytes)} limit for this kind of file while read.`);
      }
      let s = dec.write(buf.subarray(0, n));
      if (first && s.length > 0) {
        if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
        first = false;
      }
      if (s.length > 0) yield s;
    }
    const rest = dec.end();
    if (rest.length > 0) yield first && rest.charCodeAt(0) === 0xfeff ? rest.slice(1) : rest;
  } finally {
    closeSync(fd);
  }
}

export interface Line {
  /** The line without its LF or CRLF ending. */
  text: string;
  /** 1-based line number. */
  line: number;
}

/**
 * The lines of a regular file, streamed. A line longer than LIMITS.lineBytes characters is an error naming the
 * file and line (a binary or hostile file read as text), raised before the line is held whole.
 */
export function* readLines(
  path: string,
  what: string,
  maxBytes: number,
  Err: ErrorClass = DataError,
  chunkBytes = CHUNK_BYTES,
): Generator<Line> {
  let pending: string[] = [];
  let pendingLen = 0;
  let line = 1;
  const tooLong = () =>
    new Err(
      `${path}:${line}: a line longer than ${formatBytes(LIMITS.lineBytes)} characters (the limit per line); is this the right file?`,
    );
  for (const chunk of readTextChunks(path, what, maxBytes, Err, chunkBytes)) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      if (nl < 0) {
        const part = chunk.slice(start);
        pendingLen += part.length;
        if (pendingLen > LIMITS.lineBytes) throw tooLong();
        if (part.length > 0) pending.push(part);
        break;
      }
      const part = chunk.slice(start, nl);
      if (pendingLen + part.length > LIMITS.lineBytes) throw tooLong();
      let text = pending.length ? pending.join('') + part : part;
      if (text.endsWith('\r')) text = text.slice(0, -1);
      yield { text, line };
      pending = [];
      pendingLen = 0;
      line++;
      start = nl + 1;
    }
  }
  if (pendingLen > 0) {
    let text = pending.join('');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    yield { text, line };
  }
}

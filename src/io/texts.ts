// Reads a texts file for the CLI: a JSON array of strings, or plain text with one text per line.
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';

export function readTextsFile(path: string): string[] {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(`cannot read texts file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`);
  }
  if (path.toLowerCase().endsWith('.json')) {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new DataError(`${path}: not valid JSON (${(e as Error).message}); expected a JSON array of strings.`);
    }
    if (!Array.isArray(v)) throw new DataError(`${path}: expected a JSON array of strings, found ${v === null ? 'null' : typeof v}.`);
    v.forEach((s, i) => {
      if (typeof s !== 'string') throw new DataError(`${path}: entry ${i} should be a string, found ${JSON.stringify(s)}.`);
    });
    return v as string[];
  }
  return raw.split(/\r?\n/).filter((line) => line.trim() !== '');
}

// Reads a texts file for the CLI: a JSON array of strings, or plain text with one text per line.
import { parseJsonBounded, readRegularText, checkLineLengths } from './read-bounded.ts';
import { LIMITS } from './limits.ts';
import { DataError } from '../errors.ts';

export function readTextsFile(path: string): string[] {
  const raw = readRegularText(path, 'texts file', LIMITS.textBytes, DataError);
  if (path.toLowerCase().endsWith('.json')) {
    const v = parseJsonBounded(raw, path, DataError, 'a JSON array of strings');
    if (!Array.isArray(v))
      throw new DataError(`${path}: expected a JSON array of strings, found ${v === null ? 'null' : typeof v}.`);
    v.forEach((s, i) => {
      if (typeof s !== 'string')
        throw new DataError(`${path}: entry ${i} should be a string, found ${JSON.stringify(s)}.`);
    });
    return v as string[];
  }
  checkLineLengths(raw, path);
  return raw.split(/\r?\n/).filter((line) => line.trim() !== '');
}

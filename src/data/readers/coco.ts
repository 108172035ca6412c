// coco:PATH[:SPLIT] reader: Karpathy-style JSON ({"images": [{filepath?, filename, split, sentences: [{raw}]}]}),
// several captions per image, optionally filtered by split ("test", "val", "train", "restval", or "train+restval").
import { JsonObjectStream } from '../../io/json-stream.ts';
import { readTextChunks } from '../../io/read-stream.ts';
import { LIMITS } from '../../io/limits.ts';
import { join } from 'node:path';
import { DataError } from '../../errors.ts';
import { pairsFromArray, type PairItem, type PairsDataset } from '../dataset.ts';
import { imageBase, isBlank, missingReason, resolveImage, type ReaderOptions } from './common.ts';

export function readCoco(path: string, split: string | undefined, spec: string, opts: ReaderOptions): PairsDataset {
  const wanted = split === undefined ? null : new Set(split.split('+'));
  const base = imageBase(path, opts);
  const items: PairItem[] = [];
  const seenSplits = new Set<string>();
  const onEntry = (entry: unknown, k: number) => {
    const ref = `${path}: images[${k}]`;
    if (entry === null || typeof entry !== 'object') {
      opts.bad.report(ref, 'expected an object');
      return;
    }
    const e = entry as Record<string, unknown>;
    if (typeof e.split === 'string') seenSplits.add(e.split);
    if (wanted && !(typeof e.split === 'string' && wanted.has(e.split))) return;
    if (typeof e.filename !== 'string' || e.filename === '') {
      opts.bad.report(ref, 'missing "filename"');
      return;
    }
    const rel = typeof e.filepath === 'string' && e.filepath !== '' ? join(e.filepath, e.filename) : e.filename;
    if (!Array.isArray(e.sentences) || e.sentences.length === 0) {
      opts.bad.report(ref, 'missing or empty "sentences"');
      return;
    }
    const caps: string[] = [];
    for (const s of e.sentences as unknown[]) {
      const so = s as { raw?: unknown; tokens?: unknown };
      const raw =
        typeof so?.raw === 'string'
          ? so.raw
          : Array.isArray(so?.tokens)
            ? (so.tokens as unknown[]).join(' ')
            : undefined;
      if (isBlank(raw)) {
        caps.length = 0;
        break;
      }
      caps.push((raw as string).trim());
    }
    if (caps.length === 0) {
      opts.bad.report(ref, 'a sentence has no "raw" text (empty caption)');
      return;
    }
    const full = resolveImage(base, rel);
    if (opts.checkFiles !== false) {
      const why = missingReason(full);
      if (why) {
        opts.bad.report(ref, why);
        return;
      }
    }
    items.push({ image: { kind: 'file', path: full }, captions: caps, ref });
  };
  // Streamed: each entry of "images" is parsed and turned into an item on its own; the document is never held whole.
  const expected = 'a Karpathy-style JSON object with an "images" array';
  const stream = new JsonObjectStream(path, 'images', expected, {
    item: onEntry,
    other: (key, value) => {
      if (key === 'images') {
        const found = value === null ? 'null' : typeof value;
        throw new DataError(`${path}: "images" must be an array of image entries; found ${found}.`);
      }
    },
  });
  for (const chunk of readTextChunks(path, 'data file', LIMITS.dataBytes, DataError)) stream.push(chunk);
  if (!stream.end()) throw new DataError(`${path}: expected ${expected}; the object has no "images" key.`);
  if (items.length === 0) {
    const splits = seenSplits.size ? `; the file has splits ${[...seenSplits].sort().join(', ')}` : '';
    throw new DataError(`${path}: no usable images${split ? ` in split "${split}"` : ''}${splits}.`);
  }
  return pairsFromArray(spec, items);
}

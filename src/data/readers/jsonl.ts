// jsonl:PATH reader: one JSON object per line, {"image": path, "caption": "…"} or {"image": path, "captions": […]}.
import { readLines } from '../../io/read-stream.ts';
import { LIMITS } from '../../io/limits.ts';
import { DataError } from '../../errors.ts';
import { pairsFromArray, type PairsDataset } from '../dataset.ts';
import { imageBase, isBlank, missingReason, PairGrouper, resolveImage, type ReaderOptions } from './common.ts';

export interface JsonlOptions extends ReaderOptions {
  /** Key of the image path (default "image"). */
  imageKey?: string;
  /** Key of the caption: a string or an array of strings (default: "captions" if present, else "caption"). */
  captionKey?: string;
}

export function readJsonl(path: string, spec: string, opts: JsonlOptions): PairsDataset {
  const imageKey = opts.imageKey ?? 'image';
  const base = imageBase(path, opts);
  const group = new PairGrouper();
  // Streamed line by line: only the grouped items stay in memory.
  for (const { text, line } of readLines(path, 'data file', LIMITS.dataBytes, DataError)) {
    const raw = text.trim();
    if (raw === '') continue;
    const ref = `${path}:${line}`;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      opts.bad.report(ref, `malformed JSON (${(e as Error).message})`);
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      opts.bad.report(ref, `expected a JSON object like {"${imageKey}": "a.jpg", "caption": "…"}`);
      continue;
    }
    const o = obj as Record<string, unknown>;
    const img = o[imageKey];
    if (typeof img !== 'string' || img.trim() === '') {
      opts.bad.report(ref, `missing or empty "${imageKey}" (expected an image path string)`);
      continue;
    }
    const key = opts.captionKey ?? ('captions' in o ? 'captions' : 'caption');
    const val = o[key];
    let caps: string[];
    if (typeof val === 'string') caps = [val];
    else if (Array.isArray(val) && val.every((v) => typeof v === 'string')) caps = val as string[];
    else {
      opts.bad.report(
        ref,
        opts.captionKey
          ? `missing "${key}" (expected a caption string or an array of strings)`
          : `missing "caption" (a string) or "captions" (an array of strings)`,
      );
      continue;
    }
    if (caps.length === 0 || caps.some(isBlank)) {
      opts.bad.report(ref, `empty caption in "${key}"`);
      continue;
    }
    const full = resolveImage(base, img.trim());
    if (opts.checkFiles !== false) {
      const why = missingReason(full);
      if (why) {
        opts.bad.report(ref, why);
        continue;
      }
    }
    group.add(
      full,
      caps.map((c) => c.trim()),
      ref,
    );
  }
  const items = group.items();
  if (items.length === 0) throw new DataError(`${path}: no usable image-caption lines.`);
  return pairsFromArray(spec, items);
}

// Data set types shared by every source (image-text pairs, classification), the seeded PRNG, the
// deterministic --limit/--seed subset, and the --skip-bad log of skipped items.
import { DataError } from '../errors.ts';

/** Where an image comes from: a file on disk (decoded later by the loader) or raw RGB bytes in memory. */
export type ImageSource =
  { kind: 'file'; path: string } | { kind: 'rgb'; data: Uint8Array; width: number; height: number };

/** One image with all of its captions (rows naming the same image are grouped into one item). */
export interface PairItem {
  image: ImageSource;
  captions: string[];
  /** Where the item was defined, for error messages: "file:line" or "file: images[12]". */
  ref: string;
}

export interface ClassItem {
  image: ImageSource;
  /** Index into the data set's classnames. */
  label: number;
  ref: string;
}

/** Image-text pairs: random access by index, items generated or read lazily where the source allows. */
export interface PairsDataset {
  kind: 'pairs';
  /** The --data SPEC the set was opened from. */
  spec: string;
  size: number;
  get(i: number): PairItem;
  /** Set when --limit took a subset (for reports and cache keys). */
  subset?: { limit: number; seed: number };
}

export interface ClassificationDataset {
  kind: 'classification';
  spec: string;
  classnames: string[];
  size: number;
  get(i: number): ClassItem;
  subset?: { limit: number; seed: number };
}

export type Dataset = PairsDataset | ClassificationDataset;

/** A pairs data set held as an array (what the file readers build). */
export function pairsFromArray(spec: string, items: PairItem[]): PairsDataset {
  return { kind: 'pairs', spec, size: items.length, get: (i) => items[checkIndex(i, items.length)] };
}

export function classificationFromArray(spec: string, classnames: string[], items: ClassItem[]): ClassificationDataset {
  return {
    kind: 'classification',
    spec,
    classnames,
    size: items.length,
    get: (i) => items[checkIndex(i, items.length)],
  };
}

export function checkIndex(i: number, size: number): number {
  if (!Number.isInteger(i) || i < 0 || i >= size) throw new RangeError(`data set index ${i} outside [0, ${size})`);
  return i;
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32 over a 32-bit state; FNV-1a to turn strings into seeds). Deterministic on
// every platform because it uses only 32-bit integer arithmetic.

export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

// ---------------------------------------------------------------------------------------------
// --limit / --seed

/**
 * The deterministic subset --limit N --seed S selects from a set of `size` items: N indices drawn
 * without replacement by a seeded Fisher-Yates shuffle (seed S, default 0), returned in ascending order so
 * the subset keeps the source's order. No limit, or a limit ≥ size, keeps every item (the seed is then
 * unused). The same (size, N, S) always gives the same subset.
 */
export function subsetIndices(size: number, limit?: number, seed = 0): number[] {
  if (limit === undefined || limit >= size) return Array.from({ length: size }, (_, i) => i);
  if (!Number.isInteger(limit) || limit < 0)
    throw new RangeError(`--limit must be a non-negative integer, got ${limit}`);
  const rng = new Rng(hashString(`subset:${seed}`));
  const idx = new Int32Array(size);
  for (let i = 0; i < size; i++) idx[i] = i;
  for (let i = 0; i < limit; i++) {
    const j = i + rng.int(size - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return Array.from(idx.subarray(0, limit)).sort((a, b) => a - b);
}

/** A view of ds holding only the given indices (in the given order). */
export function subsetDataset<D extends Dataset>(ds: D, indices: number[]): D {
  const get = (i: number) => ds.get(indices[checkIndex(i, indices.length)]);
  return { ...ds, size: indices.length, get } as D;
}

/** Applies --limit / --seed to a data set (identity when no limit). */
export function limitDataset<D extends Dataset>(ds: D, limit?: number, seed = 0): D {
  if (limit === undefined || limit >= ds.size) return ds;
  return { ...subsetDataset(ds, subsetIndices(ds.size, limit, seed)), subset: { limit, seed } };
}

// ---------------------------------------------------------------------------------------------
// --skip-bad

export interface BadItem {
  /** "file:line", "file: images[3]", or an image path. */
  ref: string;
  reason: string;
}

/**
 * Collects bad items. Without --skip-bad the first bad item throws a DataError naming it; with
 * --skip-bad it is recorded, skipped, and summarised at the end (how many, and the first few).
 */
export class BadItemLog {
  readonly items: BadItem[] = [];
  constructor(readonly skipBad: boolean) {}

  /** Throws (no --skip-bad) or records the item; the message must name file and line/entry. */
  report(ref: string, reason: string): void {
    if (!this.skipBad)
      throw new DataError(`${ref}: ${reason} (pass --skip-bad to skip such items and report them instead).`);
    this.items.push({ ref, reason });
  }

  get count(): number {
    return this.items.length;
  }

  /** The first `n` skipped items, for reports. */
  first(n = 5): BadItem[] {
    return this.items.slice(0, n);
  }

  /** One line for stderr, or "" when nothing was skipped. */
  summary(n = 5): string {
    if (this.items.length === 0) return '';
    const shown = this.first(n)
      .map((b) => `${b.ref}: ${b.reason}`)
      .join('; ');
    const more = this.items.length > n ? `; and ${this.items.length - n} more` : '';
    return `skipped ${this.items.length} bad item(s): ${shown}${more}`;
  }

  /** For result JSON: {count, first: [...]}. */
  toJSON(n = 5): { count: number; first: BadItem[] } {
    return { count: this.items.length, first: this.first(n) };
  }
}

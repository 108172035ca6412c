// Helpers shared by the file readers: resolving image paths against the data file's folder, checking
// that they exist, and grouping caption rows by image.
import { statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { BadItemLog, PairItem } from '../dataset.ts';

export interface ReaderOptions {
  /** Folder that relative image paths resolve against; default: the data file's folder. */
  imageRoot?: string;
  /** Check that every image file exists while reading (default true). */
  checkFiles?: boolean;
  bad: BadItemLog;
}

export function imageBase(dataFile: string, opts: ReaderOptions): string {
  return opts.imageRoot !== undefined ? resolve(opts.imageRoot) : dirname(resolve(dataFile));
}

export function resolveImage(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

const existsCache = new Map<string, string | null>();

/** null when path is a readable regular file, else the reason it is not. */
export function missingReason(path: string): string | null {
  const hit = existsCache.get(path);
  if (hit !== undefined) return hit;
  let reason: string | null = null;
  try {
    const st = statSync(path);
    if (!st.isFile()) reason = `image ${path} is not a file`;
  } catch {
    reason = `image file ${path} does not exist`;
  }
  existsCache.set(path, reason);
  return reason;
}

/** Clears the existence cache (tests create and delete files). */
export function clearExistsCache(): void {
  existsCache.clear();
}

/** Groups (image path, caption, ref) rows into items in order of each image's first appearance. */
export class PairGrouper {
  private byPath = new Map<string, PairItem>();
  private order: PairItem[] = [];
  add(path: string, captions: string[], ref: string): void {
    const item = this.byPath.get(path);
    if (item) {
      item.captions.push(...captions);
      return;
    }
    const it: PairItem = { image: { kind: 'file', path }, captions: [...captions], ref };
    this.byPath.set(path, it);
    this.order.push(it);
  }
  items(): PairItem[] {
    return this.order;
  }
}

export function isBlank(s: unknown): boolean {
  return typeof s !== 'string' || s.trim() === '';
}

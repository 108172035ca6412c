// folder:PATH reader (ImageFolder): one sub-folder per class, sorted by name; class names from the folder
// names (underscores become spaces) or from a --classnames file (one name per line, in sorted-folder order).
import { readdirSync, statSync } from 'node:fs';
import { checkLineLengths, readRegularText } from '../../io/read-bounded.ts';
import { LIMITS } from '../../io/limits.ts';
import { extname, join, resolve } from 'node:path';
import { DataError } from '../../errors.ts';
import { classificationFromArray, type ClassificationDataset, type ClassItem } from '../dataset.ts';
import type { ReaderOptions } from './common.ts';

export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif']);

export interface FolderOptions extends ReaderOptions {
  /** A file with one class name per line, matching the sorted class folders one to one. */
  classnames?: string;
}

/** Sorted by UTF-16 code units, like Python's sorted() on ASCII names (torchvision's ImageFolder order). */
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function readClassnamesFile(path: string): string[] {
  let text = readRegularText(path, 'class-names file', LIMITS.textBytes, DataError);
  checkLineLengths(text, path);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const names = text.split(/\r?\n/).map((s) => s.trim());
  while (names.length && names[names.length - 1] === '') names.pop();
  const blank = names.indexOf('');
  if (blank >= 0) throw new DataError(`${path}:${blank + 1}: empty class name; expected one class name per line.`);
  return names;
}

export function readFolder(root: string, spec: string, opts: FolderOptions): ClassificationDataset {
  const dir = resolve(root);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    throw new DataError(
      `Cannot read the image folder ${dir}: ${(e as Error).message}. Expected one sub-folder per class.`,
    );
  }
  const classDirs = entries.filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isDirectory()).sort(byName);
  if (classDirs.length === 0)
    throw new DataError(`${dir}: no class sub-folders found; expected one sub-folder of images per class.`);
  let classnames = classDirs.map((n) => n.replace(/_/g, ' '));
  if (opts.classnames !== undefined) {
    const names = readClassnamesFile(opts.classnames);
    if (names.length !== classDirs.length) {
      throw new DataError(
        `${opts.classnames}: has ${names.length} class names but ${dir} has ${classDirs.length} class folders ` +
          `(${classDirs.slice(0, 6).join(', ')}${classDirs.length > 6 ? ', …' : ''}); expected one name per line for each folder, in sorted folder order.`,
      );
    }
    classnames = names;
  }
  const items: ClassItem[] = [];
  classDirs.forEach((cd, label) => {
    const cdir = join(dir, cd);
    const files = readdirSync(cdir)
      .filter((f) => !f.startsWith('.') && IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
      .sort(byName);
    if (files.length === 0) {
      opts.bad.report(cdir, `empty class folder (no ${[...IMAGE_EXTENSIONS].join(' ')} files)`);
      return;
    }
    for (const f of files) items.push({ image: { kind: 'file', path: join(cdir, f) }, label, ref: join(cdir, f) });
  });
  if (items.length === 0) throw new DataError(`${dir}: no images in any class folder.`);
  return classificationFromArray(spec, classnames, items);
}

// `data export`: writes any data source as PNG files plus a CSV, into a new folder (built beside the
// target and renamed into place, so a failed export leaves nothing half-written).
//   pairs:          OUT/images/000000.png …, OUT/data.csv (filepath,title; one row per caption)
//                   → load back with csv:OUT/data.csv
//   classification: OUT/<NN>_<class>/000000.png … (NN = label index, so sorted folders keep label order),
//                   OUT/classnames.txt (exact names), OUT/data.csv (filepath,label,classname)
//                   → load back with folder:OUT --classnames OUT/classnames.txt
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { DataError } from '../errors.ts';
import { decodeImage } from '../io/image.ts';
import type { ImageSource } from './dataset.ts';
import { Progress } from '../ui/progress.ts';
import { replaceFolderAtomicAsync, writeFileAtomic } from '../io/atomic.ts';
import { openDataset, type OpenDataOptions } from './spec.ts';

export interface ExportOptions extends OpenDataOptions {
  /** Images encoded concurrently (default 8). */
  concurrency?: number;
  progress?: boolean;
}

export interface ExportResult {
  dir: string;
  kind: 'pairs' | 'classification';
  images: number;
  /** CSV rows written (captions for pairs, images for classification). */
  rows: number;
  csv: string;
  /** --skip-bad: {count, first} of skipped items. */
  skipped: { count: number; first: Array<{ ref: string; reason: string }> };
}

/** Quotes a CSV field when needed (RFC 4180). */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

export function classFolderName(label: number, name: string, nClasses: number): string {
  const nn = String(label).padStart(Math.max(2, String(nClasses - 1).length), '0');
  const safe = name.replace(/[\\/:*?"<>|\s]+/g, '_').replace(/^\.+/, '') || 'class';
  return `${nn}_${safe}`;
}

async function writePng(src: ImageSource, path: string): Promise<void> {
  const img =
    src.kind === 'rgb' ? { data: src.data, width: src.width, height: src.height } : await decodeImage(src.path);
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toFile(path);
}

/** Exports the data set `spec` (after --limit/--seed) to `outDir`, which must not exist or be empty. */
export async function exportDataset(spec: string, outDir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const dir = resolve(outDir);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new DataError(`${dir}: the output folder is not empty; choose a new folder (export never overwrites).`);
  }
  const { dataset: ds, bad } = openDataset(spec, opts);
  const progress = new Progress(ds.size, 'export', process.stderr, {
    enabled: opts.progress === false ? false : undefined,
  });
  return replaceFolderAtomicAsync(dir, async (tmp) => {
    const rows: string[] = [];
    const width = Math.max(6, String(ds.size - 1).length);
    const name = (i: number) => String(i).padStart(width, '0') + '.png';
    const jobs: Array<() => Promise<void>> = [];
    let written = 0;
    if (ds.kind === 'pairs') {
      mkdirSync(join(tmp, 'images'));
      const lines: string[][] = new Array(ds.size);
      for (let i = 0; i < ds.size; i++) {
        jobs.push(async () => {
          const it = ds.get(i);
          const rel = `images/${name(i)}`;
          try {
            await writePng(it.image, join(tmp, rel));
          } catch (e) {
            bad.report(it.ref, (e as Error).message);
            return;
          }
          written++;
          lines[i] = it.captions.map((c) => `${csvField(rel)},${csvField(c)}`);
        });
      }
      await runPool(jobs, opts.concurrency ?? 8, progress);
      rows.push('filepath,title');
      for (const l of lines) if (l) rows.push(...l);
    } else {
      const folders = ds.classnames.map((c, k) => classFolderName(k, c, ds.classnames.length));
      for (const f of folders) mkdirSync(join(tmp, f));
      writeFileAtomic(join(tmp, 'classnames.txt'), ds.classnames.join('\n') + '\n');
      const lines: string[] = new Array(ds.size);
      for (let i = 0; i < ds.size; i++) {
        jobs.push(async () => {
          const it = ds.get(i);
          const rel = `${folders[it.label]}/${name(i)}`;
          try {
            await writePng(it.image, join(tmp, rel));
          } catch (e) {
            bad.report(it.ref, (e as Error).message);
            return;
          }
          written++;
          lines[i] = `${csvField(rel)},${it.label},${csvField(ds.classnames[it.label])}`;
        });
      }
      await runPool(jobs, opts.concurrency ?? 8, progress);
      rows.push('filepath,label,classname');
      for (const l of lines) if (l) rows.push(l);
    }
    progress.finish();
    writeFileAtomic(join(tmp, 'data.csv'), rows.join('\n') + '\n');
    return {
      dir,
      kind: ds.kind,
      images: written,
      rows: rows.length - 1,
      csv: join(dir, 'data.csv'),
      skipped: bad.toJSON(),
    };
  });
}

async function runPool(jobs: Array<() => Promise<void>>, n: number, progress: Progress): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const j = jobs[next++];
      await j();
      progress.tick();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, jobs.length)) }, worker));
}

// Embedding a data set's images (streamed through the loader, overlapped with the vision tower) and a
// list of texts (batched through the text tower), L2-normalised, with the optional --cache DIR.
// Dims: N images, NT texts, E projection dim, S image size.
import { statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Runtime } from '../engine/runtime.ts';
import type { PreprocessorConfig } from '../io/preprocess.ts';
import { encodeImages, encodeTexts } from '../model/encode.ts';
import type { ClipModel } from '../model/types.ts';
import { cachedEmbeddings, cacheKey, hashIds, modelFingerprint } from '../data/cache.ts';
import type { BadItemLog, Dataset } from '../data/dataset.ts';
import { imageBatches } from '../data/loader.ts';
import { Progress } from '../ui/progress.ts';

/** Everything evaluation needs about the model. */
export interface EvalModel {
  rt: Runtime;
  model: ClipModel;
  tokenizer: { encode(text: string): number[] };
  preprocess: PreprocessorConfig;
  /** The checkpoint folder: needed for --cache (the key hashes its weights and config). */
  modelDir?: string;
}

export interface EvalOptions {
  /** Images / texts per forward pass (default 32). --batch */
  batch?: number;
  /** Decode worker threads (default: defaultDecodeWorkers() for the runtime's compute threads). --workers */
  workers?: number;
  /** Embedding cache folder. --cache */
  cacheDir?: string;
  /** The --skip-bad log from openDataset (decode failures are added to it). */
  bad?: BadItemLog;
  /** Progress bar on stderr when it is a TTY (default true). */
  progress?: boolean;
}

/**
 * Identity of a data set's content for cache keys: the spec and subset, each item's captions/label, and
 * for image files their path, size and modification time (so an edited image or CSV gives a new key).
 */
export function dataFingerprint(ds: Dataset): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ spec: ds.spec, subset: ds.subset ?? null, size: ds.size }));
  for (let i = 0; i < ds.size; i++) {
    const it = ds.get(i);
    if (it.image.kind === 'file') {
      let st = '';
      try {
        const s = statSync(it.image.path);
        st = `${s.size}:${s.mtimeMs}`;
      } catch {
        st = 'missing';
      }
      h.update(`${it.image.path}\0${st}\0`);
    } else if (!ds.spec.startsWith('builtin:')) {
      h.update(createHash('sha256').update(it.image.data).digest());
    }
    h.update('captions' in it ? JSON.stringify(it.captions) : String(it.label));
    h.update('\n');
  }
  return h.digest('hex');
}

export interface ImageEmbeddings {
  /** [N, E] L2-normalised, rows in `indices` order. */
  embeds: Float32Array;
  /** Data set indices that were embedded (all, unless --skip-bad dropped undecodable images). */
  indices: number[];
  E: number;
  cacheHit: boolean;
}

export async function embedDatasetImages(m: EvalModel, ds: Dataset, opts: EvalOptions = {}): Promise<ImageEmbeddings> {
  const E = m.model.config.projectionDim;
  const S = m.model.config.vision.imageSize;
  const key =
    opts.cacheDir !== undefined && m.modelDir !== undefined
      ? cacheKey({
          tower: 'image',
          model: await modelFingerprint(m.modelDir),
          data: dataFingerprint(ds),
          skipBad: opts.bad?.skipBad ?? false,
          preprocess: m.preprocess,
        })
      : '';
  const r = await cachedEmbeddings(key ? opts.cacheDir : undefined, key, async () => {
    const out = new Float32Array(ds.size * E);
    const indices: number[] = [];
    const progress = new Progress(ds.size, 'images', process.stderr, {
      enabled: opts.progress === false ? false : undefined,
    });
    for await (const b of imageBatches(ds, {
      batch: opts.batch,
      preprocess: m.preprocess,
      imageSize: S,
      workers: opts.workers,
      computeThreads: m.rt.threads,
      kernels: m.rt.kernels,
      bad: opts.bad,
      progress,
    })) {
      if (b.indices.length === 0) continue;
      const emb = encodeImages(m.rt, m.model, b.pixels, b.indices.length, { batch: opts.batch });
      m.rt.kernels.l2normalize(emb, null, emb, b.indices.length, E);
      out.set(emb, indices.length * E);
      indices.push(...b.indices);
    }
    progress.finish();
    return {
      data: out.slice(0, indices.length * E),
      rows: indices.length,
      dim: E,
      indices,
      meta: { spec: ds.spec, tower: 'image' },
    };
  });
  return { embeds: r.data, indices: r.indices ?? Array.from({ length: r.rows }, (_, i) => i), E, cacheHit: r.hit };
}

/** Texts → L2-normalised embeddings [NT, E] (tokenised with the model's tokenizer; truncated to its context). */
export async function embedTexts(
  m: EvalModel,
  texts: string[],
  opts: EvalOptions = {},
): Promise<{ embeds: Float32Array; cacheHit: boolean }> {
  const E = m.model.config.projectionDim;
  const ids = texts.map((t) => m.tokenizer.encode(t));
  const key =
    opts.cacheDir !== undefined && m.modelDir !== undefined
      ? cacheKey({ tower: 'text', model: await modelFingerprint(m.modelDir), ids: hashIds(ids) })
      : '';
  const r = await cachedEmbeddings(key ? opts.cacheDir : undefined, key, async () => {
    const out = new Float32Array(ids.length * E);
    const progress = new Progress(ids.length, 'texts', process.stderr, {
      enabled: opts.progress === false ? false : undefined,
    });
    const chunk = Math.max(256, opts.batch ?? 32);
    for (let s = 0; s < ids.length; s += chunk) {
      const part = ids.slice(s, s + chunk);
      const emb = encodeTexts(m.rt, m.model, part, { batch: opts.batch });
      m.rt.kernels.l2normalize(emb, null, emb, part.length, E);
      out.set(emb, s * E);
      progress.tick(part.length);
      await new Promise((res) => setImmediate(res)); // let the progress bar and signals through
    }
    progress.finish();
    return { data: out, rows: ids.length, dim: E, meta: { tower: 'text', texts: texts.length } };
  });
  return { embeds: r.data, cacheHit: r.hit };
}

// Zero-shot accuracy / retrieval recall of each exported precision (fp32, fp16, q8) on a data set, run through
// onnxruntime-node's text_model / vision_model files, and the change against fp32 (for export_report.json).
// Dims: N images [N,3,S,S], NT texts (padded per batch), NC classes, NTPL templates, E projection dim.
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { openDataset } from '../data/spec.ts';
import { imageBatches } from '../data/loader.ts';
import { l2NormalizeRows, retrievalRecall, similarityMatrix, zeroshotAccuracy } from '../eval/metrics.ts';
import { fillTemplate, OPENAI_SIMPLE_TEMPLATES } from '../eval/templates.ts';
import type { PreprocessorConfig } from '../io/preprocess.ts';
import type { ClipModel } from '../model/types.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import { argmaxRows, withClipSession } from './ort-session.ts';
import { VARIANTS, type Precision } from './quantize.ts';

export interface VariantEvalOptions {
  /** --eval-data SPEC (a classification set → zero-shot, a pairs set → retrieval). */
  data: string;
  /** Deterministic subset of this many items (default 500). */
  limit?: number;
  seed?: number;
}

export interface VariantEval {
  data: string;
  task: 'zeroshot' | 'retrieval';
  n: { images: number; texts: number };
  /** zero-shot: acc1, acc5; retrieval: image/text retrieval recall@1 and @5. Fractions in [0, 1]. */
  metrics: Partial<Record<Precision, Record<string, number>>>;
  /** metric(variant) − metric(fp32). */
  change_vs_fp32: Partial<Record<Precision, Record<string, number>>>;
  /** Share of images whose top-1 class / caption is the same as with fp32. */
  top1_agreement_vs_fp32: Partial<Record<Precision, number>>;
  seconds: number;
}

const BATCH = 32;

async function embedTexts(path: string, tok: ClipTokenizer, texts: string[], E: number): Promise<Float32Array> {
  const out = new Float32Array(texts.length * E);
  await withClipSession(path, async (s) => {
    for (let a = 0; a < texts.length; a += BATCH) {
      const part = texts.slice(a, a + BATCH);
      const T = Math.max(...part.map((t) => tok.encode(t).length));
      const b = tok.encodeBatchPadded(part, { contextLength: T });
      out.set((await s.run({ ids: b.ids, mask: b.attentionMask, B: b.B, T })).text_embeds!, a * E);
    }
  });
  return l2NormalizeRows(out, texts.length, E);
}

async function embedImages(path: string, pixels: Float32Array[], S: number, E: number): Promise<Float32Array> {
  const n = pixels.reduce((k, p) => k + p.length / (3 * S * S), 0);
  const out = new Float32Array(n * E);
  await withClipSession(path, async (s) => {
    let row = 0;
    for (const p of pixels) {
      const B = p.length / (3 * S * S);
      out.set((await s.run(undefined, { pixels: p, N: B, C: 3, S })).image_embeds!, row * E);
      row += B;
    }
  });
  return l2NormalizeRows(out, n, E);
}

export async function evalVariants(
  dir: string,
  precisions: Precision[],
  model: ClipModel,
  tok: ClipTokenizer,
  pre: PreprocessorConfig,
  o: VariantEvalOptions,
): Promise<VariantEval> {
  const t0 = performance.now();
  const { dataset: ds } = openDataset(o.data, { limit: o.limit ?? 500, seed: o.seed ?? 0 });
  const S = model.config.vision.imageSize,
    E = model.config.projectionDim;
  const pixels: Float32Array[] = [];
  const indices: number[] = [];
  for await (const b of imageBatches(ds, { batch: BATCH, preprocess: pre, imageSize: S })) {
    if (b.indices.length === 0) continue;
    pixels.push(b.pixels);
    indices.push(...b.indices);
  }
  const N = indices.length;
  if (N === 0) throw new DataError(`${o.data}: no images to evaluate`);
  let texts: string[];
  let NC = 0;
  const captionImage: number[] = [];
  if (ds.kind === 'classification') {
    NC = ds.classnames.length;
    texts = ds.classnames.flatMap((c) => OPENAI_SIMPLE_TEMPLATES.map((t) => fillTemplate(t, c)));
  } else {
    texts = [];
    indices.forEach((i, row) => {
      for (const c of ds.get(i).captions) {
        texts.push(c);
        captionImage.push(row);
      }
    });
  }
  const result: VariantEval = {
    data: o.data,
    task: ds.kind === 'classification' ? 'zeroshot' : 'retrieval',
    n: { images: N, texts: texts.length },
    metrics: {},
    change_vs_fp32: {},
    top1_agreement_vs_fp32: {},
    seconds: 0,
  };
  let baseTop1: number[] = [];
  for (const p of precisions) {
    const suffix = p === 'fp32' ? '' : VARIANTS[p];
    const te = await embedTexts(join(dir, 'onnx', `text_model${suffix}.onnx`), tok, texts, E);
    const ie = await embedImages(join(dir, 'onnx', `vision_model${suffix}.onnx`), pixels, S, E);
    let m: Record<string, number>;
    let top1: number[];
    if (ds.kind === 'classification') {
      const NT = OPENAI_SIMPLE_TEMPLATES.length;
      const W = new Float32Array(NC * E);
      for (let c = 0; c < NC; c++)
        for (let t = 0; t < NT; t++) for (let e = 0; e < E; e++) W[c * E + e]! += te[(c * NT + t) * E + e]!;
      const Wn = l2NormalizeRows(W, NC, E);
      const logits = similarityMatrix(ie, Wn, N, NC, E);
      const acc = zeroshotAccuracy(
        logits,
        indices.map((i) => ds.get(i).label),
        N,
        NC,
        [1, 5],
      );
      m = { acc1: acc.topk[1]!, acc5: acc.topk[5]! };
      top1 = argmaxRows(logits, NC);
    } else {
      const scores = similarityMatrix(te, ie, texts.length, N, E);
      const r = retrievalRecall(scores, captionImage, texts.length, N, [1, 5]);
      m = {
        'image_retrieval_recall@1': r.imageRetrieval[1]!,
        'image_retrieval_recall@5': r.imageRetrieval[5]!,
        'text_retrieval_recall@1': r.textRetrieval[1]!,
        'text_retrieval_recall@5': r.textRetrieval[5]!,
      };
      top1 = argmaxRows(similarityMatrix(ie, te, N, texts.length, E), texts.length);
    }
    result.metrics[p] = m;
    if (p === 'fp32') {
      baseTop1 = top1;
    } else {
      const base = result.metrics.fp32!;
      result.change_vs_fp32[p] = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v - base[k]!]));
      result.top1_agreement_vs_fp32[p] = top1.filter((x, i) => x === baseTop1[i]).length / N;
    }
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

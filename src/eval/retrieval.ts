// Image-text retrieval eval as CLIP_benchmark reports it: text→image (image_retrieval_recall@K: each
// caption's image in the top K) and image→text (text_retrieval_recall@K: any of the image's captions in the
// top K), K = 1, 5, 10, plus mean_recall@1 and rsum. Dims: NI images, NT captions, E projection dim.
import { countParameters } from '../io/checkpoint.ts';
import type { PairsDataset } from '../data/dataset.ts';
import { DataError } from '../errors.ts';
import { embedDatasetImages, embedTexts, type EvalModel, type EvalOptions } from './embed-data.ts';
import { retrievalRecallBlocked } from './metrics.ts';

/** The JSON `mope-clip eval --task retrieval` prints. Metrics are fractions in [0, 1]; rsum is their sum (0..6). */
export interface RetrievalResult {
  task: 'retrieval';
  data: string;
  'image_retrieval_recall@1': number;
  'image_retrieval_recall@5': number;
  'image_retrieval_recall@10': number;
  'text_retrieval_recall@1': number;
  'text_retrieval_recall@5': number;
  'text_retrieval_recall@10': number;
  /** Mean of the two recall@1. */
  'mean_recall@1': number;
  /** Sum of the six recalls. */
  rsum: number;
  n: { images: number; captions: number };
  params: number;
  seconds: number;
  limit?: number;
  seed?: number;
  skipped?: { count: number; first: Array<{ ref: string; reason: string }> };
}

/** Caption rows per similarity block (bounds memory at block·NI floats). */
const BLOCK = 2048;

export async function evalRetrieval(m: EvalModel, ds: PairsDataset, opts: EvalOptions = {}): Promise<RetrievalResult> {
  const t0 = performance.now();
  const E = m.model.config.projectionDim;
  const img = await embedDatasetImages(m, ds, opts);
  const NI = img.indices.length;
  if (NI === 0) throw new DataError(`${ds.spec}: no images left to evaluate.`);
  // Captions of the images that were embedded, in image order; captionImage maps each to its image row.
  const texts: string[] = [];
  const captionImage: number[] = [];
  img.indices.forEach((i, row) => {
    for (const c of ds.get(i).captions) {
      texts.push(c);
      captionImage.push(row);
    }
  });
  const NT = texts.length;
  const txt = await embedTexts(m, texts, opts);
  const scores = new Float32Array(Math.min(BLOCK, NT) * NI);
  const rows = (a: number, b: number) => {
    const out = scores.subarray(0, (b - a) * NI);
    m.rt.kernels.gemm(out, txt.embeds.subarray(a * E, b * E), img.embeds, b - a, NI, E, false, true, 1, 0);
    return out;
  };
  const r = retrievalRecallBlocked(rows, captionImage, NT, NI, [1, 5, 10], BLOCK);
  const ir = r.imageRetrieval,
    tr = r.textRetrieval;
  const result: RetrievalResult = {
    task: 'retrieval',
    data: ds.spec,
    'image_retrieval_recall@1': ir[1],
    'image_retrieval_recall@5': ir[5],
    'image_retrieval_recall@10': ir[10],
    'text_retrieval_recall@1': tr[1],
    'text_retrieval_recall@5': tr[5],
    'text_retrieval_recall@10': tr[10],
    'mean_recall@1': (ir[1] + tr[1]) / 2,
    rsum: ir[1] + ir[5] + ir[10] + tr[1] + tr[5] + tr[10],
    n: { images: NI, captions: NT },
    params: countParameters(m.model),
    seconds: (performance.now() - t0) / 1000,
  };
  if (ds.subset) {
    result.limit = ds.subset.limit;
    result.seed = ds.subset.seed;
  }
  if (opts.bad?.skipBad) result.skipped = opts.bad.toJSON();
  return result;
}

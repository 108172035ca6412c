// Zero-shot classification eval: class embedding = mean of the L2-normalised template embeddings,
// renormalised (OpenAI's zeroshot_classifier); logits = image · classᵀ; acc1, acc5, mean per-class recall.
// Dims: N images, NC classes, NTPL templates, E projection dim.
import { countParameters } from '../io/checkpoint.ts';
import type { ClassificationDataset } from '../data/dataset.ts';
import { embedDatasetImages, embedTexts, type EvalModel, type EvalOptions } from './embed-data.ts';
import { zeroshotAccuracy } from './metrics.ts';
import { fillTemplate, OPENAI_SIMPLE_TEMPLATES } from './templates.ts';
import { DataError } from '../errors.ts';

/** The JSON `mope-clip eval --task zeroshot` prints. Metrics are fractions in [0, 1]. */
export interface ZeroshotResult {
  task: 'zeroshot';
  /** The exact --data SPEC. */
  data: string;
  acc1: number;
  acc5: number;
  mean_per_class_recall: number;
  n: { images: number; classes: number };
  /** Number of templates per class. */
  templates: number;
  /** Model parameter count. */
  params: number;
  /** Wall-clock seconds of the whole evaluation. */
  seconds: number;
  /** Present when --limit took a subset. */
  limit?: number;
  seed?: number;
  /** Present with --skip-bad: how many items were skipped and the first few. */
  skipped?: { count: number; first: Array<{ ref: string; reason: string }> };
}

/** Class weights [NC, E]: per class, mean of the normalised template embeddings, renormalised. */
export async function zeroshotClassifier(
  m: EvalModel,
  classnames: string[],
  templates: readonly string[],
  opts: EvalOptions = {},
): Promise<Float32Array> {
  const NC = classnames.length,
    NT = templates.length,
    E = m.model.config.projectionDim;
  const texts = classnames.flatMap((c) => templates.map((t) => fillTemplate(t, c)));
  const { embeds } = await embedTexts(m, texts, opts);
  const W = new Float32Array(NC * E);
  for (let c = 0; c < NC; c++) {
    for (let t = 0; t < NT; t++) {
      const row = (c * NT + t) * E;
      for (let e = 0; e < E; e++) W[c * E + e] += embeds[row + e];
    }
  }
  for (let c = 0; c < NC; c++) for (let e = 0; e < E; e++) W[c * E + e] /= NT;
  m.rt.kernels.l2normalize(W, null, W, NC, E);
  return W;
}

export async function evalZeroshot(
  m: EvalModel,
  ds: ClassificationDataset,
  opts: EvalOptions & { templates?: readonly string[] } = {},
): Promise<ZeroshotResult> {
  const t0 = performance.now();
  const templates = opts.templates ?? OPENAI_SIMPLE_TEMPLATES;
  const E = m.model.config.projectionDim;
  const NC = ds.classnames.length;
  const W = await zeroshotClassifier(m, ds.classnames, templates, opts);
  const img = await embedDatasetImages(m, ds, opts);
  const N = img.indices.length;
  if (N === 0) throw new DataError(`${ds.spec}: no images left to evaluate.`);
  const logits = new Float32Array(N * NC);
  m.rt.kernels.gemm(logits, img.embeds, W, N, NC, E, false, true, 1, 0);
  const labels = img.indices.map((i) => ds.get(i).label);
  const acc = zeroshotAccuracy(logits, labels, N, NC, [1, 5]);
  const result: ZeroshotResult = {
    task: 'zeroshot',
    data: ds.spec,
    acc1: acc.topk[1],
    acc5: acc.topk[5],
    mean_per_class_recall: acc.meanPerClassRecall,
    n: { images: N, classes: NC },
    templates: templates.length,
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

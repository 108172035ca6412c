// Evaluation of one model inside a pipeline: parameters (all, and without the token-embedding table, which width
// pruning never touches and which dominates small models), GFLOPs of one image + one text at full context, and
// zero-shot top-1 / retrieval mean R@1 on each --eval data set. Dims: E projection dim.
import type { Runtime } from '../engine/runtime.ts';
import type { Dataset } from '../data/dataset.ts';
import { openDataset } from '../data/spec.ts';
import { ConfigError } from '../errors.ts';
import { evalRetrieval } from '../eval/retrieval.ts';
import { evalZeroshot } from '../eval/zeroshot.ts';
import { countParameters } from '../io/checkpoint.ts';
import { gflops, imageMacs, textMacs } from '../model/flops.ts';
import type { ModelFiles } from '../train/checkpoint.ts';

/** One evaluation data set, opened once and reused for every model of a run. */
export interface EvalSet {
  spec: string;
  data: Dataset;
}

export interface ModelEval {
  params: number;
  /** Parameters without text_model.embeddings.token_embedding. */
  params_no_embedding: number;
  /** 2·MACs of one image through the vision tower plus one max-length text through the text tower. */
  gflops: number;
  gflops_image: number;
  gflops_text: number;
  /** Zero-shot top-1 (classification sets), fraction in [0, 1]; null when no such set was given. */
  zeroshot: number | null;
  /** Retrieval mean recall@1 (pair sets), fraction in [0, 1]; null when no such set was given. */
  retrieval: number | null;
  /** Every set's figures by spec. */
  sets: Record<string, { task: 'zeroshot' | 'retrieval'; score: number; seconds: number }>;
  seconds: number;
}

/** Opens the --eval SPECs (with an optional --eval-limit per set). */
export function openEvalSets(specs: string[], limit?: number, seed = 0): EvalSet[] {
  return specs.map((spec) => ({ spec, data: openDataset(spec, { limit, seed }).dataset }));
}

/** Sizes and costs of a model, no data needed. */
export function modelCost(
  files: Pick<ModelFiles, 'model'>,
): Pick<ModelEval, 'params' | 'params_no_embedding' | 'gflops' | 'gflops_image' | 'gflops_text'> {
  const m = files.model,
    c = m.config;
  const params = countParameters(m);
  const gi = gflops(imageMacs(c)),
    gt = gflops(textMacs(c));
  return {
    params,
    params_no_embedding: params - c.text.vocabSize * c.text.hidden,
    gflops: gi + gt,
    gflops_image: gi,
    gflops_text: gt,
  };
}

export async function evaluateModel(
  rt: Runtime,
  files: ModelFiles,
  sets: EvalSet[],
  opts: { batch?: number; templates?: readonly string[]; progress?: boolean } = {},
): Promise<ModelEval> {
  const t0 = performance.now();
  const m = { rt, model: files.model, tokenizer: files.tokenizer, preprocess: files.preprocess };
  // progress: a bar on a TTY after 1.5 s, a line a minute in a log (a real-size eval takes minutes)
  const eo = { batch: opts.batch ?? 64, progress: opts.progress ?? true, workers: 0 };
  const out: ModelEval = { ...modelCost(files), zeroshot: null, retrieval: null, sets: {}, seconds: 0 };
  for (const s of sets) {
    if (s.data.kind === 'classification') {
      const r = await evalZeroshot(m, s.data, { ...eo, templates: opts.templates });
      out.sets[s.spec] = { task: 'zeroshot', score: r.acc1, seconds: r.seconds };
      out.zeroshot ??= r.acc1;
    } else if (s.data.kind === 'pairs') {
      const r = await evalRetrieval(m, s.data, eo);
      out.sets[s.spec] = { task: 'retrieval', score: r['mean_recall@1'], seconds: r.seconds };
      out.retrieval ??= r['mean_recall@1'];
    } else {
      throw new ConfigError(`--eval ${s.spec}: neither a classification nor a pairs data set.`);
    }
  }
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

// Loads a MoPE calibration set from --data / --zeroshot-data SPECs: preprocessed pixels [N,3,S,S], the first
// caption of each image as token ids, or labelled images plus class prompts (templates × class names).
// Dims: N images, S image side, K classes, P templates.
import { ConfigError } from '../errors.ts';
import { openDataset } from '../data/spec.ts';
import { imageBatches } from '../data/loader.ts';
import type { Dataset } from '../data/dataset.ts';
import { loadPreprocessorConfig } from '../io/preprocess.ts';
import { loadTokenizerFromFolder } from '../io/tokenizer.ts';
import { fillTemplate, resolveTemplates } from '../eval/templates.ts';
import type { ClipModel } from '../model/types.ts';
import type { Calibration } from './mope.ts';
import type { Task } from './objective.ts';

export interface CalibrationSources {
  modelDir: string;
  task: Task;
  /** Pairs SPEC for retrieval; for zeroshot alone it may also be the classification SPEC. */
  data?: string;
  zeroshotData?: string;
  limit?: number;
  seed?: number;
  batch?: number;
  /** Zero-shot prompts: a template set name or file (resolveTemplates), or the templates themselves. */
  templates?: string | readonly string[];
  /** Task both: weight of zero-shot Z in the mixed Z (default ½). */
  zeroshotWeight?: number;
}

async function loadPixels(ds: Dataset, modelDir: string, model: ClipModel, batch: number): Promise<Float32Array> {
  const S = model.config.vision.imageSize;
  const pre = await loadPreprocessorConfig(modelDir, S);
  const per = 3 * S * S;
  const out = new Float32Array(ds.size * per);
  let n = 0;
  for await (const b of imageBatches(ds, { preprocess: pre, imageSize: S, batch })) {
    out.set(b.pixels, n * per);
    n += b.indices.length;
  }
  return out.subarray(0, n * per);
}

export async function loadCalibration(model: ClipModel, src: CalibrationSources): Promise<Calibration> {
  const tok = loadTokenizerFromFolder(src.modelDir, {
    maxPositions: model.config.text.maxPositions,
    modelVocabSize: model.config.text.vocabSize,
  });
  const batch = src.batch ?? 32;
  const cal: Calibration = { task: src.task };
  if (src.zeroshotWeight !== undefined) cal.zeroshotWeight = src.zeroshotWeight;
  const pairsSpec = src.task === 'zeroshot' ? undefined : src.data;
  const clsSpec =
    src.task === 'zeroshot' ? (src.zeroshotData ?? src.data) : src.task === 'both' ? src.zeroshotData : undefined;
  if (src.task !== 'zeroshot' && pairsSpec === undefined)
    throw new ConfigError(`--task ${src.task} needs --data SPEC with image-text pairs`);
  if (src.task !== 'retrieval' && clsSpec === undefined) {
    throw new ConfigError(
      src.task === 'both'
        ? '--task both needs --zeroshot-data SPEC with labelled images'
        : '--task zeroshot needs --data SPEC with labelled images',
    );
  }
  if (pairsSpec !== undefined) {
    const { dataset } = openDataset(pairsSpec, { limit: src.limit, seed: src.seed });
    if (dataset.kind !== 'pairs')
      throw new ConfigError(`--data ${pairsSpec} is a classification set; retrieval needs image-text pairs`);
    const captions: number[][] = [];
    for (let i = 0; i < dataset.size; i++) captions.push(tok.encode(dataset.get(i).captions[0]));
    const pixels = await loadPixels(dataset, src.modelDir, model, batch);
    cal.retrieval = { pixels, n: dataset.size, captions };
  }
  if (clsSpec !== undefined) {
    const { dataset } = openDataset(clsSpec, { limit: src.limit, seed: src.seed });
    if (dataset.kind !== 'classification')
      throw new ConfigError(`${clsSpec} holds image-text pairs; zero-shot needs a classification set`);
    const templates = typeof src.templates === 'object' ? src.templates : resolveTemplates(src.templates);
    const prompts = dataset.classnames.map((c) => templates.map((t) => tok.encode(fillTemplate(t, c))));
    const labels = Array.from({ length: dataset.size }, (_, i) => dataset.get(i).label);
    const pixels = await loadPixels(dataset, src.modelDir, model, batch);
    cal.zeroshot = { pixels, n: dataset.size, labels, prompts };
  }
  return cal;
}

/**
 * Two disjoint halves of a calibration set (items 0…⌊n/2⌋−1 and the rest of each part; the class prompts are shared),
 * for checking that the module ranking does not depend on which calibration items were drawn.
 */
export function splitCalibration(cal: Calibration): [Calibration, Calibration] {
  const halves: [Calibration, Calibration] = [{ ...cal }, { ...cal }];
  const cut = (pixels: Float32Array, n: number) => {
    const h = Math.floor(n / 2),
      per = n > 0 ? pixels.length / n : 0;
    return { h, a: pixels.subarray(0, h * per), b: pixels.subarray(h * per) };
  };
  if (cal.retrieval) {
    const r = cal.retrieval,
      { h, a, b } = cut(r.pixels, r.n);
    halves[0].retrieval = { pixels: a, n: h, captions: r.captions.slice(0, h) };
    halves[1].retrieval = { pixels: b, n: r.n - h, captions: r.captions.slice(h) };
  }
  if (cal.zeroshot) {
    const z = cal.zeroshot,
      { h, a, b } = cut(z.pixels, z.n),
      labels = Array.from(z.labels);
    halves[0].zeroshot = { pixels: a, n: h, labels: labels.slice(0, h), prompts: z.prompts };
    halves[1].zeroshot = { pixels: b, n: z.n - h, labels: labels.slice(h), prompts: z.prompts };
  }
  return halves;
}

// One call for `mope-clip eval`: load the checkpoint folder (weights, tokenizer, preprocessing), open
// --data with its options, check the task fits the data, and run zero-shot or retrieval evaluation.
import type { Runtime } from '../engine/runtime.ts';
import { ConfigError } from '../errors.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { loadPreprocessorConfig, outputShape } from '../io/preprocess.ts';
import { checkBatchMemory } from '../model/config.ts';
import { loadTokenizerFromFolder } from '../io/tokenizer.ts';
import { openDataset, type OpenDataOptions } from '../data/spec.ts';
import type { EvalModel, EvalOptions } from './embed-data.ts';
import { evalRetrieval, type RetrievalResult } from './retrieval.ts';
import { resolveTemplates } from './templates.ts';
import { evalZeroshot, type ZeroshotResult } from './zeroshot.ts';

export type EvalTask = 'zeroshot' | 'retrieval';

export interface RunEvalOptions extends OpenDataOptions, Omit<EvalOptions, 'bad'> {
  /** Checkpoint folder. --model */
  modelDir: string;
  /** --task */
  task: EvalTask;
  /** --data SPEC */
  data: string;
  /** --templates: a file, "openai-7" (default) or "openai-80". Zero-shot only. */
  templates?: string;
}

/** Loads what evaluation needs from a checkpoint folder. */
export async function loadEvalModel(rt: Runtime, modelDir: string): Promise<EvalModel> {
  const model = loadCheckpoint(modelDir);
  const S = model.config.vision.imageSize;
  const preprocess = await loadPreprocessorConfig(modelDir, S);
  const [, h, w] = outputShape(preprocess, S, S);
  // Without a centre crop the output follows each image's shape, which only works for square inputs;
  // with one it must equal the tower's input size.
  if (preprocess.doCenterCrop && (h !== S || w !== S)) {
    throw new ConfigError(
      `${modelDir}/preprocessor_config.json crops to ${w}x${h} but the vision tower takes ${S}x${S}; fix crop_size.`,
    );
  }
  const tokenizer = loadTokenizerFromFolder(modelDir, {
    maxPositions: model.config.text.maxPositions,
    modelVocabSize: model.config.text.vocabSize,
  });
  return { rt, model, tokenizer, preprocess, modelDir };
}

export async function runEval(rt: Runtime, o: RunEvalOptions): Promise<ZeroshotResult | RetrievalResult> {
  if (o.task !== 'zeroshot' && o.task !== 'retrieval') {
    throw new ConfigError(`--task expects zeroshot or retrieval, found "${o.task}".`);
  }
  const templates = o.task === 'zeroshot' ? resolveTemplates(o.templates) : undefined;
  if (o.task === 'retrieval' && o.templates !== undefined)
    throw new ConfigError('--templates applies to --task zeroshot only.');
  const { dataset, bad } = openDataset(o.data, o);
  if (o.task === 'zeroshot' && dataset.kind !== 'classification') {
    throw new ConfigError(
      `--task zeroshot needs a classification data set (folder:PATH or builtin:fashion-mnist); "${o.data}" holds image-text pairs — use --task retrieval.`,
    );
  }
  if (o.task === 'retrieval' && dataset.kind !== 'pairs') {
    throw new ConfigError(
      `--task retrieval needs image-text pairs (csv:, tsv:, jsonl:, coco: or builtin:fashion-scenes); "${o.data}" is a classification set — use --task zeroshot.`,
    );
  }
  const m = await loadEvalModel(rt, o.modelDir);
  if (o.batch !== undefined) checkBatchMemory(m.model.config, o.batch);
  const eopts: EvalOptions = { batch: o.batch, workers: o.workers, cacheDir: o.cacheDir, progress: o.progress, bad };
  const result =
    dataset.kind === 'classification'
      ? await evalZeroshot(m, dataset, { ...eopts, templates })
      : await evalRetrieval(m, dataset, eopts);
  if (bad.count > 0) rt.log.warn(bad.summary());
  return result;
}

// Opens a checkpoint folder for inference: the model plus, on demand, its tokenizer and preprocessor config.
import { loadCheckpoint } from './checkpoint.ts';
import { loadTokenizerFromFolder } from './tokenizer.ts';
import type { ClipTokenizer } from './tokenizer.ts';
import { loadPreprocessorConfig, type PreprocessorConfig } from './preprocess.ts';
import type { ClipModel } from '../model/types.ts';

export interface ModelFolder {
  dir: string;
  model: ClipModel;
  tokenizer(): ClipTokenizer;
  preprocessor(): Promise<PreprocessorConfig>;
}

export function openModelFolder(dir: string): ModelFolder {
  const model = loadCheckpoint(dir);
  let tok: ClipTokenizer | undefined;
  let pre: Promise<PreprocessorConfig> | undefined;
  return {
    dir,
    model,
    tokenizer: () =>
      (tok ??= loadTokenizerFromFolder(dir, {
        maxPositions: model.config.text.maxPositions,
        modelVocabSize: model.config.text.vocabSize,
      })),
    preprocessor: () => (pre ??= loadPreprocessorConfig(dir, model.config.vision.imageSize)),
  };
}

// Eval throughput benchmark: images/s of embedding a real PNG data set (decode + preprocess + forward, overlapped)
// next to the raw forward images/s of the same model on the same number of images. Dims: N images, E projection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel } from '../model/types.ts';
import { exportDataset } from '../data/export.ts';
import { openDataset } from '../data/spec.ts';
import { embedDatasetImages } from '../eval/embed-data.ts';
import { defaultPreprocessorConfig } from '../io/preprocess.ts';
import { ClipTokenizer } from '../io/tokenizer.ts';
import { encodeImages } from '../model/encode.ts';

export interface EvalBench {
  n: number;
  eval_images_per_s: number;
  forward_images_per_s: number;
  ratio: number;
}

export async function benchEval(rt: Runtime, model: ClipModel, n: number, batch: number): Promise<EvalBench> {
  const dir = mkdtempSync(join(tmpdir(), 'mope-bench-eval-'));
  try {
    // Real files: fashion-scenes exported as 96×96 PNGs, so decoding and the bicubic resize are part of the cost.
    await exportDataset('builtin:fashion-scenes:test', join(dir, 'data'), { limit: n, progress: false });
    const { dataset } = openDataset(`csv:${join(dir, 'data', 'data.csv')}`);
    const m = { rt, model, tokenizer: ClipTokenizer.fromBundledVocab(), preprocess: defaultPreprocessorConfig(model.config.vision.imageSize) };
    let t0 = performance.now();
    await embedDatasetImages(m, dataset, { batch, progress: false });
    const evalS = (performance.now() - t0) / 1000;
    const S = model.config.vision.imageSize;
    const pixels = new Float32Array(n * 3 * S * S).fill(0.1);
    t0 = performance.now();
    encodeImages(rt, model, pixels, n, { batch });
    const fwdS = (performance.now() - t0) / 1000;
    return { n, eval_images_per_s: n / evalS, forward_images_per_s: n / fwdS, ratio: fwdS / evalS };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

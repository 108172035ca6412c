// Eval throughput benchmark: images/s of embedding a real PNG data set (decode + preprocess + forward, overlapped)
// next to the raw forward images/s of the same model on the same number of images (after a warm-up; the mean of a
// forward before and one after the eval). Dims: N images, E projection.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel } from '../model/types.ts';
import { exportDataset } from '../data/export.ts';
import { openDataset } from '../data/spec.ts';
import { defaultDecodeWorkers } from '../data/loader.ts';
import { embedDatasetImages } from '../eval/embed-data.ts';
import { defaultPreprocessorConfig } from '../io/preprocess.ts';
import { ClipTokenizer } from '../io/tokenizer.ts';
import { encodeImages } from '../model/encode.ts';

export interface EvalBench {
  n: number;
  /** Decode worker threads used (0 = decoded in the calling thread between forwards). */
  workers: number;
  eval_images_per_s: number;
  forward_images_per_s: number;
  ratio: number;
}

export async function benchEval(
  rt: Runtime,
  model: ClipModel,
  n: number,
  batch: number,
  workers = defaultDecodeWorkers(availableParallelism(), rt.threads),
): Promise<EvalBench> {
  const dir = mkdtempSync(join(tmpdir(), 'mope-bench-eval-'));
  try {
    // Real files: fashion-scenes exported as 96×96 PNGs, so decoding and the bicubic resize are part of the cost.
    await exportDataset('builtin:fashion-scenes:test', join(dir, 'data'), { limit: n, progress: false });
    const { dataset } = openDataset(`csv:${join(dir, 'data', 'data.csv')}`);
    const m = {
      rt,
      model,
      tokenizer: ClipTokenizer.fromBundledVocab(),
      preprocess: defaultPreprocessorConfig(model.config.vision.imageSize),
    };
    const S = model.config.vision.imageSize;
    const pixels = new Float32Array(n * 3 * S * S).fill(0.1);
    const forward = () => {
      const t = performance.now();
      encodeImages(rt, model, pixels, n, { batch });
      return (performance.now() - t) / 1000;
    };
    encodeImages(rt, model, pixels.subarray(0, 3 * S * S), 1); // warm-up: weight packing, first-touch pages
    // forward, eval, forward: the eval is compared with the mean of the forwards around it (drift cancels)
    const f1 = forward();
    const t0 = performance.now();
    await embedDatasetImages(m, dataset, { batch, progress: false, workers });
    const evalS = (performance.now() - t0) / 1000;
    const fwdS = (f1 + forward()) / 2;
    return { n, workers, eval_images_per_s: n / evalS, forward_images_per_s: n / fwdS, ratio: fwdS / evalS };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

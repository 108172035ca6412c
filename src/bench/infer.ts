// Inference throughput of the engine: images/s and texts/s (77 tokens) of a model on random inputs, best of N
// timed calls after a warm-up. Used by `mope-clip bench --mode infer` and the deploy benchmark's engine row.
import type { Runtime } from '../engine/runtime.ts';
import { loadDnnl } from '../engine/native.ts';
import { textForward, visionForward } from '../model/forward.ts';
import type { ClipModel } from '../model/types.ts';
import { Rng } from '../model/rng.ts';

export interface InferBench {
  geometry: string;
  batch: number;
  threads: number;
  /** GEMM precision and the instruction set oneDNN dispatches to on this CPU (what its bf16 matmul would use). */
  precision: string;
  isa: string;
  images_per_s: number;
  texts_per_s: number;
}

/** Best-of-`iters` timing of one call after a warm-up call. */
function timeIt(fn: () => void, iters: number): number {
  fn();
  let best = Infinity;
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

/** Precision and oneDNN ISA fields of every bench JSON; impl names the matmul kernel of the chosen precision. */
export function precisionFields(rt: Runtime): { precision: string; isa: string; impl: string } {
  const precision = rt.precision ?? 'fp32';
  const info = loadDnnl().dnnlInfo(precision === 'bf16');
  return { precision, isa: info.isa, impl: precision === 'bf16' ? info.impl ?? 'none' : 'openblas sgemm' };
}

export function benchInfer(rt: Runtime, model: ClipModel, batch: number, iters: number): { images_per_s: number; texts_per_s: number } {
  const c = model.config;
  const rng = new Rng(rt.seed);
  const S = c.vision.imageSize;
  const pixels = new Float32Array(batch * c.vision.channels * S * S);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.normal();
  const T = c.text.maxPositions;
  const ids = new Int32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    ids[b * T] = 49406 % c.text.vocabSize;
    for (let t = 1; t < T - 1; t++) ids[b * T + t] = Math.floor(rng.uniform() * Math.min(49406, c.text.vocabSize));
    ids[b * T + T - 1] = c.text.eosTokenId;
  }
  const secImg = timeIt(() => visionForward(rt, model, pixels, batch), iters);
  const secTxt = timeIt(() => textForward(rt, model, ids, batch, T), iters);
  return { images_per_s: batch / secImg, texts_per_s: batch / secTxt };
}

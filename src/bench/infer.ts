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

/**
 * Best-of-`iters` timing of one call after a warm-up call: wall seconds, and the process's CPU seconds (user +
 * system, all threads) of the call with the least CPU time. On a machine shared with other work the CPU time
 * barely moves while wall time swings, so per-CPU-second figures compare runs made under different load.
 */
export function timeIt(fn: () => void, iters: number): { wall: number; cpu: number } {
  fn();
  let wall = Infinity,
    cpu = Infinity;
  for (let i = 0; i < iters; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn();
    wall = Math.min(wall, Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1e6);
  }
  return { wall, cpu };
}

/** Precision and oneDNN ISA fields of every bench JSON; impl names the matmul kernel of the chosen precision. */
export function precisionFields(rt: Runtime): { precision: string; isa: string; impl: string } {
  const precision = rt.precision ?? 'fp32';
  const info = loadDnnl().dnnlInfo(precision === 'bf16');
  const dnnl = precision === 'bf16' || process.env.MOPE_FP32_GEMM === 'onednn';
  return { precision, isa: info.isa, impl: dnnl ? (info.impl ?? 'none') : 'openblas sgemm' };
}

export interface InferSpeed {
  images_per_s: number;
  texts_per_s: number;
  /** Items per CPU-second (user + system of every thread): the load-robust figure. */
  images_per_cpu_s: number;
  texts_per_cpu_s: number;
}

export function benchInfer(rt: Runtime, model: ClipModel, batch: number, iters: number): InferSpeed {
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
  const img = timeIt(() => visionForward(rt, model, pixels, batch), iters);
  const txt = timeIt(() => textForward(rt, model, ids, batch, T), iters);
  return {
    images_per_s: batch / img.wall,
    texts_per_s: batch / txt.wall,
    images_per_cpu_s: batch / img.cpu,
    texts_per_cpu_s: batch / txt.cpu,
  };
}

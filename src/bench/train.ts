// `mope-clip bench --mode train`: pairs/s of one distillation step — a half-width ViT-B/32 student (vision 6 heads,
// FFN 1536; text 4 heads, FFN 1024; head size 64, hidden sizes unchanged) against the full, frozen ViT-B/32 teacher:
// both forwards, L_con + L_kd + L_emb + L_hid, student backward, AdamW. bench/torch_train_bench.py is the PyTorch twin.
// Dims: B pairs, T tokens (77, every position a token, as in the PyTorch twin), S 224.
import type { Runtime } from '../engine/runtime.ts';
import { createGrads, paramList, zeroGrads } from '../model/grads.ts';
import { GEOMETRIES, initClipModel, type ClipGeometry } from '../model/init.ts';
import { Rng } from '../model/rng.ts';
import { Optimizer } from '../train/optim.ts';
import { TrainStep, accumulateStep, type TrainBatch } from '../train/step.ts';

/** ViT-B/32 at half width in both towers (what MoPE width pruning to 50 % gives, uniformly). */
export function halfWidthB32(): ClipGeometry {
  const g = structuredClone(GEOMETRIES['vit-b-32']);
  g.vision = { ...g.vision, heads: 6, ffn: 1536, headDim: 64 };
  g.text = { ...g.text, heads: 4, ffn: 1024, headDim: 64 };
  return g;
}

export interface TrainBenchResult {
  student: string;
  teacher: string;
  batch: number;
  tokens: number;
  threads: number;
  /** Best step time (s) over `iters` after a warm-up step. */
  step_s: number;
  pairs_per_s: number;
  /** Pairs per CPU-second (user + system of every thread) of the step with the least CPU time. */
  pairs_per_cpu_s: number;
  loss: number;
}

/** Random pixels and token ids [B,T] (BOS, random ids, EOS last). */
export function randomBatch(seed: number, B: number, T: number, S: number): TrainBatch {
  const rng = new Rng(seed);
  const pixels = rng.fillNormal(new Float32Array(B * 3 * S * S));
  const ids = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    ids[b * T] = 49406;
    for (let t = 1; t < T - 1; t++) ids[b * T + t] = rng.int(49406);
    ids[b * T + T - 1] = 49407;
  }
  return { B, T, ids, attentionMask: null, pixels };
}

export function benchTrain(rt: Runtime, o: { batch?: number; iters?: number; tokens?: number } = {}): TrainBenchResult {
  const B = o.batch ?? 32,
    T = o.tokens ?? 77,
    iters = o.iters ?? 2;
  const teacher = initClipModel('vit-b-32', 1);
  const student = initClipModel(halfWidthB32(), 2);
  const grads = createGrads(student.config);
  const step = new TrainStep(rt, { student, grads, teacher });
  const opt = new Optimizer(rt, paramList(student, grads), { lr: 1e-5 });
  const batch = randomBatch(rt.seed, B, T, student.config.vision.imageSize);
  const once = () => accumulateStep(step, opt, [batch], () => zeroGrads(student.config, grads)).loss.total;
  let loss = once();
  let best = Infinity,
    cpu = Infinity;
  for (let i = 0; i < iters; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    loss = once();
    best = Math.min(best, (performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1e6);
  }
  return {
    student: 'vit-b-32 half width (vision 6 heads / FFN 1536, text 4 heads / FFN 1024)',
    teacher: 'vit-b-32',
    batch: B,
    tokens: T,
    threads: rt.threads,
    step_s: best,
    pairs_per_s: B / best,
    pairs_per_cpu_s: B / cpu,
    loss,
  };
}

// The MoPE task score Z and the calibration loss, from image and text embeddings.
// Dims: N images (retrieval: one first caption per image, so N captions), K classes, P_k prompts of class k,
// E projection dim. Retrieval Z = ½(i2t R@1 + t2i R@1); zero-shot Z = top-1; both = mean of the two.
// Loss: retrieval = ½[CE(logits, diag) + CE(logitsᵀ, diag)] over the N×N matrix, logits = exp(s)·Î·T̂ᵀ;
// zero-shot = CE of exp(s)·Î·Ŵᵀ against the labels; both = mean. Means over rows, accumulated in float64.
import { ConfigError, ShapeError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import { rankOf } from '../eval/metrics.ts';

export type Task = 'retrieval' | 'zeroshot' | 'both';

export interface ObjectiveValue {
  z: number;
  loss: number;
}

export function parseTask(s: string): Task {
  if (s === 'retrieval' || s === 'zeroshot' || s === 'both') return s;
  throw new ConfigError(`--task expects retrieval, zeroshot or both; found "${s}"`);
}

function normalized(rt: Runtime, x: Float32Array, N: number, E: number): Float32Array {
  const out = new Float32Array(N * E);
  rt.kernels.l2normalize(out, null, x, N, E);
  return out;
}

/** log Σ exp over a strided row of n values. */
function logSumExp(v: Float32Array, off: number, stride: number, n: number, scale: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) m = Math.max(m, scale * v[off + j * stride]);
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(scale * v[off + j * stride] - m);
  return m + Math.log(s);
}

/**
 * Retrieval with one caption per image: images [N,E], texts [N,E] unnormalised, caption i belongs to image i.
 * Ties in R@1 follow src/eval/metrics.ts (lower index ranks first).
 */
export function retrievalObjective(
  rt: Runtime,
  images: Float32Array,
  texts: Float32Array,
  N: number,
  E: number,
  logitScale: number,
): ObjectiveValue {
  if (images.length !== N * E || texts.length !== N * E) {
    throw new ShapeError(
      `retrievalObjective: expected images and texts of N·E = ${N}·${E}, got ${images.length} and ${texts.length}`,
    );
  }
  const I = normalized(rt, images, N, E),
    T = normalized(rt, texts, N, E);
  const sim = new Float32Array(N * N); // sim[i, j] = Î_i · T̂_j
  rt.kernels.gemm(sim, I, T, N, N, E, false, true, 1, 0);
  const scale = Math.exp(logitScale);
  let i2t = 0,
    t2i = 0,
    ceRows = 0,
    ceCols = 0;
  const col = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const row = sim.subarray(i * N, (i + 1) * N);
    if (rankOf(row, i) === 0) i2t++;
    ceRows += logSumExp(sim, i * N, 1, N, scale) - scale * sim[i * N + i];
    for (let j = 0; j < N; j++) col[j] = sim[j * N + i];
    if (rankOf(col, i) === 0) t2i++;
    ceCols += logSumExp(sim, i, N, N, scale) - scale * sim[i * N + i];
  }
  return { z: (i2t / N + t2i / N) / 2, loss: (ceRows / N + ceCols / N) / 2 };
}

/**
 * Zero-shot classifier [K,E] from prompt embeddings [ΣP_k, E] (class-major, counts[k] = P_k prompts of class k):
 * each prompt normalised, averaged per class, renormalised (CLIP's prompt ensembling).
 */
export function classifierFromPrompts(rt: Runtime, prompts: Float32Array, counts: number[], E: number): Float32Array {
  const K = counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  if (prompts.length !== total * E)
    throw new ShapeError(`classifierFromPrompts: expected ${total}·${E} prompt values, got ${prompts.length}`);
  const n = normalized(rt, prompts, total, E);
  const mean = new Float32Array(K * E);
  let row = 0;
  for (let k = 0; k < K; k++) {
    const P = counts[k];
    if (P < 1) throw new ShapeError(`classifierFromPrompts: class ${k} has no prompt`);
    for (let p = 0; p < P; p++, row++) {
      for (let e = 0; e < E; e++) mean[k * E + e] += n[row * E + e] / P;
    }
  }
  return normalized(rt, mean, K, E);
}

/** Zero-shot: images [N,E] unnormalised, classifier [K,E] (already normalised), labels [N]. */
export function zeroshotObjective(
  rt: Runtime,
  images: Float32Array,
  classifier: Float32Array,
  labels: ArrayLike<number>,
  N: number,
  K: number,
  E: number,
  logitScale: number,
): ObjectiveValue {
  if (images.length !== N * E || classifier.length !== K * E || labels.length !== N) {
    throw new ShapeError(`zeroshotObjective: expected images [${N},${E}], classifier [${K},${E}], labels [${N}]`);
  }
  const I = normalized(rt, images, N, E);
  const sim = new Float32Array(N * K);
  rt.kernels.gemm(sim, I, classifier, N, K, E, false, true, 1, 0);
  const scale = Math.exp(logitScale);
  let hits = 0,
    ce = 0;
  for (let i = 0; i < N; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= K)
      throw new ShapeError(`zeroshotObjective: label ${y} of image ${i} outside [0, ${K})`);
    if (rankOf(sim.subarray(i * K, (i + 1) * K), y) === 0) hits++;
    ce += logSumExp(sim, i * K, 1, K, scale) - scale * sim[i * K + y];
  }
  return { z: hits / N, loss: ce / N };
}

/** both = (1 − w)·retrieval + w·zero-shot, w = the zero-shot weight (default ½: the mean of the two parts). */
export function combine(a: ObjectiveValue, b: ObjectiveValue, w = 0.5): ObjectiveValue {
  return { z: (1 - w) * a.z + w * b.z, loss: (1 - w) * a.loss + w * b.loss };
}

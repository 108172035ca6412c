// Baseline importance criteria: magnitude (L1 norm of a module's weights), first-order Taylor (Σ|w·g|) and seeded random.
// Dims: C width, HS head size, NH_l heads, F_l FFN width of layer l. A head = its HS rows in each of the q, k,
// v blocks of qkvW plus its HS columns of outW; an FFN group = its fc1W rows plus its fc2W columns; a layer =
// every parameter of the block (LNs, qkv, out_proj, fc1, fc2, weights and biases). Biases of heads and
// neurons are not counted, as in the usual magnitude-pruning definition (weights only).
import type { ClipModel, ClipWeights, LayerWeights } from '../model/types.ts';
import { ffnGroupRange, moduleKey, towerConfig, type ModuleRef } from './modules.ts';

function l1(a: Float32Array, start = 0, end = a.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s += Math.abs(a[i]);
  return s;
}

function layerWeights(w: ClipWeights, m: ModuleRef): LayerWeights {
  return (m.tower === 'text' ? w.text : w.vision).layers[m.layer];
}

/** A contiguous run [start, end) of one weight array of the module's layer. */
type Run = [keyof LayerWeights, number, number];

/** The weight runs of a module (definitions in the file comment), in a fixed order. */
function moduleRuns(model: ClipModel, m: ModuleRef, ffnGroupSize: number): Run[] {
  const cfg = towerConfig(model, m.tower);
  const C = cfg.hidden,
    HS = cfg.headDim,
    NH = cfg.heads[m.layer],
    D = NH * HS,
    F = cfg.ffn[m.layer];
  const runs: Run[] = [];
  if (m.kind === 'head') {
    for (let b = 0; b < 3; b++) {
      const r0 = b * D + m.index * HS;
      runs.push(['qkvW', r0 * C, (r0 + HS) * C]);
    }
    for (let c = 0; c < C; c++) runs.push(['outW', c * D + m.index * HS, c * D + (m.index + 1) * HS]);
  } else if (m.kind === 'ffn') {
    const [a, e] = ffnGroupRange(F, ffnGroupSize, m.index);
    runs.push(['fc1W', a * C, e * C]);
    for (let c = 0; c < C; c++) runs.push(['fc2W', c * F + a, c * F + e]);
  } else {
    const w = layerWeights(model.weights, m);
    for (const k of [
      'ln1W',
      'ln1B',
      'qkvW',
      'qkvB',
      'outW',
      'outB',
      'ln2W',
      'ln2B',
      'fc1W',
      'fc1B',
      'fc2W',
      'fc2B',
    ] as const)
      runs.push([k, 0, w[k].length]);
  }
  return runs;
}

/** L1 norm of the module's weights (definitions in the file comment). */
export function magnitude(model: ClipModel, m: ModuleRef, ffnGroupSize: number): number {
  const w = layerWeights(model.weights, m);
  let s = 0;
  for (const [k, a, e] of moduleRuns(model, m, ffnGroupSize)) s += l1(w[k], a, e);
  return s;
}

/**
 * First-order Taylor importance Σ|w·∂L/∂w| over the module's weights (the same weights as magnitude), given
 * gradients shaped like the weights (src/model/grads.ts).
 */
export function taylor(model: ClipModel, grads: ClipWeights, m: ModuleRef, ffnGroupSize: number): number {
  const w = layerWeights(model.weights, m),
    g = layerWeights(grads, m);
  let s = 0;
  for (const [k, a, e] of moduleRuns(model, m, ffnGroupSize)) {
    const wa = w[k],
      ga = g[k];
    for (let i = a; i < e; i++) s += Math.abs(wa[i] * ga[i]);
  }
  return s;
}

/** FNV-1a 32-bit hash of a string. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Seeded random score in [0, 1) of a module: a hash of (seed, module key) pushed through splitmix32, so the
 * value of a module does not depend on which other modules (or which shard) are scored.
 */
export function randomScore(m: ModuleRef, seed: number): number {
  let x = (fnv1a(`${seed}:${moduleKey(m)}`) + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x / 4294967296;
}

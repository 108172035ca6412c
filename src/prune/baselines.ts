// Baseline importance criteria: magnitude (L1 norm of a module's weights) and seeded random.
// Dims: C width, HS head size, NH_l heads, F_l FFN width of layer l. A head = its HS rows in each of the q, k,
// v blocks of qkvW plus its HS columns of outW; an FFN group = its fc1W rows plus its fc2W columns; a layer =
// every parameter of the block (LNs, qkv, out_proj, fc1, fc2, weights and biases). Biases of heads and
// neurons are not counted, as in the usual magnitude-pruning definition (weights only).
import type { ClipModel, LayerWeights } from '../model/types.ts';
import { ffnGroupRange, moduleKey, towerConfig, type ModuleRef } from './modules.ts';

function l1(a: Float32Array, start = 0, end = a.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s += Math.abs(a[i]);
  return s;
}

function layerWeights(model: ClipModel, m: ModuleRef): LayerWeights {
  return (m.tower === 'text' ? model.weights.text : model.weights.vision).layers[m.layer];
}

/** L1 norm of the module's weights (definitions in the file comment). */
export function magnitude(model: ClipModel, m: ModuleRef, ffnGroupSize: number): number {
  const cfg = towerConfig(model, m.tower);
  const w = layerWeights(model, m);
  const C = cfg.hidden, HS = cfg.headDim, NH = cfg.heads[m.layer], D = NH * HS, F = cfg.ffn[m.layer];
  if (m.kind === 'head') {
    let s = 0;
    for (let b = 0; b < 3; b++) {
      const r0 = b * D + m.index * HS;
      s += l1(w.qkvW, r0 * C, (r0 + HS) * C);
    }
    for (let c = 0; c < C; c++) s += l1(w.outW, c * D + m.index * HS, c * D + (m.index + 1) * HS);
    return s;
  }
  if (m.kind === 'ffn') {
    const [a, e] = ffnGroupRange(F, ffnGroupSize, m.index);
    let s = l1(w.fc1W, a * C, e * C);
    for (let c = 0; c < C; c++) s += l1(w.fc2W, c * F + a, c * F + e);
    return s;
  }
  let s = 0;
  for (const t of [w.ln1W, w.ln1B, w.qkvW, w.qkvB, w.outW, w.outB, w.ln2W, w.ln2B, w.fc1W, w.fc1B, w.fc2W, w.fc2B]) s += l1(t);
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

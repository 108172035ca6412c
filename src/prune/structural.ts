// Structural pruning: copies the kept heads (q/k/v rows, out_proj columns), FFN neurons (fc1 rows and bias,
// fc2 columns) and layers into a new, smaller ClipModel with per-layer widths and an updated layerMap.
// Dims: C width (unchanged), HS head size, NH_l → NH'_l heads, F_l → F'_l neurons, L → L' layers.
// For kept modules the result computes exactly what the dense model computes with the rest masked to zero.
import { ConfigError } from '../errors.ts';
import type { ClipModel, LayerWeights, TowerConfig } from '../model/types.ts';
import type { TowerKeep } from './masks.ts';
import type { PrunePlan } from './plan.ts';

function checkIndices(list: number[], n: number, what: string): void {
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (!Number.isInteger(v) || v < 0 || v >= n) throw new ConfigError(`${what}: index ${v} outside [0, ${n})`);
    if (i > 0 && v <= list[i - 1])
      throw new ConfigError(`${what}: indices must be strictly increasing, found ${JSON.stringify(list)}`);
  }
}

/** New weights of one layer keeping heads hk and neurons fk. */
export function pruneLayer(cfg: TowerConfig, l: number, w: LayerWeights, hk: number[], fk: number[]): LayerWeights {
  const C = cfg.hidden,
    HS = cfg.headDim,
    NH = cfg.heads[l],
    D = NH * HS,
    F = cfg.ffn[l];
  checkIndices(hk, NH, `layer ${l} kept heads`);
  checkIndices(fk, F, `layer ${l} kept FFN neurons`);
  const D2 = hk.length * HS,
    F2 = fk.length;
  const qkvW = new Float32Array(3 * D2 * C),
    qkvB = new Float32Array(3 * D2);
  for (let b = 0; b < 3; b++) {
    hk.forEach((h, j) => {
      const src = b * D + h * HS,
        dst = b * D2 + j * HS;
      qkvW.set(w.qkvW.subarray(src * C, (src + HS) * C), dst * C);
      qkvB.set(w.qkvB.subarray(src, src + HS), dst);
    });
  }
  const outW = new Float32Array(C * D2);
  for (let c = 0; c < C; c++) {
    hk.forEach((h, j) => outW.set(w.outW.subarray(c * D + h * HS, c * D + (h + 1) * HS), c * D2 + j * HS));
  }
  const fc1W = new Float32Array(F2 * C),
    fc1B = new Float32Array(F2),
    fc2W = new Float32Array(C * F2);
  fk.forEach((n, j) => {
    fc1W.set(w.fc1W.subarray(n * C, (n + 1) * C), j * C);
    fc1B[j] = w.fc1B[n];
  });
  for (let c = 0; c < C; c++) for (let j = 0; j < F2; j++) fc2W[c * F2 + j] = w.fc2W[c * F + fk[j]];
  return {
    ln1W: Float32Array.from(w.ln1W),
    ln1B: Float32Array.from(w.ln1B),
    qkvW,
    qkvB,
    outW,
    outB: Float32Array.from(w.outB),
    ln2W: Float32Array.from(w.ln2W),
    ln2B: Float32Array.from(w.ln2B),
    fc1W,
    fc1B,
    fc2W,
    fc2B: Float32Array.from(w.fc2B),
  };
}

function pruneTower<T extends TowerConfig>(
  cfg: T,
  layers: LayerWeights[],
  keep: TowerKeep | undefined,
): { cfg: T; layers: LayerWeights[] } {
  const L = cfg.heads.length;
  if (keep === undefined)
    return {
      cfg: structuredClone(cfg),
      layers: layers.map((w, l) => pruneLayer(cfg, l, w, range(cfg.heads[l]), range(cfg.ffn[l]))),
    };
  if (keep.heads.length !== L || keep.ffn.length !== L)
    throw new ConfigError(`prune plan has ${keep.heads.length} head lists for ${L} layers`);
  checkIndices(keep.layers, L, 'kept layers');
  if (keep.layers.length === 0) throw new ConfigError('a prune plan must keep at least one layer');
  const out = structuredClone(cfg);
  out.heads = keep.layers.map((l) => keep.heads[l].length);
  out.ffn = keep.layers.map((l) => keep.ffn[l].length);
  out.layerMap = keep.layers.map((l) => cfg.layerMap[l]);
  return { cfg: out, layers: keep.layers.map((l) => pruneLayer(cfg, l, layers[l], keep.heads[l], keep.ffn[l])) };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * A new model holding only what the plan keeps (towers absent from the plan are copied whole). Embeddings,
 * LNs outside the blocks, projections and logit_scale are copied unchanged; hidden size and projection stay.
 */
export function pruneModel(model: ClipModel, plan: PrunePlan): ClipModel {
  const { config: c, weights: w } = model;
  const t = pruneTower(c.text, w.text.layers, plan.text);
  const v = pruneTower(c.vision, w.vision.layers, plan.vision);
  const copy = (a: Float32Array) => Float32Array.from(a);
  return {
    config: { text: t.cfg, vision: v.cfg, projectionDim: c.projectionDim, raw: structuredClone(c.raw) },
    weights: {
      text: {
        tokenEmbedding: copy(w.text.tokenEmbedding),
        positionEmbedding: copy(w.text.positionEmbedding),
        layers: t.layers,
        finalLnW: copy(w.text.finalLnW),
        finalLnB: copy(w.text.finalLnB),
        projection: copy(w.text.projection),
      },
      vision: {
        classEmbedding: copy(w.vision.classEmbedding),
        patchEmbedding: copy(w.vision.patchEmbedding),
        positionEmbedding: copy(w.vision.positionEmbedding),
        preLnW: copy(w.vision.preLnW),
        preLnB: copy(w.vision.preLnB),
        layers: v.layers,
        postLnW: copy(w.vision.postLnW),
        postLnB: copy(w.vision.postLnB),
        projection: copy(w.vision.projection),
      },
      logitScale: copy(w.logitScale),
    },
  };
}

// TowerMasks for pruning: all-ones masks, masks with one module (or a set of modules) zeroed, and masks that
// express a prune plan on the dense model. Dims: L layers, NH_l heads, F_l FFN neurons of layer l.
import type { TowerConfig, TowerMasks } from '../model/types.ts';
import { ffnGroupRange, type ModuleRef } from './modules.ts';

/** Masks of every head, neuron and layer of a tower set to 1. */
export function onesMasks(cfg: TowerConfig): Required<TowerMasks> {
  const L = cfg.heads.length;
  return {
    heads: cfg.heads.map((nh) => new Float32Array(nh).fill(1)),
    ffn: cfg.ffn.map((f) => new Float32Array(f).fill(1)),
    layers: new Float32Array(L).fill(1),
  };
}

/** Zeroes one module in masks (in place). */
export function applyModule(masks: Required<TowerMasks>, cfg: TowerConfig, m: ModuleRef, ffnGroupSize: number): void {
  const L = cfg.heads.length;
  if (m.layer < 0 || m.layer >= L)
    throw new RangeError(`module ${m.kind} in layer ${m.layer}: the ${m.tower} tower has ${L} layers`);
  if (m.kind === 'head') {
    if (m.index < 0 || m.index >= cfg.heads[m.layer])
      throw new RangeError(`head ${m.index} of layer ${m.layer}: the layer has ${cfg.heads[m.layer]} heads`);
    masks.heads[m.layer][m.index] = 0;
  } else if (m.kind === 'ffn') {
    const [s, e] = ffnGroupRange(cfg.ffn[m.layer], ffnGroupSize, m.index);
    masks.ffn[m.layer].fill(0, s, e);
  } else {
    masks.layers[m.layer] = 0;
  }
}

/** Masks with exactly the given modules zeroed (all of them in the same tower). */
export function maskModules(cfg: TowerConfig, modules: ModuleRef[], ffnGroupSize: number): Required<TowerMasks> {
  const masks = onesMasks(cfg);
  for (const m of modules) applyModule(masks, cfg, m, ffnGroupSize);
  return masks;
}

/** What to keep in one tower: head indices and neuron indices per (current) layer, and kept layers. */
export interface TowerKeep {
  /** [L][kept head indices, ascending]. */
  heads: number[][];
  /** [L][kept neuron indices, ascending]. */
  ffn: number[][];
  /** Kept layer indices, ascending. */
  layers: number[];
}

/** A plan as masks on the dense model: every head / neuron / layer not kept is 0. */
export function keepMasks(cfg: TowerConfig, keep: TowerKeep): Required<TowerMasks> {
  const L = cfg.heads.length;
  const masks: Required<TowerMasks> = {
    heads: cfg.heads.map((nh) => new Float32Array(nh)),
    ffn: cfg.ffn.map((f) => new Float32Array(f)),
    layers: new Float32Array(L),
  };
  for (let l = 0; l < L; l++) {
    for (const h of keep.heads[l]) masks.heads[l][h] = 1;
    for (const n of keep.ffn[l]) masks.ffn[l][n] = 1;
  }
  for (const l of keep.layers) masks.layers[l] = 1;
  return masks;
}

/** A plan that keeps everything of a tower. */
export function keepAll(cfg: TowerConfig): TowerKeep {
  return {
    heads: cfg.heads.map((nh) => range(nh)),
    ffn: cfg.ffn.map((f) => range(f)),
    layers: range(cfg.heads.length),
  };
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

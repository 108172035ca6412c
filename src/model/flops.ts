// Parameter-free cost model: multiply-accumulate counts of the text and vision towers with per-layer widths.
// FLOPs = 2·MACs. Dims: T tokens, C width, NH_l·HS attention width, F_l FFN width, G patches, E projection.
import type { ClipConfig, TowerConfig } from './types.ts';

/** MACs of the encoder layers at T tokens (linear layers plus the two attention matmuls). */
export function layerMacs(tower: TowerConfig, T: number): number {
  let macs = 0;
  const C = tower.hidden;
  for (let l = 0; l < tower.heads.length; l++) {
    const A = tower.heads[l]! * tower.headDim;
    const F = tower.ffn[l]!;
    macs += T * C * 3 * A; // q, k, v
    macs += 2 * T * T * A; // q·kᵀ and probs·v
    macs += T * A * C; // out_proj
    macs += 2 * T * C * F; // fc1, fc2
  }
  return macs;
}

export function textMacs(config: ClipConfig, T = config.text.maxPositions): number {
  return layerMacs(config.text, T) + config.text.hidden * config.projectionDim;
}

export function imageMacs(config: ClipConfig): number {
  const v = config.vision;
  const g = Math.floor(v.imageSize / v.patchSize);
  const G = g * g;
  return G * v.hidden * v.channels * v.patchSize * v.patchSize + layerMacs(v, G + 1) + v.hidden * config.projectionDim;
}

export const gflops = (macs: number): number => (2 * macs) / 1e9;

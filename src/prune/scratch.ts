// The "same architecture from scratch" baseline: a pruned model whose compressed towers get fresh random weights
// (src/model/init.ts, seeded) while keeping their pruned shape — per-layer heads, FFN widths, layer map. Towers not
// named keep their weights; logit_scale is kept. Dims: as the model's config.
import { initFromConfig } from '../model/init.ts';
import type { ClipModel } from '../model/types.ts';
import type { TowerName } from './modules.ts';

/** A copy of `model` with the weights of `towers` re-initialised (same shapes). */
export function reinitTowers(model: ClipModel, towers: readonly TowerName[], seed: number): ClipModel {
  const fresh = initFromConfig(model.config, seed);
  const w = model.weights;
  return {
    config: structuredClone(model.config),
    weights: {
      text: towers.includes('text') ? fresh.weights.text : structuredClone(w.text),
      vision: towers.includes('vision') ? fresh.weights.vision : structuredClone(w.vision),
      logitScale: Float32Array.from(w.logitScale),
    },
  };
}

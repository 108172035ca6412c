// First-order Taylor importance of modules: gradients of the contrastive loss L_con on each calibration batch of
// image-text pairs (TrainStep, both towers, no masks), then per module Σ|w·∂L_con/∂w| (baselines.ts taylor),
// averaged over the batches. Dims: N calibration pairs split into nb near-equal batches of at most `batch`.
import type { Runtime } from '../engine/runtime.ts';
import { ConfigError } from '../errors.ts';
import { createGrads, zeroGrads } from '../model/grads.ts';
import type { ClipModel } from '../model/types.ts';
import { padTokens } from '../train/data.ts';
import { TrainStep, type TrainBatch } from '../train/step.ts';
import { taylor } from './baselines.ts';
import type { Calibration } from './mope.ts';
import { moduleKey, type ModuleRef } from './modules.ts';

/** The calibration pairs as contrastive batches: nb = ⌈N/batch⌉ batches of near-equal size, in order. */
export function calibrationBatches(model: ClipModel, cal: Calibration, batch: number): TrainBatch[] {
  const r = cal.retrieval;
  if (!r) throw new ConfigError('--metric taylor needs image-text pairs as calibration data (--data SPEC with pairs)');
  if (r.n < 2) throw new ConfigError(`--metric taylor needs at least 2 calibration pairs, found ${r.n}`);
  const S = model.config.vision.imageSize,
    per = 3 * S * S;
  const nb = Math.ceil(r.n / Math.max(2, batch));
  const out: TrainBatch[] = [];
  for (let b = 0; b < nb; b++) {
    const a = Math.floor((b * r.n) / nb),
      e = Math.floor(((b + 1) * r.n) / nb);
    const { ids, attentionMask, T } = padTokens(r.captions.slice(a, e), model.config.text.eosTokenId);
    out.push({ B: e - a, T, ids, attentionMask, pixels: r.pixels.subarray(a * per, e * per) });
  }
  return out;
}

/** Taylor score of each module (by moduleKey): mean over calibration batches of Σ|w·∂L_con/∂w|. */
export function taylorScores(
  rt: Runtime,
  model: ClipModel,
  cal: Calibration,
  mods: ModuleRef[],
  o: { batch?: number; ffnGroupSize: number },
): Map<string, number> {
  const batches = calibrationBatches(model, cal, o.batch ?? 32);
  const grads = createGrads(model.config);
  const step = new TrainStep(rt, { student: model, grads, loss: { wCon: 1, wKd: 0, wEmb: 0, wHid: 0 } });
  const out = new Map<string, number>(mods.map((m) => [moduleKey(m), 0]));
  for (const b of batches) {
    zeroGrads(model.config, grads);
    step.forwardBackward(b);
    for (const m of mods)
      out.set(moduleKey(m), out.get(moduleKey(m))! + taylor(model, grads, m, o.ffnGroupSize) / batches.length);
  }
  return out;
}

// Training forward of each tower: the inference forward (src/model/forward.ts) run with a tape, so that
// src/model/backward.ts can compute gradients. Dims: B batch, T tokens (vision: G+1), C width, E projection dim,
// G patches, K = ch·P·P.
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel, TowerMasks } from './types.ts';
import {
  runLayers,
  textEmbed,
  textHead,
  textPoolIndex,
  visionEmbed,
  visionHead,
  visionTokens,
  type Workspace,
} from './forward.ts';
import { textTape, visionTape, type TextTape, type VisionTape } from './tape.ts';

export interface TrainForwardOptions {
  masks?: TowerMasks;
  /** Scratch buffers for the layer loop (default: the model's shared workspace). */
  workspace?: Workspace;
}

export interface TextTrainForwardOptions extends TrainForwardOptions {
  /** [B,T] 1 = token, 0 = padding. */
  attentionMask?: ArrayLike<number> | null;
}

/**
 * Text tower forward that records a tape: ids [B,T] → tape.head.embeds [B,E] (unnormalised). `prev` is reused
 * when its shapes match (B, T and the model's widths), else a new tape is made; the tape returned holds the result.
 */
export function textForwardTrain(
  rt: Runtime,
  model: ClipModel,
  ids: Int32Array,
  B: number,
  T: number,
  prev?: TextTape,
  opts: TextTrainForwardOptions = {},
): TextTape {
  const cfg = model.config.text;
  const x0 = textEmbed(rt, model, ids, B, T);
  const tape = textTape(prev, cfg, model.config.projectionDim, B, T);
  tape.ids.set(ids);
  tape.poolIdx.set(textPoolIndex(model, ids, B, T));
  tape.masks = opts.masks;
  const x = runLayers(rt, model, 'text', x0, B, T, {
    masks: opts.masks,
    attentionMask: opts.attentionMask,
    inPlace: true,
    tapes: tape.layers,
    workspace: opts.workspace,
  });
  tape.xOut.set(x);
  textHead(rt, model, x, ids, B, T, tape.head);
  return tape;
}

/** Vision tower forward that records a tape: pixels [B,ch,S,S] → tape.head.embeds [B,E] (unnormalised). */
export function visionForwardTrain(
  rt: Runtime,
  model: ClipModel,
  pixels: Float32Array,
  B: number,
  prev?: VisionTape,
  opts: TrainForwardOptions = {},
): VisionTape {
  const v = model.config.vision;
  const T = visionTokens(model),
    G = T - 1,
    K = v.channels * v.patchSize * v.patchSize;
  const tape = visionTape(prev, v, model.config.projectionDim, B, G, K);
  tape.masks = opts.masks;
  const x = visionEmbed(rt, model, pixels, B, tape, tape.xOut);
  runLayers(rt, model, 'vision', x, B, T, {
    masks: opts.masks,
    inPlace: true,
    tapes: tape.layers,
    workspace: opts.workspace,
  });
  visionHead(rt, model, x, B, tape.head);
  return tape;
}

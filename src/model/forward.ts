// CLIP forward pass for both towers, split into embed → runLayers → head so callers can cache the residual
// stream entering any layer. Dims: B batch, T tokens (text: ≤ maxPositions; vision: G+1), C width,
// E projection dim, G patches, ch·P·P patch length; every tensor is a row-major Float32Array.
import { DataError, ShapeError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel, TowerConfig, TowerMasks, LayerWeights } from './types.ts';
import { layerForward } from './layer.ts';
import type { HeadTape, LayerTape } from './tape.ts';
import { sharedWorkspace, Workspace, type Tower } from './workspace.ts';

export { Workspace, type Tower } from './workspace.ts';

export interface RunLayersOptions {
  /** First layer to run (default 0). */
  from?: number;
  /** One past the last layer to run (default L). */
  to?: number;
  masks?: TowerMasks;
  /** Text only: [B,T] 1 = real token, 0 = padding (never attended to). */
  attentionMask?: ArrayLike<number> | null;
  /** Called after layer l with the live residual stream [B,T,C]; copy it to keep it. */
  onLayer?: (l: number, x: Float32Array) => void;
  /** Overwrite x instead of working on a copy (default false). */
  inPlace?: boolean;
  /** Scratch buffers to use instead of the model's shared one (needed to run forwards re-entrantly). */
  workspace?: Workspace;
  /** Training: one tape per layer of the tower (index l), filled with what the backward needs. */
  tapes?: LayerTape[];
}

export interface ForwardOptions {
  masks?: TowerMasks;
  /** Also return the residual stream entering layer 0 and after each layer: L+1 arrays [B,T,C]. */
  returnHidden?: boolean;
}

export interface TextForwardOptions extends ForwardOptions {
  attentionMask?: ArrayLike<number> | null;
}

export interface TowerOutput {
  /** [B,E], unnormalised (= HF get_text_features / get_image_features). */
  embeds: Float32Array;
  /** L+1 residual streams [B,T,C] (HF hidden_states: hidden[0] = embeddings (+ pre-LN for vision)). */
  hidden?: Float32Array[];
}

function towerOf(model: ClipModel, tower: Tower): { cfg: TowerConfig; layers: LayerWeights[] } {
  return tower === 'text'
    ? { cfg: model.config.text, layers: model.weights.text.layers }
    : { cfg: model.config.vision, layers: model.weights.vision.layers };
}

/** Token ids [B,T] → residual stream entering layer 0 [B,T,C] = token embedding + position embedding. */
export function textEmbed(rt: Runtime, model: ClipModel, ids: Int32Array, B: number, T: number): Float32Array {
  void rt;
  const cfg = model.config.text;
  checkTextIds(model, ids, B, T);
  const C = cfg.hidden;
  const tok = model.weights.text.tokenEmbedding,
    pos = model.weights.text.positionEmbedding;
  const x = new Float32Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const id = ids[b * T + t];
      const o = (b * T + t) * C,
        to = id * C,
        po = t * C;
      for (let c = 0; c < C; c++) x[o + c] = tok[to + c] + pos[po + c];
    }
  }
  return x;
}

function checkTextIds(model: ClipModel, ids: Int32Array, B: number, T: number): void {
  const cfg = model.config.text;
  if (!Number.isInteger(B) || !Number.isInteger(T) || B < 1 || T < 1) {
    throw new ShapeError(`text forward: B and T must be positive integers, got B=${B}, T=${T}`);
  }
  if (T > cfg.maxPositions) {
    throw new ShapeError(
      `text forward: sequence length T=${T} exceeds the model's ${cfg.maxPositions} positions; truncate the token ids`,
    );
  }
  if (ids.length !== B * T) {
    throw new ShapeError(`text forward: ids has ${ids.length} elements, expected B·T = ${B}·${T} = ${B * T}`);
  }
  const V = cfg.vocabSize;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= V) {
      throw new DataError(
        `text forward: token id ${id} at row ${Math.floor(i / T)}, position ${i % T} is outside the vocabulary [0, ${V}); ` +
          "the ids must come from this model's tokenizer",
      );
    }
  }
}

/** Side length checks and patch count G for a vision config. */
function visionGeometry(model: ClipModel): { S: number; P: number; ch: number; g: number; G: number } {
  const v = model.config.vision;
  const S = v.imageSize,
    P = v.patchSize,
    ch = v.channels;
  if (S % P !== 0) throw new ShapeError(`vision forward: image size ${S} is not a multiple of patch size ${P}`);
  const g = S / P;
  return { S, P, ch, g, G: g * g };
}

/** Number of vision tokens T = G + 1 (patches plus the class token). */
export function visionTokens(model: ClipModel): number {
  return visionGeometry(model).G + 1;
}

/**
 * Pixels [B,ch,S,S] → residual stream entering layer 0 [B,G+1,C]:
 * pre_LN([class; patches·Wpatchᵀ] + position embedding).
 */
export function visionEmbed(
  rt: Runtime,
  model: ClipModel,
  pixels: Float32Array,
  B: number,
  save?: VisionEmbedTape,
  out?: Float32Array,
): Float32Array {
  const k = rt.kernels;
  const cfg = model.config.vision,
    w = model.weights.vision;
  const { S, P, ch, G } = visionGeometry(model);
  if (!Number.isInteger(B) || B < 1) throw new ShapeError(`vision forward: B must be a positive integer, got ${B}`);
  if (pixels.length !== B * ch * S * S) {
    throw new ShapeError(
      `vision forward: pixels has ${pixels.length} elements, expected B·ch·S·S = ${B}·${ch}·${S}·${S} = ${B * ch * S * S}`,
    );
  }
  const C = cfg.hidden,
    K = ch * P * P,
    T = G + 1;
  const patches = save ? save.patches : new Float32Array(B * G * K);
  k.im2patch(patches, pixels, B, ch, S, S, P);
  const pe = new Float32Array(B * G * C);
  k.linear(pe, patches, w.patchEmbedding, null, B * G, K, C);
  const x = save ? save.xPre : new Float32Array(B * T * C);
  const cls = w.classEmbedding,
    pos = w.positionEmbedding;
  for (let b = 0; b < B; b++) {
    const xo = b * T * C;
    for (let c = 0; c < C; c++) x[xo + c] = cls[c] + pos[c];
    for (let p = 0; p < G; p++) {
      const o = xo + (p + 1) * C,
        po = (p + 1) * C,
        so = (b * G + p) * C;
      for (let c = 0; c < C; c++) x[o + c] = pe[so + c] + pos[po + c];
    }
  }
  const y = out ?? new Float32Array(B * T * C);
  k.layernorm(y, save ? save.preMean : null, save ? save.preRstd : null, x, w.preLnW, w.preLnB, B * T, C, cfg.eps);
  return y;
}

/** Buffers visionEmbed fills for the backward (training); see VisionTape. */
export interface VisionEmbedTape {
  patches: Float32Array; // [B·G,K]
  xPre: Float32Array; // [B·T,C]
  preMean: Float32Array; // [B·T]
  preRstd: Float32Array; // [B·T]
}

function checkMasks(tower: Tower, cfg: TowerConfig, masks: TowerMasks | undefined): void {
  if (masks === undefined) return;
  const L = cfg.heads.length;
  if (masks.layers !== undefined && masks.layers.length !== L) {
    throw new ShapeError(`${tower} masks.layers has ${masks.layers.length} entries, expected ${L} (one per layer)`);
  }
  if (masks.heads !== undefined) {
    if (masks.heads.length !== L)
      throw new ShapeError(`${tower} masks.heads has ${masks.heads.length} layers, expected ${L}`);
    masks.heads.forEach((h, l) => {
      if (h.length !== cfg.heads[l]) {
        throw new ShapeError(
          `${tower} masks.heads[${l}] has ${h.length} entries, expected ${cfg.heads[l]} (heads of layer ${l})`,
        );
      }
    });
  }
  if (masks.ffn !== undefined) {
    if (masks.ffn.length !== L)
      throw new ShapeError(`${tower} masks.ffn has ${masks.ffn.length} layers, expected ${L}`);
    masks.ffn.forEach((f, l) => {
      if (f.length !== cfg.ffn[l]) {
        throw new ShapeError(
          `${tower} masks.ffn[${l}] has ${f.length} entries, expected ${cfg.ffn[l]} (FFN width of layer ${l})`,
        );
      }
    });
  }
}

/**
 * Runs layers [from, to) of a tower on the residual stream x [B,T,C] and returns the stream after layer to−1.
 * x is left untouched unless opts.inPlace. Text layers are causal; vision layers have no mask.
 */
export function runLayers(
  rt: Runtime,
  model: ClipModel,
  tower: Tower,
  x: Float32Array,
  B: number,
  T: number,
  opts: RunLayersOptions = {},
): Float32Array {
  const { cfg, layers } = towerOf(model, tower);
  const L = layers.length;
  const from = opts.from ?? 0,
    to = opts.to ?? L;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > L || from > to) {
    throw new ShapeError(`${tower} runLayers: need 0 ≤ from ≤ to ≤ ${L}, got from=${from}, to=${to}`);
  }
  const C = cfg.hidden,
    N = B * T;
  if (x.length !== N * C) {
    throw new ShapeError(`${tower} runLayers: x has ${x.length} elements, expected B·T·C = ${B}·${T}·${C} = ${N * C}`);
  }
  checkMasks(tower, cfg, opts.masks);
  const ws = opts.workspace ?? sharedWorkspace(model, tower);
  ws.ensure(cfg, N);

  let keyMask: Float32Array | null = null;
  const am = opts.attentionMask;
  if (am !== undefined && am !== null) {
    if (tower !== 'text') throw new ShapeError('vision runLayers: attentionMask is only meaningful for the text tower');
    if (am.length !== N) throw new ShapeError(`text attentionMask has ${am.length} elements, expected B·T = ${N}`);
    keyMask = ws.view(ws.keyMask, N);
    let allOnes = true;
    for (let i = 0; i < N; i++) {
      const v = am[i];
      if (v !== 0 && v !== 1) {
        throw new DataError(
          `text attentionMask must hold 1 (token) or 0 (padding); found ${v} at row ${Math.floor(i / T)}, position ${i % T}`,
        );
      }
      keyMask[i] = v;
      if (v === 0) allOnes = false;
    }
    if (allOnes) keyMask = null;
  }

  const out = opts.inPlace ? x : x.slice();
  const m = opts.masks;
  const causal = tower === 'text';
  const tapes = opts.tapes;
  for (let l = from; l < to; l++) {
    const tape = tapes?.[l];
    tape?.xIn.set(out);
    layerForward(
      rt.kernels,
      cfg,
      layers[l],
      l,
      out,
      ws,
      B,
      T,
      causal,
      keyMask,
      {
        heads: m?.heads?.[l] ?? null,
        ffn: m?.ffn?.[l] ?? null,
        scale: m?.layers !== undefined ? m.layers[l] : 1,
      },
      tape,
    );
    opts.onLayer?.(l, out);
  }
  return out;
}

/**
 * Pooling position of each row: first position holding eosTokenId, or the argmax of the ids (first maximum)
 * when config.text.legacyArgmaxPooling. A row without EOS pools at position 0, as HF (and its ONNX export) does.
 */
export function textPoolIndex(model: ClipModel, ids: Int32Array, B: number, T: number): Int32Array {
  const cfg = model.config.text;
  const idx = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const o = b * T;
    let p = -1;
    if (cfg.legacyArgmaxPooling) {
      p = 0;
      for (let t = 1; t < T; t++) if (ids[o + t] > ids[o + p]) p = t;
    } else {
      for (let t = 0; t < T; t++)
        if (ids[o + t] === cfg.eosTokenId) {
          p = t;
          break;
        }
      if (p < 0) p = 0;
    }
    idx[b] = p;
  }
  return idx;
}

/** Final LN on every position of the text stream [B,T,C] → HF text last_hidden_state [B,T,C]. */
export function textLastHidden(rt: Runtime, model: ClipModel, x: Float32Array, B: number, T: number): Float32Array {
  const cfg = model.config.text,
    w = model.weights.text;
  const out = new Float32Array(B * T * cfg.hidden);
  rt.kernels.layernorm(out, null, null, x, w.finalLnW, w.finalLnB, B * T, cfg.hidden, cfg.eps);
  return out;
}

/**
 * Text head: final LN (per row, so applied only to the pooled rows) → pool → projection. x [B,T,C] → [B,E].
 */
export function textHead(
  rt: Runtime,
  model: ClipModel,
  x: Float32Array,
  ids: Int32Array,
  B: number,
  T: number,
  save?: HeadTape,
): Float32Array {
  const cfg = model.config.text,
    w = model.weights.text,
    C = cfg.hidden,
    E = model.config.projectionDim;
  if (x.length !== B * T * C)
    throw new ShapeError(`textHead: x has ${x.length} elements, expected B·T·C = ${B * T * C}`);
  if (ids.length !== B * T) throw new ShapeError(`textHead: ids has ${ids.length} elements, expected B·T = ${B * T}`);
  const idx = textPoolIndex(model, ids, B, T);
  const rows = save ? save.rows : new Float32Array(B * C);
  for (let b = 0; b < B; b++) rows.set(x.subarray((b * T + idx[b]) * C, (b * T + idx[b] + 1) * C), b * C);
  const pooled = save ? save.pooled : new Float32Array(B * C);
  rt.kernels.layernorm(
    pooled,
    save ? save.mean : null,
    save ? save.rstd : null,
    rows,
    w.finalLnW,
    w.finalLnB,
    B,
    C,
    cfg.eps,
  );
  const embeds = save ? save.embeds : new Float32Array(B * E);
  rt.kernels.linear(embeds, pooled, w.projection, null, B, C, E);
  return embeds;
}

/** Vision head: post-LN on the class token → projection. x [B,G+1,C] → [B,E]. */
export function visionHead(rt: Runtime, model: ClipModel, x: Float32Array, B: number, save?: HeadTape): Float32Array {
  const cfg = model.config.vision,
    w = model.weights.vision,
    C = cfg.hidden,
    E = model.config.projectionDim;
  const T = visionTokens(model);
  if (x.length !== B * T * C)
    throw new ShapeError(`visionHead: x has ${x.length} elements, expected B·T·C = ${B * T * C}`);
  const cls = save ? save.rows : new Float32Array(B * C);
  for (let b = 0; b < B; b++) cls.set(x.subarray(b * T * C, b * T * C + C), b * C);
  const pooled = save ? save.pooled : new Float32Array(B * C);
  rt.kernels.layernorm(
    pooled,
    save ? save.mean : null,
    save ? save.rstd : null,
    cls,
    w.postLnW,
    w.postLnB,
    B,
    C,
    cfg.eps,
  );
  const embeds = save ? save.embeds : new Float32Array(B * E);
  rt.kernels.linear(embeds, pooled, w.projection, null, B, C, E);
  return embeds;
}

/** Whole text tower: ids [B,T] → embeds [B,E] (unnormalised), optionally the L+1 residual streams. */
export function textForward(
  rt: Runtime,
  model: ClipModel,
  ids: Int32Array,
  B: number,
  T: number,
  opts: TextForwardOptions = {},
): TowerOutput {
  const x0 = textEmbed(rt, model, ids, B, T);
  const hidden = opts.returnHidden ? [x0.slice()] : undefined;
  const x = runLayers(rt, model, 'text', x0, B, T, {
    masks: opts.masks,
    attentionMask: opts.attentionMask,
    inPlace: true,
    onLayer: hidden ? (_l, s) => hidden.push(s.slice()) : undefined,
  });
  return { embeds: textHead(rt, model, x, ids, B, T), hidden };
}

/** Whole vision tower: pixels [B,ch,S,S] → embeds [B,E] (unnormalised), optionally the L+1 residual streams. */
export function visionForward(
  rt: Runtime,
  model: ClipModel,
  pixels: Float32Array,
  B: number,
  opts: ForwardOptions = {},
): TowerOutput {
  const T = visionTokens(model);
  const x0 = visionEmbed(rt, model, pixels, B);
  const hidden = opts.returnHidden ? [x0.slice()] : undefined;
  const x = runLayers(rt, model, 'vision', x0, B, T, {
    masks: opts.masks,
    inPlace: true,
    onLayer: hidden ? (_l, s) => hidden.push(s.slice()) : undefined,
  });
  return { embeds: visionHead(rt, model, x, B), hidden };
}

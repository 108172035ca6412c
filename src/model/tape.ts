// Saved activations of a training forward ("tape"), read by src/model/backward.ts. Buffers are sized for one
// (B,T) and reused by later steps of the same shape. Dims: B batch, T tokens, N = B·T rows, C width,
// NH_l heads, HS head size, D_l = NH_l·HS, F_l FFN width, E projection dim, G patches, K = ch·P·P.
import type { TowerConfig, TowerMasks } from './types.ts';

/** What one layer's backward needs from its forward. */
export interface LayerTape {
  /** Residual stream entering the layer [N,C] (saved even for a skipped layer: it is the hidden state before it). */
  xIn: Float32Array;
  ln1: Float32Array; // [N,C] LN1 output
  mean1: Float32Array; // [N]
  rstd1: Float32Array; // [N]
  qkv: Float32Array; // [N,3·D]
  probs: Float32Array; // [B,NH,T,T] softmax before the head mask
  att: Float32Array; // [N,D] attention output after the head mask
  xMid: Float32Array; // [N,C] stream after the attention branch (LN2 input)
  ln2: Float32Array; // [N,C]
  mean2: Float32Array; // [N]
  rstd2: Float32Array; // [N]
  pre: Float32Array; // [N,F] fc1 output before the activation (the activation is recomputed in backward)
}

/** Pooling head tape: final LN (text) / post-LN (vision) on one row per item, then projection. */
export interface HeadTape {
  rows: Float32Array; // [B,C] pooled stream rows (LN input)
  mean: Float32Array; // [B]
  rstd: Float32Array; // [B]
  pooled: Float32Array; // [B,C] LN output (projection input)
  embeds: Float32Array; // [B,E] unnormalised embeddings
}

interface TapeBase {
  B: number;
  T: number;
  layers: LayerTape[];
  /** Residual stream after the last layer [N,C]. */
  xOut: Float32Array;
  head: HeadTape;
  /** Masks the forward used (the backward applies the same ones). */
  masks: TowerMasks | undefined;
}

export interface TextTape extends TapeBase {
  tower: 'text';
  ids: Int32Array; // [B,T]
  /** Pooling position of each row (its first EOS) [B]. */
  poolIdx: Int32Array;
}

export interface VisionTape extends TapeBase {
  tower: 'vision';
  patches: Float32Array; // [B·G,K] im2patch output (patch-embedding input)
  xPre: Float32Array; // [N,C] class|patches + positions, before pre-LN
  preMean: Float32Array; // [N]
  preRstd: Float32Array; // [N]
}

export type TowerTape = TextTape | VisionTape;

const f32 = (n: number) => new Float32Array(n);

function layerTape(cfg: TowerConfig, l: number, B: number, T: number): LayerTape {
  const N = B * T,
    C = cfg.hidden,
    NH = cfg.heads[l]!,
    D = NH * cfg.headDim,
    F = cfg.ffn[l]!;
  return {
    xIn: f32(N * C),
    ln1: f32(N * C),
    mean1: f32(N),
    rstd1: f32(N),
    qkv: f32(N * 3 * D),
    probs: f32(B * NH * T * T),
    att: f32(N * D),
    xMid: f32(N * C),
    ln2: f32(N * C),
    mean2: f32(N),
    rstd2: f32(N),
    pre: f32(N * F),
  };
}

function headTape(B: number, C: number, E: number): HeadTape {
  return { rows: f32(B * C), mean: f32(B), rstd: f32(B), pooled: f32(B * C), embeds: f32(B * E) };
}

function fits(t: TapeBase | undefined, cfg: TowerConfig, B: number, T: number): boolean {
  return (
    t !== undefined &&
    t.B === B &&
    t.T === T &&
    t.layers.length === cfg.heads.length &&
    t.layers.every(
      (lt, l) => lt.pre.length === B * T * cfg.ffn[l]! && lt.att.length === B * T * cfg.heads[l]! * cfg.headDim,
    )
  );
}

/** A text tape for (B,T): `prev` when it already has these shapes, else a new one. */
export function textTape(prev: TextTape | undefined, cfg: TowerConfig, E: number, B: number, T: number): TextTape {
  if (prev !== undefined && fits(prev, cfg, B, T)) return prev;
  const N = B * T,
    C = cfg.hidden;
  return {
    tower: 'text',
    B,
    T,
    layers: cfg.heads.map((_, l) => layerTape(cfg, l, B, T)),
    xOut: f32(N * C),
    head: headTape(B, C, E),
    masks: undefined,
    ids: new Int32Array(N),
    poolIdx: new Int32Array(B),
  };
}

/** A vision tape for B images of G patches of K values each (T = G+1). */
export function visionTape(
  prev: VisionTape | undefined,
  cfg: TowerConfig,
  E: number,
  B: number,
  G: number,
  K: number,
): VisionTape {
  const T = G + 1;
  if (prev !== undefined && fits(prev, cfg, B, T) && prev.patches.length === B * G * K) return prev;
  const N = B * T,
    C = cfg.hidden;
  return {
    tower: 'vision',
    B,
    T,
    layers: cfg.heads.map((_, l) => layerTape(cfg, l, B, T)),
    xOut: f32(N * C),
    head: headTape(B, C, E),
    masks: undefined,
    patches: f32(B * G * K),
    xPre: f32(N * C),
    preMean: f32(N),
    preRstd: f32(N),
  };
}

/** Residual stream after layer j [B,T,C] (a view into the tape; HF hidden_states[j+1]). */
export function tapeHidden(t: TowerTape, j: number): Float32Array {
  return j + 1 < t.layers.length ? t.layers[j + 1]!.xIn : t.xOut;
}

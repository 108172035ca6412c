// MoPE fast path for the modules of one tower. Exact (the same kernels on the same inputs as the masked forward):
// - the stream entering layer l is kept per chunk and advanced once per layer by an unmasked forward that also
//   captures the layer's attention output (before out_proj), its mid stream and its FFN pre-activation;
// - a masked head of layer l reruns only out_proj (its columns of the captured attention output zeroed) and the
//   FFN half; a masked FFN group of G neurons subtracts its own contribution from the captured layer output,
//   x_out − act(pre[:, group])·fc2[:, group]ᵀ (an [R,G]×[G,C] product instead of the whole activation and fc2;
//   equal to rerunning fc2 with the group masked up to float32 rounding of the sum); a masked layer reruns nothing;
// - layers l+1…L−2 run on up to `variants` masked copies stacked into one batch;
// - the last layer computes q/k/v and attention for every token but out_proj and the FFN only for the pooled token
//   (class token; text: first EOS), the only row the head reads. A module of the last layer works on pooled rows only.
// Dims: B batch, T tokens, N = B·T rows, C width, NH_l heads, HS head size, D_l = NH_l·HS, F_l FFN width, E proj dim.
import type { Kernels } from '../engine/kernels.ts';
import type { Runtime } from '../engine/runtime.ts';
import { actKind } from '../model/layer.ts';
import { runLayers, textPoolIndex } from '../model/forward.ts';
import { sharedWorkspace, type Workspace } from '../model/workspace.ts';
import type { ClipModel, LayerWeights, TowerConfig } from '../model/types.ts';
import { ffnGroupRange, towerConfig, type ModuleRef, type TowerName } from './modules.ts';

/** One batch of a tower's input set (see mope.ts): rows = item indices, attn = text padding mask or null. */
export interface FastChunk {
  rows: number[];
  B: number;
  T: number;
  ids?: Int32Array;
  attn?: Float32Array | null;
}

export interface FastCost {
  layer_forwards: number;
}

/** What a masked variant of layer l needs from the unmasked forward of that layer, for R rows. */
interface Capture {
  R: number;
  xIn: Float32Array; // [R,C]
  att: Float32Array | null; // [R,D] attention output before out_proj (null when the layer has no heads)
  xMid: Float32Array; // [R,C] stream after the attention branch
  pre: Float32Array | null; // [R,F] fc1 output before the activation (null when the layer has no FFN)
  xOut: Float32Array; // [R,C] the unmasked layer output
}

interface Layer {
  k: Kernels;
  cfg: TowerConfig;
  lw: LayerWeights;
  l: number;
  D: number;
  F: number;
  ws: Workspace;
}

function layerOf(rt: Runtime, model: ClipModel, tower: TowerName, l: number, N: number): Layer {
  const cfg = towerConfig(model, tower);
  const lw = (tower === 'text' ? model.weights.text : model.weights.vision).layers[l];
  const ws = sharedWorkspace(model, tower);
  ws.ensure(cfg, N);
  return { k: rt.kernels, cfg, lw, l, D: cfg.heads[l]! * cfg.headDim, F: cfg.ffn[l]!, ws };
}

function addRowBias(x: Float32Array, bias: Float32Array, N: number, C: number): void {
  for (let n = 0, o = 0; n < N; n++, o += C) for (let c = 0; c < C; c++) x[o + c] += bias[c];
}

/** LN1 → qkv → attention for all B·T rows of x (unchanged); returns the attention output (a workspace view). */
function attentionCore(
  L: Layer,
  x: Float32Array,
  B: number,
  T: number,
  causal: boolean,
  keyMask: Float32Array | null,
): Float32Array {
  const { k, cfg, lw, D, ws } = L;
  const N = B * T,
    C = cfg.hidden;
  const ln = ws.view(ws.ln, N * C),
    qkv = ws.view(ws.qkv, N * 3 * D),
    att = ws.view(ws.att, N * D);
  k.layernorm(ln, null, null, x, lw.ln1W, lw.ln1B, N, C, cfg.eps);
  k.linear(qkv, ln, lw.qkvW, lw.qkvB, N, C, 3 * D);
  k.attention(att, null, qkv, keyMask, null, B, T, L.cfg.heads[L.l]!, cfg.headDim, causal);
  return att;
}

/** out [R,C] = xIn + out_proj(att) (att may have masked columns); a layer without heads adds the bias only. */
function attentionOut(L: Layer, out: Float32Array, xIn: Float32Array, att: Float32Array | null, R: number): void {
  const C = L.cfg.hidden;
  if (L.D > 0 && att) {
    const branch = L.ws.view(L.ws.branch, R * C);
    L.k.linear(branch, att, L.lw.outW, L.lw.outB, R, L.D, C);
    L.k.residualAdd(out, xIn, branch, 1, R * C);
  } else {
    out.set(xIn);
    addRowBias(out, L.lw.outB, R, C);
  }
}

/** LN2 → fc1 of x [R,C] into pre [R,F]. */
function ffnPre(L: Layer, pre: Float32Array, x: Float32Array, R: number): void {
  const C = L.cfg.hidden;
  const ln = L.ws.view(L.ws.ln, R * C);
  L.k.layernorm(ln, null, null, x, L.lw.ln2W, L.lw.ln2B, R, C, L.cfg.eps);
  L.k.linear(pre, ln, L.lw.fc1W, L.lw.fc1B, R, C, L.F);
}

/** out [R,C] = xMid + fc2(act(pre)·mask); a layer without FFN adds the fc2 bias only. */
function ffnOut(
  L: Layer,
  out: Float32Array,
  xMid: Float32Array,
  pre: Float32Array | null,
  mask: Float32Array | null,
  R: number,
): void {
  const C = L.cfg.hidden;
  if (L.F > 0 && pre) {
    const fc = L.ws.view(L.ws.fc, R * L.F),
      branch = L.ws.view(L.ws.branch, R * C);
    L.k.activation(fc, pre, mask, R, L.F, actKind(L.cfg));
    L.k.linear(branch, fc, L.lw.fc2W, L.lw.fc2B, R, L.F, C);
    L.k.residualAdd(out, xMid, branch, 1, R * C);
  } else {
    out.set(xMid);
    addRowBias(out, L.lw.fc2B, R, C);
  }
}

/** Full FFN half on x [R,C] (in place) with an FFN mask. */
function ffnHalf(L: Layer, x: Float32Array, mask: Float32Array | null, R: number): void {
  if (L.F > 0) {
    const pre = L.ws.view(L.ws.fc, R * L.F);
    ffnPre(L, pre, x, R);
    const C = L.cfg.hidden,
      fc = pre,
      branch = L.ws.view(L.ws.branch, R * C);
    L.k.activation(fc, pre, mask, R, L.F, actKind(L.cfg));
    L.k.linear(branch, fc, L.lw.fc2W, L.lw.fc2B, R, L.F, C);
    L.k.residualAdd(x, x, branch, 1, R * C);
  } else {
    addRowBias(x, L.lw.fc2B, R, L.cfg.hidden);
  }
}

/** Unmasked layer on x [B·T,C] in place, capturing what the masked variants reuse. */
function captureLayer(
  L: Layer,
  x: Float32Array,
  B: number,
  T: number,
  causal: boolean,
  keyMask: Float32Array | null,
): Capture {
  const R = B * T;
  const xIn = x.slice();
  const att = L.D > 0 ? attentionCore(L, x, B, T, causal, keyMask).slice() : null;
  attentionOut(L, x, xIn, att, R);
  const xMid = x.slice();
  const pre = L.F > 0 ? new Float32Array(R * L.F) : null;
  if (pre) ffnPre(L, pre, x, R);
  ffnOut(L, x, xMid, pre, null, R);
  return { R, xIn, att, xMid, pre, xOut: x.slice() };
}

/** Copies rows idx of a [.,W] array. */
function gather(a: Float32Array, idx: ArrayLike<number>, W: number): Float32Array {
  const out = new Float32Array(idx.length * W);
  for (let i = 0; i < idx.length; i++) out.set(a.subarray(idx[i] * W, (idx[i] + 1) * W), i * W);
  return out;
}

function gatherCapture(L: Layer, c: Capture, idx: ArrayLike<number>): Capture {
  const C = L.cfg.hidden;
  return {
    R: idx.length,
    xIn: gather(c.xIn, idx, C),
    att: c.att && gather(c.att, idx, L.D),
    xMid: gather(c.xMid, idx, C),
    pre: c.pre && gather(c.pre, idx, L.F),
    xOut: gather(c.xOut, idx, C),
  };
}

/** Layer output [R,C] with one module of this layer masked, from the capture. */
function maskedOutput(L: Layer, cap: Capture, m: ModuleRef, ffnGroupSize: number): Float32Array {
  const C = L.cfg.hidden,
    R = cap.R,
    out = new Float32Array(R * C);
  if (m.kind === 'layer') {
    out.set(cap.xIn);
  } else if (m.kind === 'ffn') {
    ffnGroupRemoved(L, out, cap, ffnGroupRange(L.F, ffnGroupSize, m.index));
  } else {
    const att = cap.att!.slice(),
      HS = L.cfg.headDim;
    for (let r = 0; r < R; r++) att.fill(0, r * L.D + m.index * HS, r * L.D + (m.index + 1) * HS);
    attentionOut(L, out, cap.xIn, att, R);
    ffnHalf(L, out, null, R);
  }
  return out;
}

/** out [R,C] = xOut − act(pre[:, s:e])·fc2W[:, s:e]ᵀ: the layer output without FFN neurons s…e−1. */
function ffnGroupRemoved(L: Layer, out: Float32Array, cap: Capture, [s, e]: [number, number]): void {
  const C = L.cfg.hidden,
    R = cap.R,
    F = L.F,
    G = e - s;
  const a = new Float32Array(R * G),
    w = new Float32Array(C * G),
    branch = new Float32Array(R * C);
  for (let r = 0; r < R; r++) a.set(cap.pre!.subarray(r * F + s, r * F + e), r * G);
  L.k.activation(a, a, null, R, G, actKind(L.cfg));
  for (let c = 0; c < C; c++) w.set(L.lw.fc2W.subarray(c * F + s, c * F + e), c * G);
  L.k.linear(branch, a, w, null, R, G, C);
  L.k.residualAdd(out, cap.xOut, branch, -1, R * C);
}

/** Row index (within [B·T]) of each item's pooled token: class token (vision) or first EOS (text). */
function pooledRows(model: ClipModel, tower: TowerName, c: FastChunk): Int32Array {
  const idx = tower === 'text' ? textPoolIndex(model, c.ids!, c.B, c.T) : new Int32Array(c.B);
  for (let b = 0; b < c.B; b++) idx[b] += b * c.T;
  return idx;
}

/** Last layer on x [B·T,C] computing only the pooled rows → [B,C] (q/k/v and attention still see every token). */
function lastLayerPooled(
  L: Layer,
  x: Float32Array,
  B: number,
  T: number,
  pool: Int32Array,
  causal: boolean,
  keyMask: Float32Array | null,
): Float32Array {
  const C = L.cfg.hidden;
  const att = L.D > 0 ? gather(attentionCore(L, x, B, T, causal, keyMask), pool, L.D) : null;
  const xIn = gather(x, pool, C);
  const out = new Float32Array(B * C);
  attentionOut(L, out, xIn, att, B);
  ffnHalf(L, out, null, B);
  return out;
}

/** Head on pooled rows [B,C] (post-LN / final LN, projection) → [B,E]; the same kernels visionHead / textHead run. */
function pooledHead(rt: Runtime, model: ClipModel, tower: TowerName, rows: Float32Array, B: number): Float32Array {
  const cfg = towerConfig(model, tower),
    C = cfg.hidden,
    E = model.config.projectionDim;
  const w =
    tower === 'text'
      ? { lnW: model.weights.text.finalLnW, lnB: model.weights.text.finalLnB, proj: model.weights.text.projection }
      : { lnW: model.weights.vision.postLnW, lnB: model.weights.vision.postLnB, proj: model.weights.vision.projection };
  const pooled = new Float32Array(B * C),
    embeds = new Float32Array(B * E);
  rt.kernels.layernorm(pooled, null, null, rows, w.lnW, w.lnB, B, C, cfg.eps);
  rt.kernels.linear(embeds, pooled, w.proj, null, B, C, E);
  return embeds;
}

function tile<A extends Float32Array | Int32Array>(a: A, reps: number): A {
  if (reps === 1) return a;
  const out = new (a.constructor as { new (n: number): A })(a.length * reps);
  for (let r = 0; r < reps; r++) out.set(a, r * a.length);
  return out;
}

function keyMaskOf(c: FastChunk, reps = 1): Float32Array | null {
  return c.attn ? tile(c.attn, reps) : null;
}

/**
 * Scores one tower's modules (sorted by layer) on the fast path. `state[i]` = stream of chunk i entering layer 0;
 * done(m, embeds [N,E] in item order) is called once per module, in order.
 */
export function scoreTowerFast(
  rt: Runtime,
  model: ClipModel,
  tower: TowerName,
  N: number,
  chunks: FastChunk[],
  state: Float32Array[],
  mods: ModuleRef[],
  ffnGroupSize: number,
  variants: number,
  cost: FastCost,
  done: (m: ModuleRef, embeds: Float32Array) => void,
): void {
  const cfg = towerConfig(model, tower),
    Lc = cfg.heads.length,
    C = cfg.hidden,
    E = model.config.projectionDim;
  const causal = tower === 'text';
  const pools = chunks.map((c) => pooledRows(model, tower, c));
  const maxRows = Math.max(...chunks.map((c) => c.B * c.T)) * variants;
  let l = 0,
    next = 0,
    captured = false;
  while (next < mods.length) {
    const layer = mods[next].layer;
    // Counted as the masked path would: a capture is the forward that advances the state past its layer.
    if (captured) cost.layer_forwards += 1;
    for (; l < layer; l++) {
      chunks.forEach((c, i) =>
        runLayers(rt, model, tower, state[i], c.B, c.T, { from: l, to: l + 1, attentionMask: c.attn, inPlace: true }),
      );
      cost.layer_forwards += 1;
    }
    let end = next;
    while (end < mods.length && mods[end].layer === layer) end++;
    const last = layer === Lc - 1;
    const L = layerOf(rt, model, tower, layer, maxRows);
    const caps = chunks.map((c, i) => {
      const cap = captureLayer(L, state[i], c.B, c.T, causal, keyMaskOf(c));
      return last ? gatherCapture(L, cap, pools[i]) : cap;
    });
    l = layer + 1; // state now enters layer + 1
    captured = true;
    for (let g = next; g < end; g += variants) {
      const group = mods.slice(g, Math.min(end, g + variants));
      const kv = group.length;
      const outs = group.map(() => new Float32Array(N * E));
      chunks.forEach((c, i) => {
        let pooled: Float32Array;
        if (last) {
          const parts = group.map((m) => maskedOutput(L, caps[i], m, ffnGroupSize));
          pooled = new Float32Array(kv * c.B * C);
          parts.forEach((p, j) => pooled.set(p, j * c.B * C));
        } else {
          const n = c.B * c.T * C,
            x = new Float32Array(kv * n);
          group.forEach((m, j) => x.set(maskedOutput(L, caps[i], m, ffnGroupSize), j * n));
          const Bk = c.B * kv;
          if (layer + 1 < Lc - 1) {
            runLayers(rt, model, tower, x, Bk, c.T, {
              from: layer + 1,
              to: Lc - 1,
              attentionMask: keyMaskOf(c, kv),
              inPlace: true,
            });
          }
          const pool = new Int32Array(Bk);
          for (let j = 0; j < kv; j++) for (let b = 0; b < c.B; b++) pool[j * c.B + b] = pools[i][b] + j * c.B * c.T;
          const lastL = layerOf(rt, model, tower, Lc - 1, Bk * c.T);
          pooled = lastLayerPooled(lastL, x, Bk, c.T, pool, causal, keyMaskOf(c, kv));
        }
        const e = pooledHead(rt, model, tower, pooled, kv * c.B);
        for (let j = 0; j < kv; j++) {
          c.rows.forEach((row, b) => outs[j].set(e.subarray((j * c.B + b) * E, (j * c.B + b + 1) * E), row * E));
        }
      });
      group.forEach((m, j) => {
        cost.layer_forwards += (m.kind === 'layer' ? 0 : 1) + (Lc - layer - 1);
        done(m, outs[j]);
      });
    }
    next = end;
  }
}

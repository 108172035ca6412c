// Backward pass of a pre-LN transformer block and of both CLIP towers, from the tape of a training forward
// (src/model/train-forward.ts). Gradient contract (docs/design.md): parameter gradients accumulate (+=) into a
// ClipWeights-shaped container (src/model/grads.ts); activation gradients overwrite. A masked head / FFN neuron /
// layer gets exactly zero gradient. Dims: B batch, T tokens, N = B·T, C width, NH_l heads, HS head size,
// D_l = NH_l·HS, F_l FFN width, E projection dim, G patches, K = ch·P·P.
import type { Kernels } from '../engine/kernels.ts';
import type { Runtime } from '../engine/runtime.ts';
import { ShapeError } from '../errors.ts';
import type { ClipModel, LayerWeights, TextWeights, TowerConfig, VisionWeights } from './types.ts';
import { actKind, type LayerMasks } from './layer.ts';
import type { LayerTape, TextTape, TowerTape, VisionTape } from './tape.ts';

/** Scratch for the layer backward, sized for the widest layer; grows only. */
export class BackwardScratch {
  dx: Float32Array = new Float32Array(0); // [N,C] gradient of the residual stream (walks down the layers)
  dln: Float32Array = new Float32Array(0); // [N,C]
  dtmp: Float32Array = new Float32Array(0); // [N,C]
  dbranch: Float32Array = new Float32Array(0); // [N,C]
  act: Float32Array = new Float32Array(0); // [N,F]
  dh: Float32Array = new Float32Array(0); // [N,F]
  datt: Float32Array = new Float32Array(0); // [N,D]
  dqkv: Float32Array = new Float32Array(0); // [N,3D]

  ensure(cfg: TowerConfig, N: number): void {
    const C = cfg.hidden,
      maxD = Math.max(0, ...cfg.heads) * cfg.headDim,
      maxF = Math.max(0, ...cfg.ffn);
    const g = (b: Float32Array, n: number): Float32Array => (b.length >= n ? b : new Float32Array(n));
    this.dx = g(this.dx, N * C);
    this.dln = g(this.dln, N * C);
    this.dtmp = g(this.dtmp, N * C);
    this.dbranch = g(this.dbranch, N * C);
    this.act = g(this.act, N * maxF);
    this.dh = g(this.dh, N * maxF);
    this.datt = g(this.datt, N * maxD);
    this.dqkv = g(this.dqkv, N * 3 * maxD);
  }
}

const scratchCache = new WeakMap<object, { text?: BackwardScratch; vision?: BackwardScratch }>();

function sharedScratch(model: object, tower: 'text' | 'vision'): BackwardScratch {
  let e = scratchCache.get(model);
  if (e === undefined) scratchCache.set(model, (e = {}));
  return (e[tower] ??= new BackwardScratch());
}

/** g[c] += Σ_n s·dx[n,c] (gradient of a bias added to every row with scale s). */
function addColSums(g: Float32Array, dx: Float32Array, N: number, C: number, s: number): void {
  for (let c = 0; c < C; c++) {
    let acc = 0;
    for (let n = 0; n < N; n++) acc += dx[n * C + c];
    g[c] += s * acc;
  }
}

/** dbranch = s·dx, or dx itself when s = 1. */
function branchGrad(k: Kernels, sc: BackwardScratch, dx: Float32Array, s: number, NC: number): Float32Array {
  if (s === 1) return dx;
  const d = sc.dbranch.subarray(0, NC);
  d.set(dx.subarray(0, NC));
  k.scale(d, s, NC);
  return d;
}

/**
 * Backward of layerForward. dx [N,C] holds ∂L/∂(stream after the layer) and is overwritten with ∂L/∂(stream
 * before it); the layer's parameter gradients accumulate into g.
 */
export function layerBackward(
  k: Kernels,
  cfg: TowerConfig,
  lw: LayerWeights,
  g: LayerWeights,
  l: number,
  dx: Float32Array,
  tape: LayerTape,
  B: number,
  T: number,
  m: LayerMasks,
  sc: BackwardScratch,
): void {
  const s = m.scale;
  if (s === 0) return;
  const N = B * T,
    C = cfg.hidden,
    HS = cfg.headDim,
    NH = cfg.heads[l]!,
    D = NH * HS,
    F = cfg.ffn[l]!,
    NC = N * C;
  const dln = sc.dln.subarray(0, NC),
    dtmp = sc.dtmp.subarray(0, NC);

  let dbranch = branchGrad(k, sc, dx, s, NC);
  if (F > 0) {
    const act = sc.act.subarray(0, N * F),
      dh = sc.dh.subarray(0, N * F),
      kind = actKind(cfg);
    k.activation(act, tape.pre, m.ffn, N, F, kind);
    k.linearBackward(dh, g.fc2W, g.fc2B, dbranch, act, lw.fc2W, N, F, C);
    k.activationBackward(dh, dh, tape.pre, m.ffn, N, F, kind);
    k.linearBackward(dln, g.fc1W, g.fc1B, dh, tape.ln2, lw.fc1W, N, C, F);
    k.layernormBackward(dtmp, g.ln2W, g.ln2B, dln, tape.xMid, lw.ln2W, tape.mean2, tape.rstd2, N, C);
    k.residualAdd(dx, dx, dtmp, 1, NC);
  } else {
    addColSums(g.fc2B, dbranch, N, C, 1);
  }

  dbranch = branchGrad(k, sc, dx, s, NC);
  if (D > 0) {
    const datt = sc.datt.subarray(0, N * D),
      dqkv = sc.dqkv.subarray(0, N * 3 * D);
    k.linearBackward(datt, g.outW, g.outB, dbranch, tape.att, lw.outW, N, D, C);
    k.attentionBackward(dqkv, datt, tape.probs, tape.qkv, m.heads, B, T, NH, HS);
    k.linearBackward(dln, g.qkvW, g.qkvB, dqkv, tape.ln1, lw.qkvW, N, C, 3 * D);
    k.layernormBackward(dtmp, g.ln1W, g.ln1B, dln, tape.xIn, lw.ln1W, tape.mean1, tape.rstd1, N, C);
    k.residualAdd(dx, dx, dtmp, 1, NC);
  } else {
    addColSums(g.outB, dbranch, N, C, 1);
  }
}

export interface TowerBackwardOptions {
  /**
   * Extra gradients w.r.t. the residual stream after layer j ([B,T,C] or null), e.g. from hidden-state
   * distillation; index j = 0..L−1 (HF hidden_states[j+1]).
   */
  dHidden?: (Float32Array | null)[];
  scratch?: BackwardScratch;
}

/**
 * Pooling head backward: dEmbeds [B,E] → ∂L/∂(pooled rows) [B,C] (returned), with projection and LN gradients
 * accumulated.
 */
function headBackward(
  k: Kernels,
  tape: TowerTape,
  dEmbeds: Float32Array,
  proj: Float32Array,
  lnW: Float32Array,
  gProj: Float32Array,
  gLnW: Float32Array,
  gLnB: Float32Array,
  C: number,
  E: number,
): Float32Array {
  const B = tape.B,
    h = tape.head;
  if (dEmbeds.length !== B * E)
    throw new ShapeError(`${tape.tower} backward: dEmbeds has ${dEmbeds.length} elements, expected B·E = ${B * E}`);
  const dpooled = new Float32Array(B * C);
  k.linearBackward(dpooled, gProj, null, dEmbeds, h.pooled, proj, B, C, E);
  const drows = new Float32Array(B * C);
  k.layernormBackward(drows, gLnW, gLnB, dpooled, h.rows, lnW, h.mean, h.rstd, B, C);
  return drows;
}

/** Runs the layer backward from the top layer down; dx holds ∂L/∂(stream after the last layer) on entry. */
function layersBackward(
  k: Kernels,
  cfg: TowerConfig,
  layers: LayerWeights[],
  gLayers: LayerWeights[],
  tape: TowerTape,
  dx: Float32Array,
  sc: BackwardScratch,
  dHidden: (Float32Array | null)[] | undefined,
): void {
  const { B, T } = tape,
    NC = B * T * cfg.hidden,
    m = tape.masks;
  for (let l = layers.length - 1; l >= 0; l--) {
    const dh = dHidden?.[l];
    if (dh) {
      if (dh.length !== NC)
        throw new ShapeError(`${tape.tower} backward: dHidden[${l}] has ${dh.length} elements, expected B·T·C = ${NC}`);
      k.residualAdd(dx, dx, dh, 1, NC);
    }
    layerBackward(
      k,
      cfg,
      layers[l]!,
      gLayers[l]!,
      l,
      dx,
      tape.layers[l]!,
      B,
      T,
      {
        heads: m?.heads?.[l] ?? null,
        ffn: m?.ffn?.[l] ?? null,
        scale: m?.layers !== undefined ? m.layers[l]! : 1,
      },
      sc,
    );
  }
}

/**
 * Text tower backward: dEmbeds [B,E] (∂L/∂ unnormalised text embeddings) → gradients of every text parameter,
 * accumulated into g. Token embedding rows get a scatter-add over the batch's ids; position rows 0..T−1 get the
 * column sums.
 */
export function textBackward(
  rt: Runtime,
  model: ClipModel,
  tape: TextTape,
  dEmbeds: Float32Array,
  g: TextWeights,
  opts: TowerBackwardOptions = {},
): void {
  const k = rt.kernels,
    cfg = model.config.text,
    w = model.weights.text,
    C = cfg.hidden,
    E = model.config.projectionDim;
  const { B, T } = tape,
    N = B * T;
  const sc = opts.scratch ?? sharedScratch(model, 'text');
  sc.ensure(cfg, N);
  const drows = headBackward(k, tape, dEmbeds, w.projection, w.finalLnW, g.projection, g.finalLnW, g.finalLnB, C, E);
  const dx = sc.dx.subarray(0, N * C);
  dx.fill(0);
  for (let b = 0; b < B; b++) dx.set(drows.subarray(b * C, (b + 1) * C), (b * T + tape.poolIdx[b]!) * C);
  layersBackward(k, cfg, w.layers, g.layers, tape, dx, sc, opts.dHidden);
  const ids = tape.ids,
    tok = g.tokenEmbedding,
    pos = g.positionEmbedding;
  for (let n = 0; n < N; n++) {
    const to = ids[n]! * C,
      po = (n % T) * C,
      xo = n * C;
    for (let c = 0; c < C; c++) {
      const d = dx[xo + c]!;
      tok[to + c] += d;
      pos[po + c] += d;
    }
  }
}

/**
 * Vision tower backward: dEmbeds [B,E] → gradients of every vision parameter, accumulated into g (patch embedding
 * through a linear backward on the saved im2patch output; no pixel gradient).
 */
export function visionBackward(
  rt: Runtime,
  model: ClipModel,
  tape: VisionTape,
  dEmbeds: Float32Array,
  g: VisionWeights,
  opts: TowerBackwardOptions = {},
): void {
  const k = rt.kernels,
    cfg = model.config.vision,
    w = model.weights.vision,
    C = cfg.hidden,
    E = model.config.projectionDim;
  const { B, T } = tape,
    N = B * T,
    G = T - 1,
    K = cfg.channels * cfg.patchSize * cfg.patchSize;
  const sc = opts.scratch ?? sharedScratch(model, 'vision');
  sc.ensure(cfg, N);
  const dcls = headBackward(k, tape, dEmbeds, w.projection, w.postLnW, g.projection, g.postLnW, g.postLnB, C, E);
  const dx = sc.dx.subarray(0, N * C);
  dx.fill(0);
  for (let b = 0; b < B; b++) dx.set(dcls.subarray(b * C, (b + 1) * C), b * T * C);
  layersBackward(k, cfg, w.layers, g.layers, tape, dx, sc, opts.dHidden);
  const dpre = sc.dtmp.subarray(0, N * C);
  k.layernormBackward(dpre, g.preLnW, g.preLnB, dx, tape.xPre, w.preLnW, tape.preMean, tape.preRstd, N, C);
  const dpe = new Float32Array(B * G * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C,
        po = t * C;
      for (let c = 0; c < C; c++) g.positionEmbedding[po + c] += dpre[o + c]!;
      if (t === 0) for (let c = 0; c < C; c++) g.classEmbedding[c] += dpre[o + c]!;
    }
    dpe.set(dpre.subarray((b * T + 1) * C, (b + 1) * T * C), b * G * C);
  }
  k.linearBackward(null, g.patchEmbedding, null, dpe, tape.patches, w.patchEmbedding, B * G, K, C);
}

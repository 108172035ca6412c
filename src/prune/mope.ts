// The MoPE scorer: MoPE(θ) = Z(model) − Z(model with θ masked) and the loss increase, per module.
// Fast path: the other tower's embeddings are computed once; the masked tower's residual stream entering
// layer l is kept (one [N,T,C] state advanced layer by layer) so a module of layer l recomputes only layers
// l…L−1, and up to `variants` masked copies run layers l+1…L−1 as one stacked batch. Naive path: the whole
// model, both towers, per module. Dims: N items of a tower's input set, B batch, T tokens, C width, E proj.
import { ShapeError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel, TowerMasks } from '../model/types.ts';
import { runLayers, textEmbed, textHead, visionEmbed, visionHead, visionTokens } from '../model/forward.ts';
import { encodeImages, encodeTexts } from '../model/encode.ts';
import { maskModules } from './masks.ts';
import { scoreTowerFast } from './mope-fast.ts';
import { compareModules, towerConfig, type ModuleRef, type TowerName } from './modules.ts';
import {
  classifierFromPrompts,
  combine,
  retrievalObjective,
  zeroshotObjective,
  type ObjectiveValue,
  type Task,
} from './objective.ts';

/** Image–caption pairs: pixels [n,ch,S,S] preprocessed, captions[i] = token ids (BOS…EOS) of image i's first caption. */
export interface RetrievalCalibration {
  pixels: Float32Array;
  n: number;
  captions: number[][];
}

/** Labelled images and the class prompts: prompts[k] = token id lists of class k's templates. */
export interface ZeroshotCalibration {
  pixels: Float32Array;
  n: number;
  labels: ArrayLike<number>;
  prompts: number[][][];
}

export interface Calibration {
  task: Task;
  /** Task both: Z = (1 − w)·Z_retrieval + w·Z_zeroshot (default ½). */
  zeroshotWeight?: number;
  retrieval?: RetrievalCalibration;
  zeroshot?: ZeroshotCalibration;
}

export interface ModuleScore extends ModuleRef {
  mope: number;
  loss_increase: number;
  /** Z and loss with the module masked. */
  z: number;
  loss: number;
}

export interface ScoreCost {
  /** Layer-forwards spent, in units of one layer over one tower's whole calibration input set. */
  layer_forwards: number;
  /** What the naive path spends for the same modules: (modules + 1)·(L_vision + L_text). */
  naive_layer_forwards: number;
  seconds: number;
}

export interface ScoreOptions {
  ffnGroupSize: number;
  /** Items per forward pass (default 32). */
  batch?: number;
  /** Masked variants of the same layer stacked through layers l+1…L−1 in one call (default 1). */
  variants?: number;
  /** Run the whole model per module instead of the fast path (reference for tests). */
  naive?: boolean;
  /** Called as soon as a module is scored (used for incremental, resumable output). */
  onModule?: (s: ModuleScore, cost: ScoreCost) => void;
  /** Called once with Z / loss of the unmasked model, before any module is scored. */
  onBase?: (base: ObjectiveValue) => void;
  /** Called after the base pass and after each module. */
  onProgress?: (done: number, total: number) => void;
}

export interface ScoreResult {
  base: ObjectiveValue;
  modules: ModuleScore[];
  cost: ScoreCost;
}

/** One batch of a tower's input set. Text batches are padded to their longest sequence (EOS + attention mask). */
interface Chunk {
  rows: number[];
  B: number;
  T: number;
  ids?: Int32Array;
  attn?: Float32Array | null;
  pixels?: Float32Array;
}

interface TowerInput {
  tower: TowerName;
  N: number;
  chunks: Chunk[];
}

/** Images of both parts, then texts: captions then prompts (class-major). */
interface Inputs {
  images: TowerInput;
  texts: TowerInput;
  /** Embeddings [N,E] of each tower → objective. */
  evaluate(img: Float32Array, txt: Float32Array): ObjectiveValue;
  pixels: Float32Array;
  textIds: number[][];
}

function buildInputs(rt: Runtime, model: ClipModel, cal: Calibration, batch: number): Inputs {
  const E = model.config.projectionDim,
    s = model.weights.logitScale[0];
  const v = model.config.vision,
    per = v.channels * v.imageSize * v.imageSize;
  const needR = cal.task !== 'zeroshot',
    needZ = cal.task !== 'retrieval';
  const r = needR ? cal.retrieval : undefined,
    zs = needZ ? cal.zeroshot : undefined;
  if (needR && r === undefined) throw new ShapeError(`task ${cal.task} needs retrieval calibration pairs`);
  if (needZ && zs === undefined)
    throw new ShapeError(`task ${cal.task} needs zero-shot calibration images and classes`);
  const nR = r?.n ?? 0,
    nZ = zs?.n ?? 0;
  if (r && (r.pixels.length !== nR * per || r.captions.length !== nR)) {
    throw new ShapeError(`retrieval calibration: expected ${nR} images of ${per} values and ${nR} captions`);
  }
  if (zs && (zs.pixels.length !== nZ * per || zs.labels.length !== nZ)) {
    throw new ShapeError(`zero-shot calibration: expected ${nZ} images of ${per} values and ${nZ} labels`);
  }
  const pixels = new Float32Array((nR + nZ) * per);
  if (r) pixels.set(r.pixels, 0);
  if (zs) pixels.set(zs.pixels, nR * per);
  const counts = zs ? zs.prompts.map((p) => p.length) : [];
  const textIds = [...(r?.captions ?? []), ...(zs ? zs.prompts.flat() : [])];
  const images: TowerInput = { tower: 'vision', N: nR + nZ, chunks: [] };
  for (let start = 0; start < images.N; start += batch) {
    const B = Math.min(batch, images.N - start);
    images.chunks.push({
      rows: range(start, start + B),
      B,
      T: visionTokens(model),
      pixels: pixels.subarray(start * per, (start + B) * per),
    });
  }
  const texts: TowerInput = { tower: 'text', N: textIds.length, chunks: textChunks(model, textIds, batch) };
  const nCap = r?.captions.length ?? 0;
  const evaluate = (img: Float32Array, txt: Float32Array): ObjectiveValue => {
    let rv: ObjectiveValue | undefined, zv: ObjectiveValue | undefined;
    if (r) rv = retrievalObjective(rt, img.subarray(0, nR * E), txt.subarray(0, nCap * E), nR, E, s);
    if (zs) {
      const W = classifierFromPrompts(rt, txt.subarray(nCap * E), counts, E);
      zv = zeroshotObjective(rt, img.subarray(nR * E), W, zs.labels, nZ, counts.length, E, s);
    }
    return rv && zv ? combine(rv, zv, cal.zeroshotWeight ?? 0.5) : (rv ?? zv)!;
  };
  return { images, texts, evaluate, pixels, textIds };
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** Sequences sorted by length (stable), batched, right-padded with EOS plus an attention mask. */
function textChunks(model: ClipModel, ids: number[][], batch: number): Chunk[] {
  const cfg = model.config.text;
  ids.forEach((s, i) => {
    if (s.length === 0 || s.length > cfg.maxPositions) {
      throw new ShapeError(`calibration text ${i} has ${s.length} tokens; need 1…${cfg.maxPositions}`);
    }
  });
  const order = ids.map((_, i) => i).sort((a, b) => ids[a].length - ids[b].length || a - b);
  const chunks: Chunk[] = [];
  for (let start = 0; start < order.length; start += batch) {
    const rows = order.slice(start, start + batch);
    const B = rows.length,
      T = Math.max(...rows.map((i) => ids[i].length));
    const x = new Int32Array(B * T).fill(cfg.eosTokenId);
    const attn = new Float32Array(B * T);
    let padded = false;
    rows.forEach((i, b) => {
      ids[i].forEach((id, t) => {
        x[b * T + t] = id;
        attn[b * T + t] = 1;
      });
      if (ids[i].length < T) padded = true;
    });
    chunks.push({ rows, B, T, ids: x, attn: padded ? attn : null });
  }
  return chunks;
}

function embedChunk(rt: Runtime, model: ClipModel, tower: TowerName, c: Chunk): Float32Array {
  return tower === 'text' ? textEmbed(rt, model, c.ids!, c.B, c.T) : visionEmbed(rt, model, c.pixels!, c.B);
}

/** Repeats a per-chunk array reps times (stacked variants). */
function tile<A extends Float32Array | Int32Array>(a: A, reps: number): A {
  if (reps === 1) return a;
  const out = new (a.constructor as { new (n: number): A })(a.length * reps);
  for (let r = 0; r < reps; r++) out.set(a, r * a.length);
  return out;
}

/** Layers [from, L) then the head on x [reps·B, T, C] (reps stacked copies of chunk c) → embeds [reps·B, E]. */
function finishChunk(
  rt: Runtime,
  model: ClipModel,
  tower: TowerName,
  c: Chunk,
  x: Float32Array,
  reps: number,
  from: number,
  masks?: TowerMasks,
): Float32Array {
  const B = c.B * reps;
  const attn = c.attn ? tile(c.attn, reps) : null;
  const y = runLayers(rt, model, tower, x, B, c.T, { from, masks, attentionMask: attn, inPlace: true });
  return tower === 'text' ? textHead(rt, model, y, tile(c.ids!, reps), B, c.T) : visionHead(rt, model, y, B);
}

/** Whole-tower embeddings [N,E] of an input set, rows in input order. */
function towerEmbeds(rt: Runtime, model: ClipModel, input: TowerInput, masks?: TowerMasks): Float32Array {
  const E = model.config.projectionDim;
  const out = new Float32Array(input.N * E);
  for (const c of input.chunks) {
    const e = finishChunk(rt, model, input.tower, c, embedChunk(rt, model, input.tower, c), 1, 0, masks);
    c.rows.forEach((row, b) => out.set(e.subarray(b * E, (b + 1) * E), row * E));
  }
  return out;
}

function layersOf(model: ClipModel, tower: TowerName): number {
  return towerConfig(model, tower).heads.length;
}

/**
 * Scores modules by MoPE and loss increase on a calibration set. Modules may span both towers; results come
 * back (and through onModule) in canonical order per tower.
 */
export function scoreMope(
  rt: Runtime,
  model: ClipModel,
  cal: Calibration,
  modulesIn: ModuleRef[],
  opts: ScoreOptions,
): ScoreResult {
  const t0 = Date.now();
  const batch = opts.batch ?? 32,
    variants = Math.max(1, Math.floor(opts.variants ?? 1));
  if (!Number.isInteger(batch) || batch < 1) throw new ShapeError(`batch must be a positive integer, got ${batch}`);
  const modules = [...modulesIn].sort(compareModules);
  const inp = buildInputs(rt, model, cal, batch);
  const Lv = layersOf(model, 'vision'),
    Lt = layersOf(model, 'text');
  const cost: ScoreCost = { layer_forwards: 0, naive_layer_forwards: (modules.length + 1) * (Lv + Lt), seconds: 0 };
  const total = modules.length;
  let done = 0;
  const results: ModuleScore[] = [];

  const baseImg = towerEmbeds(rt, model, inp.images);
  const baseTxt = towerEmbeds(rt, model, inp.texts);
  cost.layer_forwards += Lv + Lt;
  const base = inp.evaluate(baseImg, baseTxt);
  opts.onBase?.(base);
  opts.onProgress?.(0, total);

  const record = (m: ModuleRef, v: ObjectiveValue): void => {
    const s: ModuleScore = {
      tower: m.tower,
      kind: m.kind,
      layer: m.layer,
      index: m.index,
      mope: base.z - v.z,
      loss_increase: v.loss - base.loss,
      z: v.z,
      loss: v.loss,
    };
    results.push(s);
    cost.seconds = (Date.now() - t0) / 1000;
    opts.onModule?.(s, { ...cost });
    opts.onProgress?.(++done, total);
  };

  if (opts.naive) {
    for (const m of modules) {
      const masks = maskModules(towerConfig(model, m.tower), [m], opts.ffnGroupSize);
      const img = encodeImages(rt, model, inp.pixels, inp.images.N, {
        batch,
        masks: m.tower === 'vision' ? masks : undefined,
      });
      const txt = encodeTexts(rt, model, inp.textIds, { batch, masks: m.tower === 'text' ? masks : undefined });
      cost.layer_forwards += Lv + Lt;
      record(m, inp.evaluate(img, txt));
    }
  } else {
    for (const tower of ['vision', 'text'] as const) {
      const mods = modules.filter((m) => m.tower === tower);
      if (mods.length === 0) continue;
      const input = tower === 'vision' ? inp.images : inp.texts;
      const evalWith = (emb: Float32Array) =>
        tower === 'vision' ? inp.evaluate(emb, baseTxt) : inp.evaluate(baseImg, emb);
      const state = input.chunks.map((c) => embedChunk(rt, model, tower, c));
      scoreTowerFast(
        rt,
        model,
        tower,
        input.N,
        input.chunks,
        state,
        mods,
        opts.ffnGroupSize,
        variants,
        cost,
        (m, emb) => record(m, evalWith(emb)),
      );
    }
  }
  cost.seconds = (Date.now() - t0) / 1000;
  return { base, modules: results, cost };
}

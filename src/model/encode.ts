// Batched encoding of many texts / images into embeddings. Dims: N items, E projection dim, T tokens per
// batch (longest sequence of the batch), pixels [N,ch,S,S].
import { ShapeError, DataError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel, TowerMasks } from './types.ts';
import { textForward, visionForward } from './forward.ts';

export interface EncodeOptions {
  /** Items per forward pass (default 32). */
  batch?: number;
  masks?: TowerMasks;
}

function batchSize(opts: EncodeOptions | undefined): number {
  const b = opts?.batch ?? 32;
  if (!Number.isInteger(b) || b < 1) throw new ShapeError(`encode: batch must be a positive integer, got ${b}`);
  return b;
}

/**
 * Token id sequences (each already holding BOS … EOS, at most maxPositions long) → unnormalised text embeds
 * [N,E]. Each batch is right-padded to its longest sequence with the EOS id plus an attention mask, which
 * leaves the result of every sequence equal to encoding it alone. Sequences are batched in order of length
 * to limit padding; the output keeps the input order.
 */
export function encodeTexts(rt: Runtime, model: ClipModel, ids: number[][], opts?: EncodeOptions): Float32Array {
  const bs = batchSize(opts);
  const N = ids.length,
    E = model.config.projectionDim,
    cfg = model.config.text;
  const out = new Float32Array(N * E);
  ids.forEach((s, i) => {
    if (s.length === 0) throw new DataError(`encodeTexts: sequence ${i} is empty; tokenize with BOS and EOS`);
    if (s.length > cfg.maxPositions) {
      throw new ShapeError(
        `encodeTexts: sequence ${i} has ${s.length} tokens, more than the model's ${cfg.maxPositions}; truncate it`,
      );
    }
  });
  const order = ids.map((_, i) => i).sort((a, b) => ids[a].length - ids[b].length || a - b);
  for (let start = 0; start < N; start += bs) {
    const chunk = order.slice(start, start + bs);
    const B = chunk.length;
    const T = Math.max(...chunk.map((i) => ids[i].length));
    const x = new Int32Array(B * T).fill(cfg.eosTokenId);
    const mask = new Float32Array(B * T);
    let padded = false;
    chunk.forEach((i, b) => {
      const s = ids[i];
      for (let t = 0; t < s.length; t++) {
        const id = s[t];
        if (!Number.isInteger(id))
          throw new DataError(`encodeTexts: sequence ${i} position ${t} holds ${id}, not an integer token id`);
        x[b * T + t] = id;
        mask[b * T + t] = 1;
      }
      if (s.length < T) padded = true;
    });
    let embeds: Float32Array;
    try {
      embeds = textForward(rt, model, x, B, T, { masks: opts?.masks, attentionMask: padded ? mask : null }).embeds;
    } catch (e) {
      if (e instanceof DataError) throw remapRow(e, chunk);
      throw e;
    }
    chunk.forEach((i, b) => out.set(embeds.subarray(b * E, (b + 1) * E), i * E));
  }
  return out;
}

/** Rewrites "row r" in a forward error to the caller's sequence index. */
function remapRow(e: DataError, chunk: number[]): DataError {
  const m = /at row (\d+), position/.exec(e.message);
  if (m === null) return e;
  const seq = chunk[Number(m[1])];
  return new DataError(e.message.replace(/at row \d+, position/, `in sequence ${seq}, position`));
}

/** Pixels [N,ch,S,S] (already preprocessed) → unnormalised image embeds [N,E], in batches. */
export function encodeImages(
  rt: Runtime,
  model: ClipModel,
  pixels: Float32Array,
  N: number,
  opts?: EncodeOptions,
): Float32Array {
  const bs = batchSize(opts);
  const v = model.config.vision,
    E = model.config.projectionDim;
  const per = v.channels * v.imageSize * v.imageSize;
  if (pixels.length !== N * per) {
    throw new ShapeError(
      `encodeImages: pixels has ${pixels.length} elements, expected N·ch·S·S = ${N}·${v.channels}·${v.imageSize}·${v.imageSize} = ${N * per}`,
    );
  }
  const out = new Float32Array(N * E);
  for (let start = 0; start < N; start += bs) {
    const B = Math.min(bs, N - start);
    const px = pixels.subarray(start * per, (start + B) * per);
    out.set(visionForward(rt, model, px, B, { masks: opts?.masks }).embeds, start * E);
  }
  return out;
}

/** Rows of x [N,E] divided by their L2 norms, into a new array. */
export function normalizeRows(rt: Runtime, x: Float32Array, N: number, E: number): Float32Array {
  if (x.length !== N * E)
    throw new ShapeError(`normalizeRows: x has ${x.length} elements, expected N·E = ${N}·${E} = ${N * E}`);
  const out = new Float32Array(N * E);
  rt.kernels.l2normalize(out, null, x, N, E);
  return out;
}

/**
 * CLIP logits_per_text [Nt,Ni] = exp(logitScale)·normalize(text)·normalize(image)ᵀ (HF CLIPModel.forward);
 * logits_per_image is its transpose.
 */
export function clipLogits(
  rt: Runtime,
  textEmbeds: Float32Array,
  Nt: number,
  imageEmbeds: Float32Array,
  Ni: number,
  E: number,
  logitScale: number,
): Float32Array {
  const t = normalizeRows(rt, textEmbeds, Nt, E);
  const i = normalizeRows(rt, imageEmbeds, Ni, E);
  const out = new Float32Array(Nt * Ni);
  rt.kernels.gemm(out, t, i, Nt, Ni, E, false, true, Math.exp(logitScale), 0);
  return out;
}

// Evaluation metrics as pure functions: retrieval recall@K (CLIP_benchmark definitions) and zero-shot
// top-K accuracy / mean per-class recall. Dims: NT captions (text queries), NI images, NC classes.
//
// All results are fractions in [0, 1] (not percentages).
// Ties: ranking is by descending score with ties broken by index: among equal scores the item with the
// lower index ranks first (a stable sort by descending score). So the rank of item j in a row is
//   #{i : s[i] > s[j]} + #{i < j : s[i] = s[j]}   (0-based),
// and a query is a hit at K when the rank of (its best) positive is < K. K larger than the number of
// candidates is clamped to that number (every query is then a hit), where torch.topk would raise.
// NaN scores are never ranked above anything (treated as lower than every number).

/** Rank (0-based) of column j within row values (length n) under the tie rule above. */
export function rankOf(row: ArrayLike<number>, j: number): number {
  const s = row[j];
  if (Number.isNaN(s)) {
    // A NaN positive ranks after every non-NaN, then by index among NaNs.
    let r = 0;
    for (let i = 0; i < row.length; i++) if (!Number.isNaN(row[i]) || i < j) r++;
    return r;
  }
  let r = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (v > s || (v === s && i < j)) r++;
  }
  return r;
}

/** Indices of the k best entries of row (descending score, ties by lower index first); k clamped to length. */
export function topK(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(row[i]) ? -Infinity : row[i]);
  idx.sort((a, b) => {
    const d = key(b) - key(a);
    if (d !== 0 && !Number.isNaN(d)) return d;
    const na = Number.isNaN(row[a]) ? 1 : 0;
    const nb = Number.isNaN(row[b]) ? 1 : 0;
    return na - nb || a - b;
  });
  return idx.slice(0, Math.max(0, Math.min(k, row.length)));
}

export interface RetrievalMetrics {
  /** text→image: fraction of captions whose image is among the top K images. Keyed by K. */
  imageRetrieval: Record<number, number>;
  /** image→text: fraction of images with at least one of their captions among the top K captions. */
  textRetrieval: Record<number, number>;
}

/**
 * Retrieval recall@K. scores [NT, NI] row-major: scores[t·NI + i] = similarity of caption t and image i.
 * captionImage[t] = index of caption t's image (each caption belongs to exactly one image). Every image
 * must have at least one caption (an image with none could never be a hit and is an input error).
 */
export function retrievalRecall(
  scores: Float32Array | Float64Array,
  captionImage: ArrayLike<number>,
  NT: number,
  NI: number,
  ks: number[] = [1, 5, 10],
): RetrievalMetrics {
  if (scores.length !== NT * NI)
    throw new RangeError(`retrievalRecall: scores has ${scores.length} values, expected NT·NI = ${NT}·${NI}`);
  return retrievalRecallBlocked(
    (t0, t1) => scores.subarray(t0 * NI, t1 * NI),
    captionImage,
    NT,
    NI,
    ks,
    Math.max(NT, 1),
  );
}

/**
 * retrievalRecall with the score matrix supplied in blocks of caption rows, so that it never has to exist
 * whole (25k captions × 5k images would be 500 MB): rows(t0, t1) returns scores [t1 − t0, NI]. Each block
 * is requested twice (first to find every image's best positive caption, then to rank), so rows() must be
 * deterministic.
 */
export function retrievalRecallBlocked(
  rows: (t0: number, t1: number) => Float32Array | Float64Array,
  captionImage: ArrayLike<number>,
  NT: number,
  NI: number,
  ks: number[] = [1, 5, 10],
  block = 1024,
): RetrievalMetrics {
  if (captionImage.length !== NT)
    throw new RangeError(`retrievalRecall: captionImage has ${captionImage.length} entries, expected ${NT}`);
  for (const k of ks)
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`retrievalRecall: K must be a positive integer, got ${k}`);
  const nCaps = new Int32Array(NI);
  for (let t = 0; t < NT; t++) {
    const i = captionImage[t];
    if (!Number.isInteger(i) || i < 0 || i >= NI)
      throw new RangeError(`retrievalRecall: caption ${t} points at image ${i}, outside [0, ${NI})`);
    nCaps[i]++;
  }
  for (let i = 0; i < NI; i++) if (nCaps[i] === 0) throw new RangeError(`retrievalRecall: image ${i} has no caption`);
  const getBlock = (t0: number, t1: number) => {
    const b = rows(t0, t1);
    if (b.length !== (t1 - t0) * NI)
      throw new RangeError(`retrievalRecall: rows(${t0}, ${t1}) gave ${b.length} values, expected ${(t1 - t0) * NI}`);
    return b;
  };

  // Pass 1 — text → image ranks, and for image → text each image's best positive: the caption of the
  // image with the highest score, the lowest caption index among equal scores (NaN lowest of all).
  const imgRanks = new Int32Array(NT);
  const best = new Int32Array(NI).fill(-1);
  const bestScore = new Float64Array(NI);
  for (let t0 = 0; t0 < NT; t0 += block) {
    const t1 = Math.min(NT, t0 + block);
    const b = getBlock(t0, t1);
    for (let t = t0; t < t1; t++) {
      const row = b.subarray((t - t0) * NI, (t - t0 + 1) * NI);
      const i = captionImage[t];
      imgRanks[t] = rankOf(row, i);
      const s = row[i];
      if (best[i] < 0 || s > bestScore[i] || (Number.isNaN(bestScore[i]) && !Number.isNaN(s))) {
        best[i] = t;
        bestScore[i] = s;
      }
    }
  }
  // Pass 2 — image → text: rank of the best positive within its image's column, counted block by block.
  const txtRanks = new Int32Array(NI);
  for (let t0 = 0; t0 < NT; t0 += block) {
    const t1 = Math.min(NT, t0 + block);
    const b = getBlock(t0, t1);
    for (let i = 0; i < NI; i++) {
      const bt = best[i],
        bs = bestScore[i];
      let r = 0;
      if (Number.isNaN(bs)) {
        for (let t = t0; t < t1; t++) if (!Number.isNaN(b[(t - t0) * NI + i]) || t < bt) r++;
      } else {
        for (let t = t0; t < t1; t++) {
          const v = b[(t - t0) * NI + i];
          if (v > bs || (v === bs && t < bt)) r++;
        }
      }
      txtRanks[i] += r;
    }
  }

  const imageRetrieval: Record<number, number> = {};
  const textRetrieval: Record<number, number> = {};
  for (const k of ks) {
    let hits = 0;
    for (let t = 0; t < NT; t++) if (imgRanks[t] < k) hits++;
    imageRetrieval[k] = NT > 0 ? hits / NT : 0;
    hits = 0;
    for (let i = 0; i < NI; i++) if (txtRanks[i] < k) hits++;
    textRetrieval[k] = NI > 0 ? hits / NI : 0;
  }
  return { imageRetrieval, textRetrieval };
}

export interface ZeroshotMetrics {
  /** Keyed by K: fraction of images whose label is among the top K logits. */
  topk: Record<number, number>;
  /** Mean over the classes present in the labels of (correct top-1 / images of that class) — sklearn's balanced accuracy. */
  meanPerClassRecall: number;
}

/** Zero-shot accuracy from logits [N, NC] row-major and labels [N]. */
export function zeroshotAccuracy(
  logits: Float32Array | Float64Array,
  labels: ArrayLike<number>,
  N: number,
  NC: number,
  ks: number[] = [1, 5],
): ZeroshotMetrics {
  if (logits.length !== N * NC)
    throw new RangeError(`zeroshotAccuracy: logits has ${logits.length} values, expected N·NC = ${N}·${NC}`);
  if (labels.length !== N) throw new RangeError(`zeroshotAccuracy: labels has ${labels.length} entries, expected ${N}`);
  const ranks = new Int32Array(N);
  const perClassN = new Float64Array(NC);
  const perClassHit = new Float64Array(NC);
  for (let n = 0; n < N; n++) {
    const y = labels[n];
    if (!Number.isInteger(y) || y < 0 || y >= NC)
      throw new RangeError(`zeroshotAccuracy: label ${y} of image ${n} outside [0, ${NC})`);
    ranks[n] = rankOf(logits.subarray(n * NC, (n + 1) * NC), y);
    perClassN[y]++;
    if (ranks[n] === 0) perClassHit[y]++;
  }
  const topk: Record<number, number> = {};
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`zeroshotAccuracy: K must be a positive integer, got ${k}`);
    let hits = 0;
    for (let n = 0; n < N; n++) if (ranks[n] < Math.min(k, NC)) hits++;
    topk[k] = N > 0 ? hits / N : 0;
  }
  let sum = 0,
    present = 0;
  for (let c = 0; c < NC; c++)
    if (perClassN[c] > 0) {
      sum += perClassHit[c] / perClassN[c];
      present++;
    }
  return { topk, meanPerClassRecall: present > 0 ? sum / present : 0 };
}

/** Scores [NA, NB] = A [NA, E] · B [NB, E]ᵀ in float64 accumulation (reference path; eval uses the GEMM kernel). */
export function similarityMatrix(a: Float32Array, b: Float32Array, NA: number, NB: number, E: number): Float32Array {
  const out = new Float32Array(NA * NB);
  for (let i = 0; i < NA; i++) {
    for (let j = 0; j < NB; j++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += a[i * E + e] * b[j * E + e];
      out[i * NB + j] = s;
    }
  }
  return out;
}

/** In-place L2 normalisation of N rows of width E (norm floored at 1e-12, like the kernel). */
export function l2NormalizeRows(x: Float32Array, N: number, E: number): Float32Array {
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let e = 0; e < E; e++) s += x[n * E + e] * x[n * E + e];
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let e = 0; e < E; e++) x[n * E + e] *= inv;
  }
  return x;
}

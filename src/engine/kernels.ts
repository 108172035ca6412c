// The kernel contract: every hot loop of the model, implemented natively (native/, loaded by
// src/engine/native.ts) and naively in TypeScript (src/engine/reference.ts) with identical signatures.
// Argument order: outputs first, then inputs, then weights, then dims (B batch, T tokens, C width,
// NH heads, HS head size, F FFN width, N rows). All matrices are row-major Float32Arrays.
// Gradient contract (for backward kernels, added with training): parameter gradients accumulate (+=),
// activation gradients overwrite (=) unless a kernel documents otherwise.

export type F32 = Float32Array;

/** 0 = quick_gelu x·σ(1.702x), 1 = exact erf gelu. */
export type ActKind = 0 | 1;

/**
 * The two passes of Pillow's 8-bit separable resize (image preprocessing), exact integer arithmetic: every
 * implementation gives the same bytes. Coefficients per output pixel i: `count[i]` inputs from `start[i]` with
 * fixed-point weights k[i·ksize …] (22 fraction bits), as src/io/resize.ts computes them. Single-threaded.
 */
export interface ResampleKernels {
  /** Horizontal: `rows` source rows from `rowOffset` of src [·, srcW, channels] → out [rows, outW, channels]. */
  resampleRows(
    out: Uint8Array,
    src: Uint8Array,
    srcW: number,
    rowOffset: number,
    rows: number,
    outW: number,
    channels: number,
    ksize: number,
    start: Int32Array,
    count: Int32Array,
    k: Int32Array,
  ): void;
  /** Vertical: out row i reads src rows start[i] − rowShift … of src [·, width, channels] → out [outH, width, channels]. */
  resampleCols(
    out: Uint8Array,
    src: Uint8Array,
    width: number,
    outH: number,
    channels: number,
    ksize: number,
    start: Int32Array,
    count: Int32Array,
    k: Int32Array,
    rowShift: number,
  ): void;
}

export interface Kernels extends ResampleKernels {
  /** Threads used by the kernels and by OpenBLAS. */
  setThreads(n: number): void;
  getThreads(): number;

  /** C[M,N] = alpha·op(A)·op(B) + beta·C; op(A) is [M,K] (A stored [K,M] when transA), op(B) is [K,N] (stored [N,K] when transB). */
  gemm(
    c: F32,
    a: F32,
    b: F32,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    alpha: number,
    beta: number,
  ): void;

  /** For i < batch: C[i] = alpha·op(A[i])·op(B[i]) + beta·C[i], where X[i] starts at element i·strideX. */
  gemmStridedBatched(
    c: F32,
    a: F32,
    b: F32,
    batch: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    alpha: number,
    beta: number,
    strideA: number,
    strideB: number,
    strideC: number,
  ): void;

  /** out[N,OC] = inp[N,IC]·W[OC,IC]ᵀ + bias[OC] (bias may be null). */
  linear(out: F32, inp: F32, weight: F32, bias: F32 | null, N: number, IC: number, OC: number): void;

  /** LayerNorm over the last dim C of N rows. mean / rstd [N] are written when non-null (for backward). */
  layernorm(
    out: F32,
    mean: F32 | null,
    rstd: F32 | null,
    inp: F32,
    weight: F32,
    bias: F32,
    N: number,
    C: number,
    eps: number,
  ): void;

  /** out[n,f] = act(inp[n,f])·mask[f] (mask null = all ones). out may alias inp. */
  activation(out: F32, inp: F32, mask: F32 | null, N: number, F: number, kind: ActKind): void;

  /**
   * Multi-head self-attention core. qkv [B,T,3·NH·HS] holds q | k | v per token (head h at columns h·HS).
   * out [B,T,NH·HS] = per head softmax(q·kᵀ·HS^-0.5 + masks)·v, multiplied by headMask[h].
   * keyMask [B,T]: 1 = real token, 0 = padding (never attended to); null = none. causal: key j > query i masked.
   * probs [B,NH,T,T] receives the softmax when non-null (for backward). A fully masked row gives zeros.
   */
  attention(
    out: F32,
    probs: F32 | null,
    qkv: F32,
    keyMask: F32 | null,
    headMask: F32 | null,
    B: number,
    T: number,
    NH: number,
    HS: number,
    causal: boolean,
  ): void;

  /** out = a + scale·b over N elements. out may alias a. */
  residualAdd(out: F32, a: F32, b: F32, scale: number, N: number): void;

  /** Each of N rows of width C divided by its L2 norm (norm floored at 1e-12); norms [N] written when non-null. */
  l2normalize(out: F32, norms: F32 | null, inp: F32, N: number, C: number): void;

  /**
   * pixels [B,ch,H,W] → patches [B, (H/P)·(W/P), ch·P·P]; patches row-major over the grid (top-left first),
   * each patch flattened in (channel, y, x) order, matching a Conv2d weight [C, ch, P, P].
   */
  im2patch(out: F32, pixels: F32, B: number, ch: number, H: number, W: number, P: number): void;
  // ---- Backward kernels (training). Parameter gradients accumulate (+=); activation gradients overwrite (=).

  /**
   * Backward of linear. dinp[N,IC] = dout·W (overwritten; skipped when null); dweight[OC,IC] += doutᵀ·inp;
   * dbias[OC] += Σ_n dout[n] (skipped when null).
   */
  linearBackward(
    dinp: F32 | null,
    dweight: F32 | null,
    dbias: F32 | null,
    dout: F32,
    inp: F32,
    weight: F32,
    N: number,
    IC: number,
    OC: number,
  ): void;

  /** Backward of layernorm given the mean / rstd saved by the forward. dinp overwritten; dweight, dbias accumulate. */
  layernormBackward(
    dinp: F32,
    dweight: F32,
    dbias: F32,
    dout: F32,
    inp: F32,
    weight: F32,
    mean: F32,
    rstd: F32,
    N: number,
    C: number,
  ): void;

  /** dinp[n,f] = dout[n,f]·act′(inp[n,f])·mask[f]; inp is the pre-activation. dinp may alias dout. */
  activationBackward(dinp: F32, dout: F32, inp: F32, mask: F32 | null, N: number, F: number, kind: ActKind): void;

  /**
   * Backward of attention given the probs saved by the forward (softmax before the head mask).
   * dqkv [B,T,3·NH·HS] is overwritten. Masked (zero-probability) entries get zero gradient.
   */
  attentionBackward(
    dqkv: F32,
    dout: F32,
    probs: F32,
    qkv: F32,
    headMask: F32 | null,
    B: number,
    T: number,
    NH: number,
    HS: number,
  ): void;

  /** Backward of l2normalize: out is the forward's output, norms its saved norms. dinp overwritten (may alias dout). */
  l2normalizeBackward(dinp: F32, dout: F32, out: F32, norms: F32, N: number, C: number): void;

  /** Backward of im2patch: dpixels [B,ch,H,W] overwritten from dpatches [B,G,ch·P·P]. */
  im2patchBackward(dpixels: F32, dpatches: F32, B: number, ch: number, H: number, W: number, P: number): void;

  /**
   * One AdamW step on N parameters (PyTorch semantics, decoupled weight decay):
   * p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
   * p ← p − lr·(m/(1−β1^step)) / (sqrt(v/(1−β2^step)) + eps). step counts from 1.
   */
  adamw(
    param: F32,
    grad: F32,
    m: F32,
    v: F32,
    N: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;

  /** Σ x² over N elements, accumulated in double (for gradient-norm clipping). */
  sumSquares(x: F32, N: number): number;

  /** g ← coef·(a − b) over N elements; returns Σ (a − b)² accumulated in double (the hidden-state loss). */
  diffSquares(g: F32, a: F32, b: F32, coef: number, N: number): number;

  /** x ← s·x over N elements. */
  scale(x: F32, s: number, N: number): void;
}

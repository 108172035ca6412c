// Compute precision: the fp32|bf16|auto setting, its resolution against the CPU's features, and the bf16
// kernels — the native Kernels with linear and linearBackward routed through oneDNN's matmul (bf16 inputs,
// fp32 accumulation and output). Weights are packed once per tensor into oneDNN's preferred layout and cached
// beside the model; any kernel that updates a tensor in place (adamw, scale, residualAdd) drops its packs, so
// training re-packs after each optimiser step. Layernorm, softmax, attention, residuals and every statistic
// stay fp32. Dims: N rows, IC/OC linear widths, M N K GEMM.
import { readFileSync } from 'node:fs';
import type { F32, Kernels } from './kernels.ts';
import { ConfigError } from '../errors.ts';

export type Precision = 'fp32' | 'bf16';
export type PrecisionSetting = Precision | 'auto';

/** Opaque handle to weights packed by oneDNN (freed when garbage-collected). */
export type PackedWeight = { readonly __packed: unique symbol };

/** The oneDNN part of the native addon (native/gemm_dnnl.c through native/addon_dnnl.h). */
export interface DnnlKernels {
  /**
   * C[M,N] = op(A)·op(B) (+ bias[N]) + beta·C, fp32 out. B is b (op(B) = b [K,N], or bᵀ with b [N,K] when
   * transB) or a packed handle (then b is null). bf16: A and B are rounded to bf16 (nearest even) into
   * scratch (≥ M·K, + K·N when b is given), products accumulate in fp32.
   */
  gemmDnnl(
    c: F32,
    a: F32,
    b: F32 | null,
    packed: PackedWeight | null,
    bias: F32 | null,
    scratch: Uint16Array | null,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    beta: number,
    bf16: boolean,
  ): void;
  /** op(B)[K,N] packed for a matmul with about Mhint rows (b is [K,N], or [N,K] when transB). */
  packWeight(b: F32, K: number, N: number, transB: boolean, bf16: boolean, Mhint: number): PackedWeight;
  /** The instruction set oneDNN dispatches to, and the matmul implementation for this type (null: none). */
  dnnlInfo(bf16: boolean): { isa: string; impl: string | null };
}

export function parsePrecision(v: string | undefined, flag = '--precision'): PrecisionSetting {
  const s = v ?? process.env.MOPE_PRECISION ?? 'fp32';
  if (s === 'fp32' || s === 'bf16' || s === 'auto') return s;
  throw new ConfigError(`${flag} expects fp32, bf16 or auto, found "${s}".`);
}

/** The CPU feature flags of /proc/cpuinfo (empty where it cannot be read). */
export function cpuFeatures(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

/** CPU features that make bf16 GEMMs fast: AMX tiles or AVX512-BF16 dot products. */
export function hasFastBf16(features: Set<string>): boolean {
  return features.has('amx_bf16') || features.has('avx512_bf16');
}

/**
 * auto → bf16 where the CPU has AMX-BF16 or AVX512-BF16, else fp32 (said once through log). An explicit
 * bf16 is honoured on any CPU oneDNN supports (it emulates bf16 on plain AVX-512, slower than fp32).
 */
export function resolvePrecision(
  setting: PrecisionSetting,
  features: Set<string>,
  log?: { info(message: string): void },
): Precision {
  if (setting !== 'auto') return setting;
  const fast = hasFastBf16(features);
  const p: Precision = fast ? 'bf16' : 'fp32';
  log?.info(
    `precision auto: ${p} (${fast ? `CPU has ${['amx_bf16', 'avx512_bf16'].filter((f) => features.has(f)).join(', ')}` : 'CPU has neither AMX-BF16 nor AVX512-BF16'})`,
  );
  return p;
}

/** Rows a pack is tuned for when it is made outside a call (the layout does not depend on it in practice). */
const MHINT = 512;

interface Packs {
  fwd?: PackedWeight; // op(B) = Wᵀ: out = inp·Wᵀ
  bwd?: PackedWeight; // op(B) = W: dinp = dout·W
}

/**
 * The native kernels with linear layers through oneDNN: bf16 (default) or, with bf16 = false, oneDNN's fp32
 * matmul on fp32 packed weights (not the exact OpenBLAS path: another summation order). base must be the native
 * addon (it carries the oneDNN entry points).
 */
export function bf16Kernels(base: Kernels & DnnlKernels, bf16 = true): Kernels & { dropPacked(x?: F32): void } {
  let packs = new WeakMap<F32, Packs>();
  let scratch = new Uint16Array(0);
  const scr = (n: number): Uint16Array | null => {
    if (!bf16) return null;
    if (scratch.length < n) scratch = new Uint16Array(Math.max(n, Math.ceil(scratch.length * 1.25)));
    return scratch;
  };
  // Packed weights by the memory they were packed from. A kernel may update a view of a weight (the optimiser
  // steps q, k and v as three views of one fused qkv buffer) or a buffer holding several weights, so staleness is
  // decided by overlapping byte ranges of the same ArrayBuffer, never by the identity of the array object.
  let packedIn = new WeakMap<ArrayBufferLike, Set<F32>>();
  const overlaps = (w: F32, lo: number, hi: number) => w.byteOffset < hi && lo < w.byteOffset + w.byteLength;
  const entry = (w: F32): Packs => {
    let e = packs.get(w);
    if (!e) {
      packs.set(w, (e = {}));
      let set = packedIn.get(w.buffer);
      if (!set) packedIn.set(w.buffer, (set = new Set()));
      set.add(w);
    }
    return e;
  };
  /** Forgets the packs of every weight overlapping x's memory. */
  const unpack = (x: F32): void => {
    const set = packedIn.get(x.buffer);
    if (!set) return;
    const lo = x.byteOffset,
      hi = lo + x.byteLength;
    for (const w of set) {
      if (overlaps(w, lo, hi)) {
        packs.delete(w);
        set.delete(w);
      }
    }
  };
  // Weights an optimiser updates in place are not packed: oneDNN's reorder into its blocked layout costs
  // about 11 ns per element on Zen 4 (oneDNN 2.6), a third of a training step when redone after every
  // update, while the matmul's own copy of a plain bf16 operand is cheap. They go in unpacked, rounded to bf16
  // in their own layout each call. `changing` holds the byte ranges updated in place, per buffer.
  const changing = new WeakMap<ArrayBufferLike, [number, number][]>();
  const isChanging = (w: F32): boolean => (changing.get(w.buffer) ?? []).some(([lo, hi]) => overlaps(w, lo, hi));
  const drop = (x: F32): void => {
    unpack(x);
    const lo = x.byteOffset,
      hi = lo + x.byteLength;
    let ranges = changing.get(x.buffer);
    if (!ranges) changing.set(x.buffer, (ranges = []));
    if (!ranges.some(([a, b]) => a <= lo && hi <= b)) ranges.push([lo, hi]);
  };
  return {
    ...base,
    linear(out, inp, weight, bias, N, IC, OC) {
      if (N === 0 || OC === 0) return;
      if (isChanging(weight)) {
        base.gemmDnnl(out, inp, weight, null, bias, scr(N * IC + IC * OC), N, OC, IC, false, true, 0, bf16);
        return;
      }
      const e = entry(weight);
      e.fwd ??= base.packWeight(weight, IC, OC, true, bf16, N || MHINT);
      base.gemmDnnl(out, inp, null, e.fwd, bias, scr(N * IC), N, OC, IC, false, true, 0, bf16);
    },
    linearBackward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC) {
      if (N > 0 && IC > 0 && OC > 0) {
        if (dinp && isChanging(weight)) {
          base.gemmDnnl(dinp, dout, weight, null, null, scr(N * OC + OC * IC), N, IC, OC, false, false, 0, bf16);
        } else if (dinp) {
          const e = entry(weight);
          e.bwd ??= base.packWeight(weight, OC, IC, false, bf16, N || MHINT);
          base.gemmDnnl(dinp, dout, null, e.bwd, null, scr(N * OC), N, IC, OC, false, false, 0, bf16);
        }
        // dW[OC,IC] += doutᵀ·inp, accumulated in fp32 (beta = 1)
        if (dweight) {
          base.gemmDnnl(dweight, dout, inp, null, null, scr(OC * N + N * IC), OC, IC, N, true, false, 1, bf16);
        }
        if (dbias) base.linearBackward(null, null, dbias, dout, inp, weight, N, IC, OC);
      } else {
        base.linearBackward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
      }
    },
    adamw(param, grad, m, v, N, lr, beta1, beta2, eps, weightDecay, step) {
      base.adamw(param, grad, m, v, N, lr, beta1, beta2, eps, weightDecay, step);
      drop(param);
    },
    scale(x, s, N) {
      base.scale(x, s, N);
      drop(x);
    },
    residualAdd(out, a, b, s, N) {
      base.residualAdd(out, a, b, s, N);
      drop(out);
    },
    dropPacked(x?: F32) {
      if (x) unpack(x);
      else {
        packs = new WeakMap();
        packedIn = new WeakMap();
      }
    },
  };
}

/** Tells precision-aware kernels that weights changed outside a kernel (e.g. copied in from a checkpoint). */
export function dropPacked(k: Kernels, x?: F32): void {
  (k as Partial<{ dropPacked(x?: F32): void }>).dropPacked?.(x);
}

// PIL-exact separable resampling (Image.resize with BICUBIC or BILINEAR) of interleaved uint8 images (H×W×channels, usually RGB).
//
// Reproduces Pillow's libImaging/Resample.c bit for bit on 8-bit images: per-output-pixel filter
// coefficients computed in double precision with the support widened by the downscale factor
// (antialiasing), normalised to sum 1, converted to fixed point with PRECISION_BITS = 22 (rounded
// half away from zero), a horizontal pass into an intermediate uint8 image (rounded and clipped),
// then a vertical pass. Doing the passes in another order, or keeping the intermediate in float,
// changes pixels by ±1, which is why this is not a generic resampler.

import { ShapeError } from '../errors.ts';
import type { ResampleKernels } from '../engine/kernels.ts';
import { RESAMPLE_PRECISION_BITS, resampleColsU8, resampleRowsU8 } from '../engine/resample.ts';

/** The TypeScript passes (src/engine/resample.ts); the native ones are in a Runtime's kernels. */
export const JS_RESAMPLE: ResampleKernels = { resampleRows: resampleRowsU8, resampleCols: resampleColsU8 };

/** PIL resampling filter codes (Image.Resampling). Only these two are reproduced exactly. */
export const PIL_BILINEAR = 2;
export const PIL_BICUBIC = 3;
export type PilFilter = typeof PIL_BILINEAR | typeof PIL_BICUBIC;

/** An interleaved uint8 image: row-major, `channels` bytes per pixel, no row padding. */
export interface U8Image {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

export interface ResizeOptions {
  /** PIL filter code; default 3 (bicubic). */
  filter?: PilFilter;
  /** Source region [x0, y0, x1, y1] in source pixels (floats allowed, as PIL's `box`); default the whole image. */
  box?: readonly [number, number, number, number];
  /**
   * Compute only this window [x, y, width, height] of the full outW×outH result and return it
   * (default: everything). The bytes equal cropping the full result, since every output pixel
   * depends only on its own coefficients; a center crop thus skips the pixels it would discard.
   */
  region?: readonly [number, number, number, number];
  /** Who runs the two passes: a Runtime's kernels (native, bit-identical) or, by default, the TypeScript twin. */
  kernels?: ResampleKernels;
}

const ONE = 1 << RESAMPLE_PRECISION_BITS;

function bicubicFilter(x: number): number {
  // a = -0.5 (Keys); the operation order follows Pillow so the doubles round identically.
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

function bilinearFilter(x: number): number {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

interface Filter {
  fn: (x: number) => number;
  support: number;
}

function filterFor(code: number): Filter {
  if (code === PIL_BICUBIC) return { fn: bicubicFilter, support: 2.0 };
  if (code === PIL_BILINEAR) return { fn: bilinearFilter, support: 1.0 };
  throw new ShapeError(`resize: filter ${code} is not supported (expected 2 = bilinear or 3 = bicubic)`);
}

/** Fixed-point coefficients for one axis: output i reads `count[i]` inputs from `start[i]`, weights at `k[i*ksize ..]`. */
interface Coeffs {
  ksize: number;
  start: Int32Array;
  count: Int32Array;
  k: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc. `in0`/`in1` are float32 in Pillow, hence fround. */
function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: Filter): Coeffs {
  in0 = Math.fround(in0);
  in1 = Math.fround(in1);
  const scale = Math.fround(in1 - in0) / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const v = filter.fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0.0 ? w[x]! / ww : w[x]!;
      k[base + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax < 0 ? 0 : xmax;
  }
  return { ksize, start, count, k };
}

/**
 * Resize like PIL's `Image.resize((outW, outH), filter, box)` on an 8-bit image with 1-4 channels
 * (PIL does not premultiply RGB, so for RGB input the result is byte-identical to PIL's).
 * Returns a new image; the input is not modified.
 */
export function resizeU8(img: U8Image, outW: number, outH: number, opts: ResizeOptions = {}): U8Image {
  const { width: W, height: H, channels: C, data } = img;
  if (!Number.isInteger(W) || !Number.isInteger(H) || W < 1 || H < 1 || !Number.isInteger(C) || C < 1 || C > 4) {
    throw new ShapeError(`resize: expected a positive integer width/height and 1-4 channels, found ${W}x${H}x${C}`);
  }
  if (data.length !== W * H * C) {
    throw new ShapeError(`resize: pixel buffer has ${data.length} bytes, expected ${W}x${H}x${C} = ${W * H * C}`);
  }
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW < 1 || outH < 1) {
    throw new ShapeError(`resize: output size must be positive integers, found ${outW}x${outH}`);
  }
  const filter = filterFor(opts.filter ?? PIL_BICUBIC);
  const kern = opts.kernels ?? JS_RESAMPLE;
  const box = opts.box ?? [0, 0, W, H];
  const [bx0, by0, bx1, by1] = box;
  if (!(bx0 >= 0 && by0 >= 0 && bx1 <= W && by1 <= H && bx1 - bx0 >= 0 && by1 - by0 >= 0)) {
    throw new ShapeError(`resize: box [${box.join(', ')}] must lie inside the ${W}x${H} image with x0 <= x1, y0 <= y1`);
  }
  const [rx, ry, rw, rh] = opts.region ?? [0, 0, outW, outH];
  if (
    ![rx, ry, rw, rh].every(Number.isInteger) ||
    rx < 0 ||
    ry < 0 ||
    rw < 1 ||
    rh < 1 ||
    rx + rw > outW ||
    ry + rh > outH
  ) {
    throw new ShapeError(
      `resize: region [${[rx, ry, rw, rh].join(', ')}] must be a non-empty integer window inside the ${outW}x${outH} output`,
    );
  }
  const fullRegion = rx === 0 && ry === 0 && rw === outW && rh === outH;
  const fullBox = bx0 === 0 && by0 === 0 && bx1 === W && by1 === H;
  if (fullBox && outW === W && outH === H) {
    if (fullRegion) return { width: W, height: H, channels: C, data: data.slice() };
    return { width: rw, height: rh, channels: C, data: cropRows(data, W, C, rx, ry, rw, rh) };
  }

  // Pillow's test compares box[2] with the *output* width, an upstream oddity kept for parity.
  // A pass that is not needed is an exact copy (one weight of 1.0), so a partial region may run both.
  const needH = !fullRegion || outW !== W || bx0 !== 0 || bx1 !== outW;
  const needV = !fullRegion || outH !== H || by0 !== 0 || by1 !== outH;

  const cv = sliceCoeffs(precomputeCoeffs(H, by0, by1, outH, filter), ry, rh);
  let cur = data;
  let curW = W;
  let rowShift = 0;
  if (needH) {
    const ch = sliceCoeffs(precomputeCoeffs(W, bx0, bx1, outW, filter), rx, rw);
    // Only the source rows the vertical pass will read are resampled horizontally.
    const first = cv.start[0]!;
    const last = cv.start[rh - 1]! + cv.count[rh - 1]!;
    const rows = Math.max(0, last - first);
    const tmp = new Uint8Array(rw * rows * C);
    kern.resampleRows(tmp, data, W, first, rows, rw, C, ch.ksize, ch.start, ch.count, ch.k);
    cur = tmp;
    curW = rw;
    rowShift = first;
  }
  if (needV) {
    const out = new Uint8Array(curW * rh * C);
    kern.resampleCols(out, cur, curW, rh, C, cv.ksize, cv.start, cv.count, cv.k, rowShift);
    return { width: curW, height: rh, channels: C, data: out };
  }
  return {
    width: curW,
    height: needH ? cur.length / (curW * C) : H,
    channels: C,
    data: cur === data ? data.slice() : cur,
  };
}

function sliceCoeffs(c: Coeffs, from: number, n: number): Coeffs {
  if (from === 0 && n === c.start.length) return c;
  return {
    ksize: c.ksize,
    start: c.start.subarray(from, from + n),
    count: c.count.subarray(from, from + n),
    k: c.k.subarray(from * c.ksize, (from + n) * c.ksize),
  };
}

function cropRows(data: Uint8Array, W: number, C: number, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * C);
  for (let r = 0; r < h; r++) out.set(data.subarray(((y + r) * W + x) * C, ((y + r) * W + x + w) * C), r * w * C);
  return out;
}

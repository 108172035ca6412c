// The two passes of Pillow's 8-bit separable resampling (libImaging/Resample.c), fixed-point with PRECISION_BITS = 22:
// the reference twin of the native resampleRows / resampleCols kernels. The coefficients (per output pixel: the
// first input `start[i]`, `count[i]` inputs, weights k[i·ksize ..]) come from src/io/resize.ts, which computes them
// exactly as Pillow does; these loops only apply them. Dims: channels 1-4 interleaved bytes per pixel.

export const RESAMPLE_PRECISION_BITS = 32 - 8 - 2;
const PRECISION_BITS = RESAMPLE_PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

// Sums stay int32 (`| 0`) as in Pillow's C: they cannot overflow for 8-bit inputs, and V8 keeps them in integer registers.
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass: `rows` source rows from `rowOffset` [srcW, channels] → out [rows, outW, channels]. */
export function resampleRowsU8(
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
): void {
  const srcStride = srcW * channels;
  const outStride = outW * channels;
  if (channels === 3) {
    for (let y = 0; y < rows; y++) {
      const srow = (y + rowOffset) * srcStride;
      const orow = y * outStride;
      for (let xx = 0; xx < outW; xx++) {
        const n = count[xx]!;
        const kb = xx * ksize;
        let p = srow + start[xx]! * 3;
        let s0 = HALF,
          s1 = HALF,
          s2 = HALF;
        for (let x = 0; x < n; x++, p += 3) {
          const w = k[kb + x]!;
          s0 = (s0 + src[p]! * w) | 0;
          s1 = (s1 + src[p + 1]! * w) | 0;
          s2 = (s2 + src[p + 2]! * w) | 0;
        }
        const o = orow + xx * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    return;
  }
  for (let y = 0; y < rows; y++) {
    const srow = (y + rowOffset) * srcStride;
    const orow = y * outStride;
    for (let xx = 0; xx < outW; xx++) {
      const n = count[xx]!;
      const kb = xx * ksize;
      const p0 = srow + start[xx]! * channels;
      for (let ch = 0; ch < channels; ch++) {
        let s = HALF;
        for (let x = 0, p = p0 + ch; x < n; x++, p += channels) s = (s + src[p]! * k[kb + x]!) | 0;
        out[orow + xx * channels + ch] = clip8(s);
      }
    }
  }
}

/** Vertical pass: src rows (row r holds source row r + rowShift) [width, channels] → out [outH, width, channels]. */
export function resampleColsU8(
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
): void {
  const stride = width * channels;
  for (let yy = 0; yy < outH; yy++) {
    const n = count[yy]!;
    const kb = yy * ksize;
    const r0 = (start[yy]! - rowShift) * stride;
    const orow = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      for (let y = 0, p = r0 + i; y < n; y++, p += stride) s = (s + src[p]! * k[kb + y]!) | 0;
      out[orow + i] = clip8(s);
    }
  }
}

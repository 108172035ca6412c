/* image.c — the two passes of Pillow's 8-bit separable resampling (libImaging/Resample.c), fixed point with
 * 22 fraction bits: sums start at one half, accumulate in int32 (no overflow for 8-bit inputs and normalised
 * weights) and are shifted and clipped to 0..255. The coefficients come from src/io/resize.ts; these loops only
 * apply them. The TypeScript twin is src/engine/resample.ts (bit-identical, tested). */
#include "mope.h"

#define PRECISION_BITS (32 - 8 - 2)
#define HALF (1 << (PRECISION_BITS - 1))

static inline uint8_t clip8(int32_t s) {
  int32_t v = s >> PRECISION_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void mope_resample_rows_u8(uint8_t *out, const uint8_t *src, int srcW, int rowOffset, int rows, int outW, int ch,
                           int ksize, const int32_t *start, const int32_t *count, const int32_t *k) {
  const int64_t sstride = (int64_t)srcW * ch, ostride = (int64_t)outW * ch;
  for (int y = 0; y < rows; y++) {
    const uint8_t *srow = src + (int64_t)(y + rowOffset) * sstride;
    uint8_t *orow = out + (int64_t)y * ostride;
    for (int xx = 0; xx < outW; xx++) {
      const int32_t *w = k + (int64_t)xx * ksize;
      const uint8_t *p = srow + (int64_t)start[xx] * ch;
      const int n = count[xx];
      if (ch == 3) {
        int32_t s0 = HALF, s1 = HALF, s2 = HALF;
        for (int x = 0; x < n; x++, p += 3) {
          s0 += p[0] * w[x];
          s1 += p[1] * w[x];
          s2 += p[2] * w[x];
        }
        orow[xx * 3] = clip8(s0);
        orow[xx * 3 + 1] = clip8(s1);
        orow[xx * 3 + 2] = clip8(s2);
      } else {
        for (int c = 0; c < ch; c++) {
          int32_t s = HALF;
          for (int x = 0; x < n; x++) s += p[x * ch + c] * w[x];
          orow[xx * ch + c] = clip8(s);
        }
      }
    }
  }
}

void mope_resample_cols_u8(uint8_t *out, const uint8_t *src, int width, int outH, int ch, int ksize,
                           const int32_t *start, const int32_t *count, const int32_t *k, int rowShift) {
  const int64_t stride = (int64_t)width * ch;
  for (int yy = 0; yy < outH; yy++) {
    const int32_t *w = k + (int64_t)yy * ksize;
    const uint8_t *r0 = src + (int64_t)(start[yy] - rowShift) * stride;
    uint8_t *orow = out + (int64_t)yy * stride;
    const int n = count[yy];
    for (int64_t i = 0; i < stride; i++) {
      int32_t s = HALF;
      for (int y = 0; y < n; y++) s += r0[y * stride + i] * w[y];
      orow[i] = clip8(s);
    }
  }
}

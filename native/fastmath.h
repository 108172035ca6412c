/* fastmath.h — vectorisable scalar math shared by the forward and backward kernels (static inline, so gcc
 * can vectorise the loops that call them): expf and the erfc used by exact gelu and its derivative. */
#ifndef MOPE_FASTMATH_H
#define MOPE_FASTMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* expf that gcc can vectorise inside `omp simd` loops (glibc's vector expf needs -ffast-math, which
 * would also break the -inf handling we rely on). Cephes polynomial on r = x - n·ln2, |r| <= ln2/2;
 * max relative error ~2 ulp over [-87, 88]; below -87 returns 0 (true value < 2^-126). */
static inline float fast_expf(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

/* erfc(|x|/√2) for ax = |x| >= 0: Numerical Recipes' erfcc (fractional error < 1.2e-7) on fast_expf, with
 * ax² split exactly (hi + lo, via fma) because an absolute error in the exponent is a relative error in the
 * result. *hi_out / *corr_out return ax² (rounded) and the 1 − lo/2 correction for callers that also need
 * exp(−x²/2). */
static inline float erfc_half_sqrt2(float ax, float *hi_out, float *corr_out) {
  const float z = ax * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float poly = 0.17087277f;
  poly = poly * t - 0.82215223f;
  poly = poly * t + 1.48851587f;
  poly = poly * t - 1.13520398f;
  poly = poly * t + 0.27886807f;
  poly = poly * t - 0.18628806f;
  poly = poly * t + 0.09678418f;
  poly = poly * t + 0.37409196f;
  poly = poly * t + 1.00002368f;
  poly = poly * t - 1.26551223f;
  const float hi = ax * ax, lo = fmaf(ax, ax, -hi); /* z² = (hi + lo)/2 exactly */
  const float corr = 1.0f - 0.5f * lo;
  *hi_out = hi;
  *corr_out = corr;
  return t * fast_expf(poly - 0.5f * hi) * corr;
}

#endif

/* kernels_fwd.c — fused forward kernels, OpenMP over rows (or over (b,h) for attention).
 * Dims: N rows, C width, IC/OC linear widths, F FFN width, B batch, T tokens, NH heads, HS head size,
 * ch/H/W/P image channels, height, width, patch size. Results do not depend on the thread count:
 * each row (or head) is computed by one thread in a fixed order. */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "mope.h"
#include "fastmath.h"
#include "attn_tile.h"

/* Parallelise only when there is enough work to pay for waking the team (elements touched). */
#define PAR_MIN_WORK 16384

/* Exact gelu x·Φ(x) with Φ from erfc(|x|/√2), so the negative tail keeps its relative precision (1 + erf
 * would cancel). erfc(z), z >= 0, is Numerical Recipes' erfcc (fractional error < 1.2e-7) on fast_expf;
 * x² is split exactly (hi + lo, via fma) because an absolute error in the exponent is a relative error in
 * the result. Vectorisable, unlike libm's erfcf. */
static inline float gelu_erf(float x) {
  float hi, corr;
  const float erfc_z = erfc_half_sqrt2(fabsf(x), &hi, &corr);
  const float phi = x >= 0.0f ? 1.0f - 0.5f * erfc_z : 0.5f * erfc_z;
  return x * phi;
}

void mope_linear_fwd(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC) {
  if (N <= 0 || OC <= 0) return;
  if (bias) {
    /* bias goes into C first so sgemm's beta = 1 adds it for free */
#pragma omp parallel for schedule(static) if ((int64_t)N * OC > PAR_MIN_WORK)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, sizeof(float) * OC);
  }
  mope_gemm_f32(out, inp, weight, N, OC, IC, 0, 1, 1.0f, bias ? 1.0f : 0.0f, IC, IC, OC);
}

void mope_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                        int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C > PAR_MIN_WORK)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float *y = out + (size_t)n * C;
    /* two passes in double: exact enough for rows with a large common offset */
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < C; i++) s += x[i];
    double mu = C > 0 ? s / C : 0.0;
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int i = 0; i < C; i++) {
      double d = x[i] - mu;
      v += d * d;
    }
    /* x - m is nearly exact in float (Sterbenz); dm restores the part of the mean that float m drops,
     * which matters when a row's offset is large against its spread */
    float m = (float)mu;
    float dm = (float)(mu - m);
    float rs = (float)(1.0 / sqrt((C > 0 ? v / C : 0.0) + eps));
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = rs;
#pragma omp simd
    for (int i = 0; i < C; i++) y[i] = ((x[i] - m) - dm) * rs * weight[i] + bias[i];
  }
}

void mope_activation_fwd(float *out, const float *inp, const float *mask, int N, int F, int kind) {
#pragma omp parallel for schedule(static) if ((int64_t)N * F > PAR_MIN_WORK)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * F;
    float *y = out + (size_t)n * F; /* may alias x: each element is read before it is written */
    if (kind == 0) {
#pragma omp simd
      for (int f = 0; f < F; f++) y[f] = x[f] / (1.0f + fast_expf(-1.702f * x[f]));
    } else {
#pragma omp simd
      for (int f = 0; f < F; f++) y[f] = gelu_erf(x[f]);
    }
    if (mask) {
#pragma omp simd
      for (int f = 0; f < F; f++) y[f] *= mask[f];
    }
  }
}

/* Attention works on 16-float vectors (attn_tile.h) with several independent accumulators held in registers;
 * plain loops over j or e would carry each partial sum through memory and stall on store-to-load forwarding. */

/* Keys of one head are copied transposed (Kᵀ [HS,Tp], Tp = T rounded up to 16, zero padded) into a stack
 * tile when it is at most this many floats (64 KiB); queries then go four at a time through the register
 * tiles of attn_tile.h. Larger heads fall back to one row at a time and one contiguous dot product per key. */
#define ATTN_KT_MAX 16384

/* o[e] = hm·Σ_{j<jn} p[j]·v_j[e], v_j = v + j·ldv (the one-row fallback). */
static void attn_pv(float *restrict o, const float *restrict p, const float *restrict v, size_t ldv, int jn, int HS,
                    float hm) {
  int e0 = 0;
  for (; e0 + 16 <= HS; e0 += 16) {
    v16 a0 = {0};
    for (int j = 0; j < jn; j++) a0 += p[j] * LD(v + (size_t)j * ldv + e0);
    ST(o + e0, hm * a0);
  }
  for (; e0 < HS; e0++) {
    float a = 0.0f;
    for (int j = 0; j < jn; j++) a += p[j] * v[(size_t)j * ldv + e0];
    o[e0] = hm * a;
  }
}

/* Softmax of one row of scores p[0..jn) in place (keys with km[j] == 0 masked); returns 0 when every key is
 * masked (p is then all zeros), else 1. */
static int softmax_row(float *restrict p, const float *restrict km, int jn) {
  if (km) {
#pragma omp simd
    for (int j = 0; j < jn; j++) p[j] = km[j] != 0.0f ? p[j] : -INFINITY;
  }
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < jn; j++) mx = p[j] > mx ? p[j] : mx; /* not fmaxf: a libm call unless NaNs are ruled out */
  if (mx == -INFINITY) {                                   /* every key masked: zeros, not NaN */
    for (int j = 0; j < jn; j++) p[j] = 0.0f;
    return 0;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < jn; j++) {
    float e = p[j] == -INFINITY ? 0.0f : fast_expf(p[j] - mx);
    p[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int j = 0; j < jn; j++) p[j] *= inv;
  return 1;
}

void mope_attention_fwd(float *out, float *probs, const float *qkv, const float *keyMask, const float *headMask, int B,
                        int T, int NH, int HS, int causal) {
  const int C = NH * HS;
  const size_t C3 = (size_t)3 * C;
  const float scale = 1.0f / sqrtf((float)HS);
  const int64_t work = (int64_t)B * NH * T * T * HS;
  const int Tp = (T + 15) & ~15;
  const int use_kt = (int64_t)HS * Tp <= ATTN_KT_MAX;
#pragma omp parallel for schedule(static) if (work > PAR_MIN_WORK)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const float *km = keyMask ? keyMask + (size_t)b * T : NULL;
    const float hm = headMask ? headMask[h] : 1.0f;
    const float *base = qkv + (size_t)b * T * C3 + (size_t)h * HS;
    const float *vbase = base + 2 * (size_t)C;
    float *pbase = probs ? probs + (size_t)bh * T * T : NULL;
    if (use_kt) {
      float kt[(size_t)HS * Tp]; /* Kᵀ of this head */
      float qs[TILE_R * HS], ot[TILE_R * HS], s[TILE_R * Tp];
      for (int j = 0; j < T; j++) {
        /* rows are 3·C floats apart, too far for the hardware prefetcher: fetch the q, k and v of a row
         * a few rows ahead, so the copy below and the tiles after it do not wait on memory */
        if (j + ATTN_PREFETCH < T) prefetch_row(base + (size_t)(j + ATTN_PREFETCH) * C3, C, HS);
        const float *k = base + (size_t)j * C3 + C;
        for (int e = 0; e < HS; e++) kt[(size_t)e * Tp + j] = k[e];
      }
      for (int e = 0; e < HS; e++)
        for (int j = T; j < Tp; j++) kt[(size_t)e * Tp + j] = 0.0f;
      for (int i0 = 0; i0 < T; i0 += TILE_R) {
        const int nr = T - i0 < TILE_R ? T - i0 : TILE_R;
        const int jmax = causal ? i0 + nr : T; /* keys past jmax are masked by causality for every row */
        for (int r = 0; r < TILE_R; r++) {
          const float *q = base + (size_t)(r < nr ? i0 + r : i0) * C3;
          for (int e = 0; e < HS; e++) qs[r * HS + e] = q[e] * scale;
        }
        tile_rows_bt(s, Tp, qs, kt, Tp, HS, jmax);
        for (int r = 0; r < TILE_R; r++) {
          float *p = s + (size_t)r * Tp;
          if (r >= nr) {
            for (int j = 0; j < jmax; j++) p[j] = 0.0f;
            continue;
          }
          const int i = i0 + r, jn = causal ? i + 1 : T;
          softmax_row(p, km, jn);
          for (int j = jn; j < jmax; j++) p[j] = 0.0f;
          if (pbase) {
            float *pout = pbase + (size_t)i * T;
            for (int j = 0; j < jmax; j++) pout[j] = p[j];
            for (int j = jmax; j < T; j++) pout[j] = 0.0f;
          }
        }
        if (hm == 0.0f) {
          for (int r = 0; r < nr; r++)
            memset(out + ((size_t)b * T + i0 + r) * C + (size_t)h * HS, 0, sizeof(float) * HS);
          continue;
        }
        tile_rows_pv(ot, s, Tp, vbase, C3, jmax, HS);
        for (int r = 0; r < nr; r++) {
          float *o = out + ((size_t)b * T + i0 + r) * C + (size_t)h * HS;
          for (int e = 0; e < HS; e++) o[e] = hm * ot[r * HS + e];
        }
      }
      continue;
    }
    float srow[Tp]; /* scores, then probabilities; T <= MOPE_ATTN_MAX_T (addon.c) */
    for (int i = 0; i < T; i++) {
      const float *q = base + (size_t)i * C3;
      float *o = out + ((size_t)b * T + i) * C + (size_t)h * HS;
      const int jn = causal ? i + 1 : T; /* keys j >= jn are masked by causality */
      float *p = srow;
      for (int j = 0; j < jn; j++) {
        const float *k = base + (size_t)j * C3 + C;
        float d = 0.0f;
#pragma omp simd reduction(+ : d)
        for (int e = 0; e < HS; e++) d += q[e] * k[e];
        p[j] = d * scale;
      }
      const int any = softmax_row(p, km, jn);
      if (pbase) {
        float *pout = pbase + (size_t)i * T;
        for (int j = 0; j < jn; j++) pout[j] = p[j];
        for (int j = jn; j < T; j++) pout[j] = 0.0f;
      }
      if (!any || hm == 0.0f) {
        for (int e = 0; e < HS; e++) o[e] = 0.0f;
        continue;
      }
      attn_pv(o, p, vbase, C3, jn, HS, hm);
    }
  }
}

void mope_residual_add(float *out, const float *a, const float *b, float scale, int64_t N) {
#pragma omp parallel for simd schedule(static) if (N > 4 * PAR_MIN_WORK)
  for (int64_t i = 0; i < N; i++) out[i] = a[i] + scale * b[i];
}

void mope_l2normalize(float *out, float *norms, const float *inp, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C > PAR_MIN_WORK)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float *y = out + (size_t)n * C;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < C; i++) s += (double)x[i] * x[i];
    double nrm = sqrt(s);
    if (nrm < 1e-12) nrm = 1e-12;
    if (norms) norms[n] = (float)nrm;
    const float inv = (float)(1.0 / nrm);
#pragma omp simd
    for (int i = 0; i < C; i++) y[i] = x[i] * inv;
  }
}

void mope_im2patch(float *out, const float *pixels, int B, int ch, int H, int W, int P) {
  const int GH = H / P, GW = W / P, G = GH * GW;
  const size_t D = (size_t)ch * P * P;
#pragma omp parallel for schedule(static) if ((int64_t)B * ch * H * W > PAR_MIN_WORK)
  for (int bg = 0; bg < B * G; bg++) {
    const int b = bg / G, g = bg % G, gy = g / GW, gx = g % GW;
    float *o = out + (size_t)bg * D;
    for (int c = 0; c < ch; c++)
      for (int y = 0; y < P; y++) {
        const float *src = pixels + (((size_t)b * ch + c) * H + (size_t)gy * P + y) * W + (size_t)gx * P;
        memcpy(o + ((size_t)c * P + y) * P, src, sizeof(float) * P);
      }
  }
}

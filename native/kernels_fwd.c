/* kernels_fwd.c — fused forward kernels, OpenMP over rows (or over (b,h) for attention).
 * Dims: N rows, C width, IC/OC linear widths, F FFN width, B batch, T tokens, NH heads, HS head size,
 * ch/H/W/P image channels, height, width, patch size. Results do not depend on the thread count:
 * each row (or head) is computed by one thread in a fixed order. */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "mope.h"
#include "fastmath.h"

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

/* Attention works on 16-float vectors (GCC vector extension: AVX-512 registers here, pairs of AVX2 registers
 * elsewhere) with several independent accumulators held in registers; plain loops over j or e would carry
 * each partial sum through memory and stall on store-to-load forwarding. */
typedef float v16 __attribute__((vector_size(64), aligned(4), may_alias));
#define LD(p) (*(const v16 *)(p))
#define ST(p, x) (*(v16 *)(p) = (x))

/* Keys of one head are copied transposed (Kᵀ [HS,Tp], Tp = T rounded up to 16, zero padded) into a stack
 * tile when it is at most this many floats (64 KiB), so q·kᵀ runs along contiguous keys. Larger heads fall
 * back to one contiguous dot product per key. */
#define ATTN_KT_MAX 16384

/* s[j] = scale·q·k_j for j < jn (rounded up to 16; entries past jn are junk the caller ignores). */
static void attn_scores_kt(float *restrict s, const float *restrict kt, int Tp, const float *restrict q, float scale,
                           int HS, int jn) {
  int j0 = 0;
  for (; j0 + 48 < jn; j0 += 64) {
    v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int e = 0; e < HS; e++) {
      const float qe = q[e] * scale;
      const float *kr = kt + (size_t)e * Tp + j0;
      a0 += qe * LD(kr);
      a1 += qe * LD(kr + 16);
      a2 += qe * LD(kr + 32);
      a3 += qe * LD(kr + 48);
    }
    ST(s + j0, a0);
    ST(s + j0 + 16, a1);
    ST(s + j0 + 32, a2);
    ST(s + j0 + 48, a3);
  }
  for (; j0 < jn; j0 += 16) {
    v16 a0 = {0}, a1 = {0}; /* even and odd e, to halve the FMA latency chain */
    int e = 0;
    for (; e + 1 < HS; e += 2) {
      a0 += (q[e] * scale) * LD(kt + (size_t)e * Tp + j0);
      a1 += (q[e + 1] * scale) * LD(kt + (size_t)(e + 1) * Tp + j0);
    }
    if (e < HS) a0 += (q[e] * scale) * LD(kt + (size_t)e * Tp + j0);
    ST(s + j0, a0 + a1);
  }
}

/* o[e] = hm·Σ_{j<jn} p[j]·v_j[e], v_j = v + j·ldv. */
static void attn_pv(float *restrict o, const float *restrict p, const float *restrict v, size_t ldv, int jn, int HS,
                    float hm) {
  int e0 = 0;
  for (; e0 + 64 <= HS; e0 += 64) {
    v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int j = 0; j < jn; j++) {
      const float pj = p[j];
      const float *vr = v + (size_t)j * ldv + e0;
      a0 += pj * LD(vr);
      a1 += pj * LD(vr + 16);
      a2 += pj * LD(vr + 32);
      a3 += pj * LD(vr + 48);
    }
    ST(o + e0, hm * a0);
    ST(o + e0 + 16, hm * a1);
    ST(o + e0 + 32, hm * a2);
    ST(o + e0 + 48, hm * a3);
  }
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
    float srow[Tp];                         /* scores, then probabilities; T <= MOPE_ATTN_MAX_T (addon.c) */
    float kt[use_kt ? (size_t)HS * Tp : 1]; /* Kᵀ of this head */
    if (use_kt) {
      for (int j = 0; j < T; j++) {
        const float *k = base + (size_t)j * C3 + C;
        for (int e = 0; e < HS; e++) kt[(size_t)e * Tp + j] = k[e];
      }
      for (int e = 0; e < HS; e++)
        for (int j = T; j < Tp; j++) kt[(size_t)e * Tp + j] = 0.0f;
    }
    for (int i = 0; i < T; i++) {
      const float *q = base + (size_t)i * C3;
      float *o = out + ((size_t)b * T + i) * C + (size_t)h * HS;
      const int jn = causal ? i + 1 : T; /* keys j >= jn are masked by causality */
      float *p = srow;
      if (use_kt) {
        attn_scores_kt(p, kt, Tp, q, scale, HS, jn);
      } else {
        for (int j = 0; j < jn; j++) {
          const float *k = base + (size_t)j * C3 + C;
          float d = 0.0f;
#pragma omp simd reduction(+ : d)
          for (int e = 0; e < HS; e++) d += q[e] * k[e];
          p[j] = d * scale;
        }
      }
      if (km) {
#pragma omp simd
        for (int j = 0; j < jn; j++) p[j] = km[j] != 0.0f ? p[j] : -INFINITY;
      }
      float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
      for (int j = 0; j < jn; j++) mx = fmaxf(mx, p[j]);
      float *pout = probs ? probs + ((size_t)bh * T + i) * T : NULL;
      if (mx == -INFINITY) { /* every key masked: zeros, not NaN */
        for (int e = 0; e < HS; e++) o[e] = 0.0f;
        if (pout)
          for (int j = 0; j < T; j++) pout[j] = 0.0f;
        continue;
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
      if (pout) {
        for (int j = 0; j < jn; j++) pout[j] = p[j];
        for (int j = jn; j < T; j++) pout[j] = 0.0f;
      }
      if (hm == 0.0f) {
        for (int e = 0; e < HS; e++) o[e] = 0.0f;
        continue;
      }
      attn_pv(o, p, base + 2 * (size_t)C, C3, jn, HS, hm);
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

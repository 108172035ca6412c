/* kernels_bwd.c — backward of the fused forward kernels (kernels_fwd.c), OpenMP over rows, column blocks or
 * (b,h). Dims: N rows, C width, IC/OC linear widths, F FFN width, B batch, T tokens, NH heads, HS head size,
 * ch/H/W/P image channels, height, width, patch size. Parameter gradients accumulate (+=), activation
 * gradients are overwritten (=). Results do not depend on the thread count: every output element is summed
 * by one thread in a fixed order (parameter gradients over column blocks, not over per-thread partials). */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "mope.h"
#include "fastmath.h"
#include "attn_tile.h"

/* Parallelise only when there is enough work to pay for waking the team (elements touched). */
#define PAR_MIN_WORK 16384
/* Columns per block when a parameter gradient is reduced over rows; the block's sums stay in double. */
#define COL_BLOCK 64

/* d/dx x·Φ(x) = Φ(x) + x·φ(x), with Φ from the same erfc as the forward's gelu_erf and x² split exactly
 * (hi + lo) so the Gaussian keeps its relative precision in the tails. */
static inline float gelu_erf_grad(float x) {
  float hi, corr;
  const float erfc_z = erfc_half_sqrt2(fabsf(x), &hi, &corr);
  const float cdf = x >= 0.0f ? 1.0f - 0.5f * erfc_z : 0.5f * erfc_z;
  const float pdf = 0.39894228040143268f * fast_expf(-0.5f * hi) * corr;
  return cdf + x * pdf;
}

/* d/dx x·σ(1.702x) = σ + 1.702·x·σ·(1−σ), with 1−σ = e·σ (e = exp(−1.702x)) so it does not cancel. */
static inline float quick_gelu_grad(float x) {
  const float e = fast_expf(-1.702f * x);
  const float s = 1.0f / (1.0f + e);
  return s * (1.0f + 1.702f * x * (e * s)); /* e·s first: e alone overflows float·x for x << 0 */
}

/* sum[c] += Σ_n a[n,c] for c < C (a has row stride C), one column block per thread, double inside a block. */
static void col_sums(float *sum, const float *a, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C > PAR_MIN_WORK)
  for (int c0 = 0; c0 < C; c0 += COL_BLOCK) {
    const int w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
    double acc[COL_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
      const float *r = a + (size_t)n * C + c0;
#pragma omp simd
      for (int i = 0; i < w; i++) acc[i] += r[i];
    }
    for (int i = 0; i < w; i++) sum[c0 + i] += (float)acc[i];
  }
}

void mope_linear_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int IC, int OC) {
  /* dinp[N,IC] = dout[N,OC]·W[OC,IC] */
  if (dinp) mope_gemm_f32(dinp, dout, weight, N, IC, OC, 0, 0, 1.0f, 0.0f, OC, IC, IC);
  /* dW[OC,IC] += dout[N,OC]ᵀ·inp[N,IC] */
  if (dweight) mope_gemm_f32(dweight, dout, inp, OC, IC, N, 1, 0, 1.0f, 1.0f, OC, IC, IC);
  if (dbias) col_sums(dbias, dout, N, OC);
}

void mope_layernorm_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C) {
  /* 1. xhat into dinp (scratch until step 3), exactly as the forward forms it: x − m is nearly exact in
   *    float and dm restores the part of the row mean that the saved float m dropped. */
#pragma omp parallel for schedule(static) if ((int64_t)N * C > PAR_MIN_WORK)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float *xh = dinp + (size_t)n * C;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < C; i++) s += x[i];
    const float m = mean[n], rs = rstd[n];
    const float dm = (float)((C > 0 ? s / C : 0.0) - m);
#pragma omp simd
    for (int i = 0; i < C; i++) xh[i] = ((x[i] - m) - dm) * rs;
  }
  /* 2. parameter gradients, reduced over rows one column block per thread */
#pragma omp parallel for schedule(static) if ((int64_t)N * C > PAR_MIN_WORK)
  for (int c0 = 0; c0 < C; c0 += COL_BLOCK) {
    const int w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
    double aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
      const float *g = dout + (size_t)n * C + c0, *xh = dinp + (size_t)n * C + c0;
#pragma omp simd
      for (int i = 0; i < w; i++) {
        aw[i] += g[i] * xh[i];
        ab[i] += g[i];
      }
    }
    for (int i = 0; i < w; i++) {
      dweight[c0 + i] += (float)aw[i];
      dbias[c0 + i] += (float)ab[i];
    }
  }
  /* 3. dinp = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)), dxhat = dout·weight */
#pragma omp parallel for schedule(static) if ((int64_t)N * C > PAR_MIN_WORK)
  for (int n = 0; n < N; n++) {
    const float *g = dout + (size_t)n * C;
    float *dx = dinp + (size_t)n * C; /* holds xhat on entry */
    double s1 = 0.0, s2 = 0.0;
#pragma omp simd reduction(+ : s1, s2)
    for (int i = 0; i < C; i++) {
      const float d = g[i] * weight[i];
      s1 += d;
      s2 += d * dx[i];
    }
    const float m1 = C > 0 ? (float)(s1 / C) : 0.0f, m2 = C > 0 ? (float)(s2 / C) : 0.0f;
    const float rs = rstd[n];
#pragma omp simd
    for (int i = 0; i < C; i++) dx[i] = (g[i] * weight[i] - m1 - dx[i] * m2) * rs;
  }
}

void mope_activation_bwd(float *dinp, const float *dout, const float *inp, const float *mask, int N, int F, int kind) {
#pragma omp parallel for schedule(static) if ((int64_t)N * F > PAR_MIN_WORK)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * F, *g = dout + (size_t)n * F;
    float *dx = dinp + (size_t)n * F; /* may alias g: each element is read before it is written */
    if (kind == 0) {
      if (mask) {
#pragma omp simd
        for (int f = 0; f < F; f++) dx[f] = g[f] * quick_gelu_grad(x[f]) * mask[f];
      } else {
#pragma omp simd
        for (int f = 0; f < F; f++) dx[f] = g[f] * quick_gelu_grad(x[f]);
      }
    } else {
      if (mask) {
#pragma omp simd
        for (int f = 0; f < F; f++) dx[f] = g[f] * gelu_erf_grad(x[f]) * mask[f];
      } else {
#pragma omp simd
        for (int f = 0; f < F; f++) dx[f] = g[f] * gelu_erf_grad(x[f]);
      }
    }
  }
}

/* Attention works on 16-float vectors (attn_tile.h) with accumulators held in registers: plain loops that
 * reduce over j or e would carry each partial sum through memory. */

/* Vᵀ of one head [HS,Tp] (Tp = T rounded up to 16, zero padded) is copied into a stack tile when it is at
 * most this many floats (64 KiB), so dO·vᵀ runs along contiguous keys; larger heads use one dot per key. */
#define ATTN_VT_MAX 16384

/* dp[j] = hm·g·v_j for j < jn (rounded up to 16; entries past jn are junk the caller ignores). */
static void attn_dp_vt(float *restrict dp, const float *restrict vt, int Tp, const float *restrict g, float hm, int HS,
                       int jn) {
  int j0 = 0;
  for (; j0 + 16 < jn; j0 += 32) {
    v16 a0 = {0}, a1 = {0};
    for (int e = 0; e < HS; e++) {
      const float ge = g[e] * hm;
      a0 += ge * LD(vt + (size_t)e * Tp + j0);
      a1 += ge * LD(vt + (size_t)e * Tp + j0 + 16);
    }
    ST(dp + j0, a0);
    ST(dp + j0 + 16, a1);
  }
  for (; j0 < jn; j0 += 16) {
    v16 a0 = {0}, a1 = {0}; /* even and odd e, to halve the FMA latency chain */
    int e = 0;
    for (; e + 1 < HS; e += 2) {
      a0 += (g[e] * hm) * LD(vt + (size_t)e * Tp + j0);
      a1 += (g[e + 1] * hm) * LD(vt + (size_t)(e + 1) * Tp + j0);
    }
    if (e < HS) a0 += (g[e] * hm) * LD(vt + (size_t)e * Tp + j0);
    ST(dp + j0, a0 + a1);
  }
}

/* o[e] = Σ_{j<jn} w[j]·k_j[e], k_j = k + j·ldk (overwrites o). */
static void attn_wk(float *restrict o, const float *restrict w, const float *restrict k, size_t ldk, int jn, int HS) {
  int e0 = 0;
  for (; e0 + 64 <= HS; e0 += 64) {
    v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int j = 0; j < jn; j++) {
      const float wj = w[j];
      const float *kr = k + (size_t)j * ldk + e0;
      a0 += wj * LD(kr);
      a1 += wj * LD(kr + 16);
      a2 += wj * LD(kr + 32);
      a3 += wj * LD(kr + 48);
    }
    ST(o + e0, a0);
    ST(o + e0 + 16, a1);
    ST(o + e0 + 32, a2);
    ST(o + e0 + 48, a3);
  }
  for (; e0 + 16 <= HS; e0 += 16) {
    v16 a0 = {0};
    for (int j = 0; j < jn; j++) a0 += w[j] * LD(k + (size_t)j * ldk + e0);
    ST(o + e0, a0);
  }
  for (; e0 < HS; e0++) {
    float a = 0.0f;
    for (int j = 0; j < jn; j++) a += w[j] * k[(size_t)j * ldk + e0];
    o[e0] = a;
  }
}

/* Heads of at most this many tokens (and HS·Tp <= ATTN_VT_MAX) take the tiled path: dS and P of the head are
 * kept transposed in two stack tiles [T,Tp] (≤ 128 KiB together), so dK = dSᵀ·Q and dV = hm·Pᵀ·dO run as the
 * same four-row register tiles as dQ = dS·K. Longer sequences use the row-at-a-time path below. */
#define ATTN_TILE_MAX_T 128

/* The tiled backward of one head: dq, dk, dv rows of head h in batch b are overwritten. P [T,T] probabilities,
 * base / dbase point at the head's q column block in qkv / dqkv, g at its column block of dout. */
static void attn_bwd_head_tiled(float *dbase, const float *base, const float *g, const float *P, int T, int C, int HS,
                                float hm, float scale) {
  const size_t C3 = (size_t)3 * C;
  const int Tp = (T + 15) & ~15, Tr = (T + TILE_R - 1) / TILE_R * TILE_R;
  float vt[(size_t)HS * Tp];                               /* Vᵀ */
  float dst[(size_t)Tr * Tp], pt[(size_t)Tr * Tp];         /* dSᵀ·scale and hm·Pᵀ, rows past T zero */
  float gs[TILE_R * HS], dp[TILE_R * Tp], ot[TILE_R * HS]; /* hm·dO rows, dP rows, an output tile */
  for (int j = 0; j < T; j++) {
    if (j + ATTN_PREFETCH < T) prefetch_row(base + (size_t)(j + ATTN_PREFETCH) * C3, C, HS);
    const float *v = base + (size_t)j * C3 + 2 * (size_t)C;
    for (int e = 0; e < HS; e++) vt[(size_t)e * Tp + j] = v[e];
  }
  for (int e = 0; e < HS; e++)
    for (int j = T; j < Tp; j++) vt[(size_t)e * Tp + j] = 0.0f;
  /* rows of dSᵀ, Pᵀ past T are read by the last tile (their outputs are dropped): zero them; every entry below T
   * is written by the loop below */
  memset(dst + (size_t)T * Tp, 0, sizeof(float) * (size_t)(Tr - T) * Tp);
  memset(pt + (size_t)T * Tp, 0, sizeof(float) * (size_t)(Tr - T) * Tp);
  for (int i0 = 0; i0 < T; i0 += TILE_R) {
    const int nr = T - i0 < TILE_R ? T - i0 : TILE_R;
    int jn[TILE_R], jmax = 0;
    for (int r = 0; r < TILE_R; r++) {
      const int i = r < nr ? i0 + r : i0;
      const float *p = P + (size_t)i * T, *gr = g + (size_t)i * C;
      int n = T; /* keys past the last nonzero probability (causal, padding) contribute nothing */
      while (n > 0 && p[n - 1] == 0.0f) n--;
      jn[r] = r < nr ? n : 0;
      if (jn[r] > jmax) jmax = jn[r];
      for (int e = 0; e < HS; e++) gs[r * HS + e] = gr[e] * hm;
    }
    /* dP[i,j] = hm·dO_i·v_j */
    tile_rows_bt(dp, Tp, gs, vt, Tp, HS, jmax);
    for (int r = 0; r < TILE_R; r++) {
      float *d = dp + (size_t)r * Tp;
      const int i = i0 + r;
      if (r >= nr) continue;
      const float *p = P + (size_t)i * T;
      for (int j = 0; j < T; j++) pt[(size_t)j * Tp + i] = hm * p[j]; /* p is zero from jn on */
      if (jn[r] == 0) {                                               /* a fully masked row: zero gradients */
        for (int j = 0; j < jmax; j++) d[j] = 0.0f;
        for (int j = 0; j < T; j++) dst[(size_t)j * Tp + i] = 0.0f;
        continue;
      }
      /* dS = P ⊙ (dP − Σ_j dP·P); zero-probability (masked) keys get exactly zero */
      double rs = 0.0;
#pragma omp simd reduction(+ : rs)
      for (int j = 0; j < jn[r]; j++) rs += (double)(d[j] * p[j]);
      const float rf = (float)rs;
#pragma omp simd
      for (int j = 0; j < jn[r]; j++) d[j] = p[j] * (d[j] - rf) * scale;
      for (int j = jn[r]; j < jmax; j++) d[j] = 0.0f;
      for (int j = 0; j < T; j++) dst[(size_t)j * Tp + i] = j < jmax ? d[j] : 0.0f;
    }
    /* dq_i = scale·Σ_j dS[i,j]·k_j */
    tile_rows_pv(ot, dp, Tp, base + C, C3, jmax, HS);
    for (int r = 0; r < nr; r++) memcpy(dbase + (size_t)(i0 + r) * C3, ot + r * HS, sizeof(float) * HS);
  }
  for (int j0 = 0; j0 < T; j0 += TILE_R) {
    const int nr = T - j0 < TILE_R ? T - j0 : TILE_R;
    /* dk_j = scale·Σ_i dS[i,j]·q_i, dv_j = hm·Σ_i P[i,j]·dO_i (rows i of dSᵀ, Pᵀ past T are zero) */
    tile_rows_pv(ot, dst + (size_t)j0 * Tp, Tp, base, C3, T, HS);
    for (int r = 0; r < nr; r++) memcpy(dbase + (size_t)(j0 + r) * C3 + C, ot + r * HS, sizeof(float) * HS);
    tile_rows_pv(ot, pt + (size_t)j0 * Tp, Tp, g, C, T, HS);
    for (int r = 0; r < nr; r++) memcpy(dbase + (size_t)(j0 + r) * C3 + 2 * (size_t)C, ot + r * HS, sizeof(float) * HS);
  }
}

void mope_attention_bwd(float *dqkv, const float *dout, const float *probs, const float *qkv, const float *headMask,
                        int B, int T, int NH, int HS) {
  const int C = NH * HS;
  const size_t C3 = (size_t)3 * C;
  const float scale = 1.0f / sqrtf((float)HS);
  const int64_t work = (int64_t)B * NH * T * T * HS;
  const int Tp = (T + 15) & ~15;
  const int use_vt = (int64_t)HS * Tp <= ATTN_VT_MAX, use_tile = use_vt && T <= ATTN_TILE_MAX_T;
#pragma omp parallel for schedule(static) if (work > PAR_MIN_WORK)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const float hm = headMask ? headMask[h] : 1.0f;
    const float *base = qkv + (size_t)b * T * C3 + (size_t)h * HS;
    float *dbase = dqkv + (size_t)b * T * C3 + (size_t)h * HS;
    const float *P = probs + (size_t)bh * T * T;
    if (use_tile && hm != 0.0f && T > 0) { /* overwrites every row of the head's q, k and v blocks */
      attn_bwd_head_tiled(dbase, base, dout + (size_t)b * T * C + (size_t)h * HS, P, T, C, HS, hm, scale);
      continue;
    }
    /* this thread owns the q, k and v column blocks of head h in batch b: zero them, then accumulate */
    for (int t = 0; t < T; t++) {
      float *d = dbase + (size_t)t * C3;
      memset(d, 0, sizeof(float) * HS);
      memset(d + C, 0, sizeof(float) * HS);
      memset(d + 2 * (size_t)C, 0, sizeof(float) * HS);
    }
    if (hm == 0.0f || T == 0) continue;
    float dp[Tp];                           /* one row of dP, then dS·scale; T <= MOPE_ATTN_MAX_T (addon.c) */
    float vt[use_vt ? (size_t)HS * Tp : 1]; /* Vᵀ of this head */
    if (use_vt) {
      for (int j = 0; j < T; j++) {
        const float *v = base + (size_t)j * C3 + 2 * (size_t)C;
        for (int e = 0; e < HS; e++) vt[(size_t)e * Tp + j] = v[e];
      }
      for (int e = 0; e < HS; e++)
        for (int j = T; j < Tp; j++) vt[(size_t)e * Tp + j] = 0.0f;
    }
    for (int i = 0; i < T; i++) {
      const float *p = P + (size_t)i * T;
      int jn = T; /* keys past the last nonzero probability (causal, padding) contribute nothing */
      while (jn > 0 && p[jn - 1] == 0.0f) jn--;
      if (jn == 0) continue; /* fully masked row: zero gradients */
      const float *q = base + (size_t)i * C3;
      const float *g = dout + ((size_t)b * T + i) * C + (size_t)h * HS;
      /* dP[i,j] = hm·dO_i·v_j */
      if (use_vt) {
        attn_dp_vt(dp, vt, Tp, g, hm, HS, jn);
      } else {
        for (int j = 0; j < jn; j++) {
          const float *v = base + (size_t)j * C3 + 2 * (size_t)C;
          float d = 0.0f;
#pragma omp simd reduction(+ : d)
          for (int e = 0; e < HS; e++) d += g[e] * v[e];
          dp[j] = hm * d;
        }
      }
      /* dS = P ⊙ (dP − Σ_j dP·P); zero-probability (masked) keys get exactly zero */
      double r = 0.0;
#pragma omp simd reduction(+ : r)
      for (int j = 0; j < jn; j++) r += (double)(dp[j] * p[j]);
      const float rf = (float)r;
#pragma omp simd
      for (int j = 0; j < jn; j++) dp[j] = p[j] * (dp[j] - rf) * scale;
      /* dq_i = scale·Σ_j dS[i,j]·k_j */
      attn_wk(dbase + (size_t)i * C3, dp, base + C, C3, jn, HS);
      /* dk_j += scale·dS[i,j]·q_i, dv_j += hm·P[i,j]·dO_i */
      for (int j = 0; j < jn; j++) {
        const float pj = p[j];
        if (pj == 0.0f) continue;
        const float ds = dp[j], pv = pj * hm;
        float *dk = dbase + (size_t)j * C3 + C, *dv = dk + C;
#pragma omp simd
        for (int e = 0; e < HS; e++) {
          dk[e] += ds * q[e];
          dv[e] += pv * g[e];
        }
      }
    }
  }
}

void mope_l2normalize_bwd(float *dinp, const float *dout, const float *out, const float *norms, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C > PAR_MIN_WORK)
  for (int n = 0; n < N; n++) {
    const float *y = out + (size_t)n * C, *g = dout + (size_t)n * C;
    float *dx = dinp + (size_t)n * C; /* may alias g: the dot is complete before anything is written */
    double d = 0.0;
#pragma omp simd reduction(+ : d)
    for (int i = 0; i < C; i++) d += (double)y[i] * g[i];
    const float nrm = norms[n];
    /* a norm floored at 1e-12 by the forward is a constant: out = x/1e-12, no projection */
    const float df = nrm <= 1e-12f ? 0.0f : (float)d;
    const float inv = (float)(1.0 / nrm);
#pragma omp simd
    for (int i = 0; i < C; i++) dx[i] = (g[i] - y[i] * df) * inv;
  }
}

void mope_im2patch_bwd(float *dpixels, const float *dpatches, int B, int ch, int H, int W, int P) {
  const int GH = H / P, GW = W / P, G = GH * GW;
  const size_t D = (size_t)ch * P * P;
  /* patches do not overlap and tile the image, so this is the inverse permutation of the forward */
#pragma omp parallel for schedule(static) if ((int64_t)B * ch * H * W > PAR_MIN_WORK)
  for (int bg = 0; bg < B * G; bg++) {
    const int b = bg / G, g = bg % G, gy = g / GW, gx = g % GW;
    const float *src = dpatches + (size_t)bg * D;
    for (int c = 0; c < ch; c++)
      for (int y = 0; y < P; y++) {
        float *dst = dpixels + (((size_t)b * ch + c) * H + (size_t)gy * P + y) * W + (size_t)gx * P;
        memcpy(dst, src + ((size_t)c * P + y) * P, sizeof(float) * P);
      }
  }
}

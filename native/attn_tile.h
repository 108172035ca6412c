/* attn_tile.h — register-blocked micro-kernels of attention over four query rows at a time, shared by the
 * forward (kernels_fwd.c) and the backward (kernels_bwd.c). Working on four rows per pass reuses every key
 * (value) vector loaded from memory four times, which moves the inner loops from load-bound to FMA-bound.
 * Vectors are 16 floats (GCC vector extension: one AVX-512 register, or two AVX2 registers elsewhere).
 * Dims: R = 4 rows, HS head size, Tp keys rounded up to 16, jn keys used. */
#ifndef MOPE_ATTN_TILE_H
#define MOPE_ATTN_TILE_H
#include <stddef.h>

typedef float v16 __attribute__((vector_size(64), aligned(4), may_alias));
#define LD(p) (*(const v16 *)(p))
#define ST(p, x) (*(v16 *)(p) = (x))
#define TILE_R 4

/* How many rows ahead prefetch_row is called, and the prefetch itself: the q, k and v of one head in one row
 * (HS floats each, C floats apart). */
#define ATTN_PREFETCH 6
static inline void prefetch_row(const float *q, int C, int HS) {
  for (int e = 0; e < HS; e += 16) {
    __builtin_prefetch(q + e);
    __builtin_prefetch(q + C + e);
    __builtin_prefetch(q + 2 * (size_t)C + e);
  }
}

/* out[r·ldo + x] = Σ_{k<K} a[r·lda + k]·b[k·ldb + x] for r < 4 and x < ncols (overwrites out): a four-row GEMM
 * tile, 4 rows × 64 columns of accumulators in registers while ncols allows, then 4 × 16, then scalars. */
static inline void tile_rows(float *restrict out, size_t ldo, const float *restrict a, size_t lda,
                             const float *restrict b, size_t ldb, int K, int ncols) {
  int x0 = 0;
  for (; x0 + 64 <= ncols; x0 += 64) {
    v16 c[TILE_R][4] = {{{0}}};
    for (int k = 0; k < K; k++) {
      const float *br = b + (size_t)k * ldb + x0;
      const v16 b0 = LD(br), b1 = LD(br + 16), b2 = LD(br + 32), b3 = LD(br + 48);
#pragma GCC unroll 4
      for (int r = 0; r < TILE_R; r++) {
        const float ar = a[r * lda + k];
        c[r][0] += ar * b0;
        c[r][1] += ar * b1;
        c[r][2] += ar * b2;
        c[r][3] += ar * b3;
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < TILE_R; r++)
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) ST(out + r * ldo + x0 + 16 * u, c[r][u]);
  }
  for (; x0 + 16 <= ncols; x0 += 16) {
    v16 c[TILE_R] = {{0}};
    for (int k = 0; k < K; k++) {
      const v16 b0 = LD(b + (size_t)k * ldb + x0);
#pragma GCC unroll 4
      for (int r = 0; r < TILE_R; r++) c[r] += a[r * lda + k] * b0;
    }
#pragma GCC unroll 4
    for (int r = 0; r < TILE_R; r++) ST(out + r * ldo + x0, c[r]);
  }
  for (; x0 < ncols; x0++) {
    for (int r = 0; r < TILE_R; r++) {
      float acc = 0.0f;
      for (int k = 0; k < K; k++) acc += a[r * lda + k] * b[(size_t)k * ldb + x0];
      out[r * ldo + x0] = acc;
    }
  }
}

/* s[r·lds + j] = Σ_e a[r·HS + e]·bt[e·Tp + j] for r < 4 and j < jn rounded up to 16 (entries past jn are junk the
 * caller ignores). bt is a transposed operand [HS,Tp], zero padded past its keys. */
static inline void tile_rows_bt(float *restrict s, int lds, const float *restrict a, const float *restrict bt, int Tp,
                                int HS, int jn) {
  tile_rows(s, (size_t)lds, a, (size_t)HS, bt, (size_t)Tp, HS, (jn + 15) & ~15);
}

/* o[r·HS + e] = Σ_{j<jn} p[r·ldp + j]·v[j·ldv + e] for r < 4, e < HS (overwrites o). */
static inline void tile_rows_pv(float *restrict o, const float *restrict p, int ldp, const float *restrict v,
                                size_t ldv, int jn, int HS) {
  tile_rows(o, (size_t)HS, p, (size_t)ldp, v, ldv, jn, HS);
}

#endif

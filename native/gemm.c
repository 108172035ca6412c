/* gemm.c — the library's only GEMM call site (OpenBLAS cblas_sgemm, row-major) and the strided-batched
 * GEMM. Dims: M, N, K of C[M,N] = alpha·op(A)[M,K]·op(B)[K,N] + beta·C; batch, strideA/B/C in elements. */
#include <cblas.h>
#include <stddef.h>
#include "mope.h"

static inline int imax1(int x) {
  return x > 1 ? x : 1;
}

void mope_gemm_f32(float *c, const float *a, const float *b, int M, int N, int K, int transA, int transB, float alpha,
                   float beta, int lda, int ldb, int ldc) {
  if (M <= 0 || N <= 0) return;
  /* OpenBLAS rejects (and prints about) leading dims < 1, which K == 0 or N == 1 can produce. */
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, a,
              imax1(lda), b, imax1(ldb), beta, c, imax1(ldc));
}

/* One small GEMM on the calling thread, for batches of per-head matrices: OpenBLAS's pthread build must
 * not be entered from inside an OpenMP region, and at T≈50, HS=64 its per-call overhead dominates.
 * Loop orders keep the innermost loop contiguous (axpy over a row of B, or a dot over rows of A and B). */
static void small_gemm(float *restrict c, const float *restrict a, const float *restrict b, int M, int N, int K,
                       int transA, int transB, float alpha, float beta) {
  if (!transB) {
    /* B is [K,N]: C[m,:] = beta·C[m,:] + Σ_k alpha·opA[m,k]·B[k,:] */
    for (int m = 0; m < M; m++) {
      float *cr = c + (size_t)m * N;
      if (beta == 0.0f) {
        for (int n = 0; n < N; n++) cr[n] = 0.0f;
      } else if (beta != 1.0f) {
        for (int n = 0; n < N; n++) cr[n] *= beta;
      }
      for (int k = 0; k < K; k++) {
        float av = alpha * (transA ? a[(size_t)k * M + m] : a[(size_t)m * K + k]);
        const float *br = b + (size_t)k * N;
#pragma omp simd
        for (int n = 0; n < N; n++) cr[n] += av * br[n];
      }
    }
  } else if (!transA) {
    /* A is [M,K], B is [N,K]: contiguous dots. */
    for (int m = 0; m < M; m++) {
      const float *ar = a + (size_t)m * K;
      float *cr = c + (size_t)m * N;
      for (int n = 0; n < N; n++) {
        const float *br = b + (size_t)n * K;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int k = 0; k < K; k++) s += ar[k] * br[k];
        cr[n] = beta == 0.0f ? alpha * s : alpha * s + beta * cr[n];
      }
    }
  } else {
    /* A is [K,M], B is [N,K]: C[m,n] = Σ_k A[k,m]·B[n,k]; accumulate row m of C over k as an axpy
     * with B read transposed (strided), which is still cheaper than gathering A. */
    for (int m = 0; m < M; m++) {
      float *cr = c + (size_t)m * N;
      for (int n = 0; n < N; n++) {
        const float *br = b + (size_t)n * K;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int k = 0; k < K; k++) s += a[(size_t)k * M + m] * br[k];
        cr[n] = beta == 0.0f ? alpha * s : alpha * s + beta * cr[n];
      }
    }
  }
}

/* Work per matrix (M·N·K) below which a batch is spread over OpenMP threads with small_gemm. */
#define SMALL_GEMM_WORK (192 * 192 * 192)

void mope_gemm_strided_batched_f32(float *c, const float *a, const float *b, int batch, int M, int N, int K, int transA,
                                   int transB, float alpha, float beta, int64_t strideA, int64_t strideB,
                                   int64_t strideC) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  int64_t work = (int64_t)M * N * K;
  if (batch > 1 && work <= SMALL_GEMM_WORK) {
#pragma omp parallel for schedule(static) if ((int64_t)batch * work > 32768)
    for (int i = 0; i < batch; i++)
      small_gemm(c + i * strideC, a + i * strideA, b + i * strideB, M, N, K, transA, transB, alpha, beta);
    return;
  }
  int lda = transA ? M : K, ldb = transB ? K : N;
  for (int i = 0; i < batch; i++)
    mope_gemm_f32(c + i * strideC, a + i * strideA, b + i * strideB, M, N, K, transA, transB, alpha, beta, lda, ldb, N);
}

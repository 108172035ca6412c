/* optim.c — AdamW step and gradient utilities (Σx² for norm clipping, Σ(a−b)² with its gradient for the
 * hidden-state loss, in-place scale), OpenMP over
 * elements. Dims: N parameters (elements). Results do not depend on the thread count. */
#include <math.h>
#include <stddef.h>
#include "mope.h"

#define PAR_MIN_WORK 65536
/* sumSquares adds a fixed number of partial sums in a fixed order, whatever the thread count. */
#define SS_PARTS 64

void mope_adamw(float *param, const float *grad, float *m, float *v, int64_t N, double lr, double beta1, double beta2,
                double eps, double weightDecay, int step) {
  /* torch.optim.AdamW (foreach=False): p.mul_(1 − lr·wd); m, v updated; denom = √v/√bc2 + eps;
   * p.addcdiv_(m, denom, −lr/bc1). Scalars in double, elementwise arithmetic in float. */
  const float decay = (float)(1.0 - lr * weightDecay);
  const float b1 = (float)beta1, c1 = (float)(1.0 - beta1);
  const float b2 = (float)beta2, c2 = (float)(1.0 - beta2);
  const float step_size = (float)(lr / (1.0 - pow(beta1, step)));
  const float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
  const float epsf = (float)eps;
#pragma omp parallel for simd schedule(static) if (N > PAR_MIN_WORK)
  for (int64_t i = 0; i < N; i++) {
    const float g = grad[i];
    const float mi = b1 * m[i] + c1 * g;
    const float vi = b2 * v[i] + c2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * (mi / (sqrtf(vi) / bc2_sqrt + epsf));
  }
}

/* Σ x² (b == NULL) or Σ (x − b)² with g = coef·(x − b), over SS_PARTS fixed ranges added in a fixed order: the sum
 * does not depend on the thread count. */
static double partitioned_squares(float *g, const float *x, const float *b, float coef, int64_t N) {
  double part[SS_PARTS];
  const int64_t chunk = (N + SS_PARTS - 1) / SS_PARTS;
#pragma omp parallel for schedule(static) if (N > PAR_MIN_WORK)
  for (int c = 0; c < SS_PARTS; c++) {
    const int64_t lo = c * chunk < N ? c * chunk : N, hi = lo + chunk < N ? lo + chunk : N;
    double s = 0.0;
    if (b) {
#pragma omp simd reduction(+ : s)
      for (int64_t i = lo; i < hi; i++) {
        const float d = x[i] - b[i];
        g[i] = coef * d;
        s += (double)d * d;
      }
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
    }
    part[c] = s;
  }
  double s = 0.0;
  for (int c = 0; c < SS_PARTS; c++) s += part[c];
  return s;
}

double mope_sum_squares(const float *x, int64_t N) {
  return partitioned_squares(NULL, x, NULL, 0.0f, N);
}

double mope_diff_squares(float *g, const float *a, const float *b, float coef, int64_t N) {
  return partitioned_squares(g, a, b, coef, N);
}

void mope_scale(float *x, float s, int64_t N) {
#pragma omp parallel for simd schedule(static) if (N > PAR_MIN_WORK)
  for (int64_t i = 0; i < N; i++) x[i] *= s;
}

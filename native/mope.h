/* mope.h — declarations of the native kernel library (plain C, no N-API). Dims: B batch, T tokens,
 * C width, NH heads, HS head size, F FFN width, N rows, IC/OC linear in/out width, M/N/K GEMM.
 * Argument order everywhere: outputs, inputs, weights, dims (the same order as src/engine/kernels.ts).
 * Every kernel trusts its caller (addon.c validates); none allocates on the heap, none exits. */
#ifndef MOPE_H
#define MOPE_H

#include <stdint.h>

/* attention keeps one row of scores on the stack; addon.c refuses larger T. */
#define MOPE_ATTN_MAX_T 4096

/* ---- GEMM (gemm.c) ----
 * The single GEMM call site of the library. Row-major, BLAS semantics: C = alpha·op(A)·op(B) + beta·C,
 * and when beta == 0 C is not read (NaN in C does not propagate). A bf16 path would be added as a
 * sibling, mope_gemm_bf16, with the same argument list and its own element type. */
void mope_gemm_f32(float *c, const float *a, const float *b, int M, int N, int K,
                   int transA, int transB, float alpha, float beta, int lda, int ldb, int ldc);

/* For i < batch: C[i] = alpha·op(A[i])·op(B[i]) + beta·C[i]; X[i] starts at X + i·strideX.
 * C[i] must not overlap each other (addon.c checks strideC >= M·N). */
void mope_gemm_strided_batched_f32(float *c, const float *a, const float *b, int batch, int M, int N, int K,
                                   int transA, int transB, float alpha, float beta,
                                   int64_t strideA, int64_t strideB, int64_t strideC);

/* ---- fused forward kernels (kernels_fwd.c) ---- */
void mope_linear_fwd(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC);
void mope_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                        const float *bias, int N, int C, float eps);
/* kind 0 = quick_gelu, 1 = exact erf gelu; out may alias inp. */
void mope_activation_fwd(float *out, const float *inp, const float *mask, int N, int F, int kind);
void mope_attention_fwd(float *out, float *probs, const float *qkv, const float *keyMask, const float *headMask,
                        int B, int T, int NH, int HS, int causal);
void mope_residual_add(float *out, const float *a, const float *b, float scale, int64_t N);
void mope_l2normalize(float *out, float *norms, const float *inp, int N, int C);
void mope_im2patch(float *out, const float *pixels, int B, int ch, int H, int W, int P);

/* ---- backward kernels (kernels_bwd.c). Parameter gradients accumulate (+=), activation gradients are
 * overwritten (=). Like the forward kernels, results do not depend on the thread count. ---- */
/* dinp[N,IC] = dout·W (skipped when NULL); dweight[OC,IC] += doutᵀ·inp and dbias[OC] += Σ_n dout[n]
 * (each skipped when NULL). */
void mope_linear_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int IC, int OC);
/* Uses mean / rstd saved by mope_layernorm_fwd (the float mean is corrected by the exact row mean, as the
 * forward does). dinp is also used as scratch, so it must not overlap any input. */
void mope_layernorm_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C);
/* dinp = dout·act′(inp)·mask; dinp may alias dout. */
void mope_activation_bwd(float *dinp, const float *dout, const float *inp, const float *mask, int N, int F,
                         int kind);
/* probs [B,NH,T,T] as saved by mope_attention_fwd (before the head mask); dqkv overwritten. */
void mope_attention_bwd(float *dqkv, const float *dout, const float *probs, const float *qkv,
                        const float *headMask, int B, int T, int NH, int HS);
/* dinp = (dout − out·⟨out,dout⟩)/norm (dout/norm where the norm was floored); dinp may alias dout. */
void mope_l2normalize_bwd(float *dinp, const float *dout, const float *out, const float *norms, int N, int C);
void mope_im2patch_bwd(float *dpixels, const float *dpatches, int B, int ch, int H, int W, int P);

/* ---- optimiser and gradient utilities (optim.c) ---- */
/* One PyTorch AdamW step (decoupled weight decay); step counts from 1. Hyperparameters are doubles, as
 * PyTorch's are: the derived scalars (bias corrections, step size) are formed in double, then rounded. */
void mope_adamw(float *param, const float *grad, float *m, float *v, int64_t N, double lr, double beta1,
                double beta2, double eps, double weightDecay, int step);
/* Σ x² in double; the same result for any thread count. */
double mope_sum_squares(const float *x, int64_t N);
void mope_scale(float *x, float s, int64_t N);

/* ---- threads (threads.c) ---- */
void mope_set_threads(int n);
int mope_get_threads(void);

#endif

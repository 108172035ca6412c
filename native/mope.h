/* mope.h — declarations of the native kernel library (plain C, no N-API). Dims: B batch, T tokens,
 * C width, NH heads, HS head size, F FFN width, N rows, IC/OC linear in/out width, M/N/K GEMM.
 * Argument order everywhere: outputs, inputs, weights, dims (the same order as src/engine/kernels.ts).
 * Every kernel trusts its caller (addon.c validates); none allocates on the heap, none exits. */
#ifndef MOPE_H
#define MOPE_H

#include <stddef.h>
#include <stdint.h>

/* attention keeps one row of scores on the stack; addon.c refuses larger T. */
#define MOPE_ATTN_MAX_T 4096

/* ---- GEMM (gemm.c) ----
 * The OpenBLAS GEMM call site (the exact fp32 path). Row-major, BLAS semantics: C = alpha·op(A)·op(B) + beta·C,
 * and when beta == 0 C is not read (NaN in C does not propagate). The bf16 path is mope_gemm_dnnl below. */
void mope_gemm_f32(float *c, const float *a, const float *b, int M, int N, int K, int transA, int transB, float alpha,
                   float beta, int lda, int ldb, int ldc);

/* For i < batch: C[i] = alpha·op(A[i])·op(B[i]) + beta·C[i]; X[i] starts at X + i·strideX.
 * C[i] must not overlap each other (addon.c checks strideC >= M·N). */
void mope_gemm_strided_batched_f32(float *c, const float *a, const float *b, int batch, int M, int N, int K, int transA,
                                   int transB, float alpha, float beta, int64_t strideA, int64_t strideB,
                                   int64_t strideC);

/* ---- oneDNN GEMM (gemm_dnnl.c): bf16 inputs with fp32 accumulation and output, or fp32 throughout ----
 * The one oneDNN entry point: C[M,N] = op(A)·op(B) (+ bias[N], when non-NULL) + beta·C (beta == 0: C not
 * read). B is either b (op(B) = B [K,N], or Bᵀ with B stored [N,K] when transB) or, when pb is non-NULL,
 * weights packed once by mope_dnnl_pack (b and transB are then ignored). For bf16, scratch holds at least
 * M·K (+ K·N when B is not packed) uint16 values: A (and B) are rounded to bf16 there, to nearest even.
 * Returns 0, or the oneDNN status (e.g. 3 = unimplemented on this CPU). */
typedef struct mope_dnnl_weight mope_dnnl_weight;
int mope_gemm_dnnl(float *c, const float *a, const float *b, mope_dnnl_weight *pb, const float *bias, uint16_t *scratch,
                   int M, int N, int K, int transA, int transB, float beta, int bf16);
/* Packs op(B)[K,N] (b is [K,N], or [N,K] when transB) into the layout a matmul with about Mhint rows prefers.
 * Allocates; the caller frees with mope_dnnl_free. Returns 0 or the oneDNN status. */
int mope_dnnl_pack(mope_dnnl_weight **out, const float *b, int K, int N, int transB, int bf16, int Mhint);
void mope_dnnl_free(mope_dnnl_weight *w);
size_t mope_dnnl_weight_bytes(const mope_dnnl_weight *w);
/* K and N of a packed operand; returns its bf16 flag. */
int mope_dnnl_weight_dims(const mope_dnnl_weight *w, int *K, int *N);
/* out[rows,cols] = bf16(in), in being [rows,cols], or [cols,rows] when trans. */
void mope_f32_to_bf16(uint16_t *out, const float *in, int rows, int cols, int trans);
/* The instruction set oneDNN dispatches to on this CPU, e.g. "avx512_core_bf16" or "avx512_core_amx". */
const char *mope_dnnl_isa(void);
/* The implementation a matmul of this shape gets (e.g. "brg:avx512_core_bf16"); returns 0 or the status. */
int mope_dnnl_impl(char *buf, size_t n, int bf16, int M, int N, int K);

/* ---- fused forward kernels (kernels_fwd.c) ---- */
void mope_linear_fwd(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC);
void mope_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                        int N, int C, float eps);
/* kind 0 = quick_gelu, 1 = exact erf gelu; out may alias inp. */
void mope_activation_fwd(float *out, const float *inp, const float *mask, int N, int F, int kind);
void mope_attention_fwd(float *out, float *probs, const float *qkv, const float *keyMask, const float *headMask, int B,
                        int T, int NH, int HS, int causal);
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
void mope_activation_bwd(float *dinp, const float *dout, const float *inp, const float *mask, int N, int F, int kind);
/* probs [B,NH,T,T] as saved by mope_attention_fwd (before the head mask); dqkv overwritten. */
void mope_attention_bwd(float *dqkv, const float *dout, const float *probs, const float *qkv, const float *headMask,
                        int B, int T, int NH, int HS);
/* dinp = (dout − out·⟨out,dout⟩)/norm (dout/norm where the norm was floored); dinp may alias dout. */
void mope_l2normalize_bwd(float *dinp, const float *dout, const float *out, const float *norms, int N, int C);
void mope_im2patch_bwd(float *dpixels, const float *dpatches, int B, int ch, int H, int W, int P);

/* ---- optimiser and gradient utilities (optim.c) ---- */
/* One PyTorch AdamW step (decoupled weight decay); step counts from 1. Hyperparameters are doubles, as
 * PyTorch's are: the derived scalars (bias corrections, step size) are formed in double, then rounded. */
void mope_adamw(float *param, const float *grad, float *m, float *v, int64_t N, double lr, double beta1, double beta2,
                double eps, double weightDecay, int step);
/* Σ x² in double; the same result for any thread count. */
double mope_sum_squares(const float *x, int64_t N);
/* g = coef·(a − b) elementwise; returns Σ(a − b)² in double (fixed partition). g may not overlap a or b. */
double mope_diff_squares(float *g, const float *a, const float *b, float coef, int64_t N);
void mope_scale(float *x, float s, int64_t N);

/* ---- threads (threads.c) ---- */
void mope_set_threads(int n);
int mope_get_threads(void);

/* ---- image resampling (image.c): Pillow's 8-bit separable resize passes; see src/engine/kernels.ts ---- */
void mope_resample_rows_u8(uint8_t *out, const uint8_t *src, int srcW, int rowOffset, int rows, int outW, int ch,
                           int ksize, const int32_t *start, const int32_t *count, const int32_t *k);
void mope_resample_cols_u8(uint8_t *out, const uint8_t *src, int width, int outH, int ch, int ksize,
                           const int32_t *start, const int32_t *count, const int32_t *k, int rowShift);

#endif

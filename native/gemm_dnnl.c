/* gemm_dnnl.c — the oneDNN GEMM entry point (bf16 inputs with fp32 accumulation and fp32 output, or fp32
 * throughout), weight packing into the primitive's preferred layout, and the f32→bf16 conversion it uses.
 * Dims: M, N, K of C[M,N] = op(A)[M,K]·op(B)[K,N] (+ bias[N]) + beta·C, row-major.
 * oneDNN picks its instruction set at run time (AMX, AVX512-BF16, AVX-512, AVX2); nothing here assumes one.
 * The engine and stream are created once on first use (they hold no data); the only other allocations are
 * the packed weights the caller asks for with mope_dnnl_pack and frees with mope_dnnl_free. */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mope.h"

struct mope_dnnl_weight {
  int K, N, bf16;
  dnnl_memory_desc_t md; /* the packed layout chosen by the matmul primitive */
  dnnl_memory_t mem;     /* owns the packed data */
  size_t bytes;
  /* the primitive for the last (M, bias, beta): consecutive calls of one layer reuse it */
  dnnl_primitive_t prim;
  int primM, primBias;
  float primBeta;
};

static dnnl_engine_t eng;
static dnnl_stream_t stream;

static dnnl_status_t ensure_engine(void) {
  dnnl_status_t s = dnnl_success;
  if (!eng) s = dnnl_engine_create(&eng, dnnl_cpu, 0);
  if (s == dnnl_success && !stream) s = dnnl_stream_create(&stream, eng, dnnl_stream_default_flags);
  return s;
}

static inline uint16_t f32_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN stays NaN */
  u += 0x7fffu + ((u >> 16) & 1u);                                          /* round to nearest even */
  return (uint16_t)(u >> 16);
}

void mope_f32_to_bf16(uint16_t *out, const float *in, int rows, int cols, int trans) {
  if (!trans) {
    int64_t n = (int64_t)rows * cols;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = f32_to_bf16(in[i]);
    return;
  }
  /* out[r,c] = in[c,r], in 32×32 tiles so both sides stay in cache lines */
  const int TB = 32;
  int tiles_r = (rows + TB - 1) / TB;
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols > 65536)
  for (int tr = 0; tr < tiles_r; tr++) {
    int r0 = tr * TB, r1 = r0 + TB < rows ? r0 + TB : rows;
    for (int c0 = 0; c0 < cols; c0 += TB) {
      int c1 = c0 + TB < cols ? c0 + TB : cols;
      for (int r = r0; r < r1; r++)
        for (int c = c0; c < c1; c++) out[(size_t)r * cols + c] = f32_to_bf16(in[(size_t)c * rows + r]);
    }
  }
}

static dnnl_status_t md2(dnnl_memory_desc_t *md, int rows, int cols, dnnl_data_type_t dt, int trans) {
  dnnl_dims_t dims = {rows, cols};
  if (!trans) return dnnl_memory_desc_init_by_tag(md, 2, dims, dt, dnnl_ab);
  dnnl_dims_t strides = {1, rows};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

#define TRY(x)                                                                                                         \
  do {                                                                                                                 \
    s = (x);                                                                                                           \
    if (s != dnnl_success) goto out;                                                                                   \
  } while (0)

/* A matmul primitive descriptor for C[M,N] (f32) = A·B (+ bias) + beta·C with the given A and B descriptors. */
static dnnl_status_t make_pd(dnnl_primitive_desc_t *pd, const dnnl_memory_desc_t *amd, const dnnl_memory_desc_t *bmd,
                             int M, int N, int bias, float beta) {
  dnnl_status_t s;
  dnnl_memory_desc_t cmd, biasmd;
  dnnl_matmul_desc_t desc;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  *pd = NULL;
  TRY(md2(&cmd, M, N, dnnl_f32, 0));
  if (bias) TRY(md2(&biasmd, 1, N, dnnl_f32, 0));
  TRY(dnnl_matmul_desc_init(&desc, amd, bmd, bias ? &biasmd : NULL, &cmd));
  TRY(dnnl_primitive_attr_create(&attr));
  if (beta != 0.0f) {
    TRY(dnnl_post_ops_create(&po));
    TRY(dnnl_post_ops_append_sum(po, beta));
    TRY(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  TRY(dnnl_primitive_desc_create(pd, &desc, attr, eng, NULL));
out:
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return s;
}

int mope_dnnl_pack(mope_dnnl_weight **out, const float *b, int K, int N, int transB, int bf16, int Mhint) {
  dnnl_status_t s;
  dnnl_primitive_desc_t pd = NULL, rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_memory_t user = NULL;
  dnnl_memory_desc_t amd, bany, buser;
  mope_dnnl_weight *w = NULL;
  uint16_t *tmp = NULL;
  *out = NULL;
  TRY(ensure_engine());
  dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_dims_t bdims = {K, N};
  TRY(md2(&amd, Mhint > 0 ? Mhint : 256, K, dt, 0));
  TRY(dnnl_memory_desc_init_by_tag(&bany, 2, bdims, dt, dnnl_format_tag_any));
  TRY(make_pd(&pd, &amd, &bany, Mhint > 0 ? Mhint : 256, N, 0, 0.0f));
  w = calloc(1, sizeof *w);
  if (!w) {
    s = dnnl_out_of_memory;
    goto out;
  }
  w->K = K;
  w->N = N;
  w->bf16 = bf16;
  w->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  w->bytes = dnnl_memory_desc_get_size(&w->md);
  TRY(dnnl_memory_create(&w->mem, &w->md, eng, DNNL_MEMORY_ALLOCATE));
  if (bf16) {
    /* rounded to bf16 here first (one vectorised pass in b's own layout): oneDNN's f32→bf16 reorder into the
     * blocked layout is several times slower than its bf16→bf16 one */
    tmp = malloc((size_t)K * N * sizeof(uint16_t));
    if (!tmp) {
      s = dnnl_out_of_memory;
      goto out;
    }
    if (transB)
      mope_f32_to_bf16(tmp, b, N, K, 0);
    else
      mope_f32_to_bf16(tmp, b, K, N, 0);
    TRY(md2(&buser, K, N, dnnl_bf16, transB));
    TRY(dnnl_memory_create(&user, &buser, eng, tmp));
  } else {
    TRY(md2(&buser, K, N, dnnl_f32, transB));
    TRY(dnnl_memory_create(&user, &buser, eng, (void *)b));
  }
  TRY(dnnl_reorder_primitive_desc_create(&rpd, &buser, eng, &w->md, eng, NULL));
  TRY(dnnl_primitive_create(&reorder, rpd));
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, w->mem}};
  TRY(dnnl_primitive_execute(reorder, stream, 2, args));
  TRY(dnnl_stream_wait(stream));
  *out = w;
  w = NULL;
out:
  if (w) mope_dnnl_free(w);
  if (reorder) dnnl_primitive_destroy(reorder);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (user) dnnl_memory_destroy(user);
  free(tmp);
  if (pd) dnnl_primitive_desc_destroy(pd);
  return (int)s;
}

void mope_dnnl_free(mope_dnnl_weight *w) {
  if (!w) return;
  if (w->prim) dnnl_primitive_destroy(w->prim);
  if (w->mem) dnnl_memory_destroy(w->mem);
  free(w);
}

size_t mope_dnnl_weight_bytes(const mope_dnnl_weight *w) {
  return w ? w->bytes : 0;
}
int mope_dnnl_weight_dims(const mope_dnnl_weight *w, int *K, int *N) {
  *K = w->K;
  *N = w->N;
  return w->bf16;
}

int mope_gemm_dnnl(float *c, const float *a, const float *b, mope_dnnl_weight *pb, const float *bias, uint16_t *scratch,
                   int M, int N, int K, int transA, int transB, float beta, int bf16) {
  if (M <= 0 || N <= 0) return 0;
  dnnl_status_t s;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t prim = NULL;
  dnnl_memory_t am = NULL, bm = NULL, cm = NULL, biasm = NULL;
  dnnl_memory_desc_t amd, bmd, cmd, biasmd;
  TRY(ensure_engine());
  dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
  const void *aptr = a, *bptr = b;
  if (bf16) {
    /* A keeps its layout (op(A) = Aᵀ through strides): oneDNN's copy routines transpose faster than a
     * transposing conversion would */
    if (transA)
      mope_f32_to_bf16(scratch, a, K, M, 0);
    else
      mope_f32_to_bf16(scratch, a, M, K, 0);
    aptr = scratch;
    TRY(md2(&amd, M, K, dt, transA));
    if (!pb) {
      uint16_t *bs = scratch + (size_t)M * K;
      if (transB)
        mope_f32_to_bf16(bs, b, N, K, 0);
      else
        mope_f32_to_bf16(bs, b, K, N, 0);
      bptr = bs;
      TRY(md2(&bmd, K, N, dt, transB));
    }
  } else {
    TRY(md2(&amd, M, K, dt, transA));
    if (!pb) TRY(md2(&bmd, K, N, dt, transB));
  }
  if (pb) bmd = pb->md;
  if (pb && pb->prim && pb->primM == M && pb->primBias == (bias != NULL) && pb->primBeta == beta) {
    prim = pb->prim;
  } else {
    TRY(make_pd(&pd, &amd, &bmd, M, N, bias != NULL, beta));
    TRY(dnnl_primitive_create(&prim, pd));
    if (pb) {
      if (pb->prim) dnnl_primitive_destroy(pb->prim);
      pb->prim = prim;
      pb->primM = M;
      pb->primBias = bias != NULL;
      pb->primBeta = beta;
    }
  }
  TRY(md2(&cmd, M, N, dnnl_f32, 0));
  TRY(dnnl_memory_create(&am, &amd, eng, (void *)aptr));
  if (!pb) TRY(dnnl_memory_create(&bm, &bmd, eng, (void *)bptr));
  TRY(dnnl_memory_create(&cm, &cmd, eng, c));
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, pb ? pb->mem : bm}, {DNNL_ARG_DST, cm}};
  int nargs = 3;
  if (bias) {
    TRY(md2(&biasmd, 1, N, dnnl_f32, 0));
    TRY(dnnl_memory_create(&biasm, &biasmd, eng, (void *)bias));
    args[nargs].arg = DNNL_ARG_BIAS;
    args[nargs++].memory = biasm;
  }
  TRY(dnnl_primitive_execute(prim, stream, nargs, args));
  TRY(dnnl_stream_wait(stream));
out:
  if (prim && (!pb || pb->prim != prim)) dnnl_primitive_destroy(prim);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (am) dnnl_memory_destroy(am);
  if (bm) dnnl_memory_destroy(bm);
  if (cm) dnnl_memory_destroy(cm);
  if (biasm) dnnl_memory_destroy(biasm);
  return (int)s;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_sse41:
    return "sse41";
  case dnnl_cpu_isa_avx:
    return "avx";
  case dnnl_cpu_isa_avx2:
    return "avx2";
  case dnnl_cpu_isa_avx2_vnni:
    return "avx2_vnni";
  case dnnl_cpu_isa_avx512_core:
    return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni:
    return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16:
    return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx:
    return "avx512_core_amx";
  default:
    return "unknown";
  }
}

const char *mope_dnnl_isa(void) {
  return isa_name(dnnl_get_effective_cpu_isa());
}

int mope_dnnl_impl(char *buf, size_t n, int bf16, int M, int N, int K) {
  dnnl_status_t s;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_memory_desc_t amd, bmd;
  buf[0] = 0;
  TRY(ensure_engine());
  dnnl_dims_t bdims = {K, N};
  TRY(md2(&amd, M, K, bf16 ? dnnl_bf16 : dnnl_f32, 0));
  TRY(dnnl_memory_desc_init_by_tag(&bmd, 2, bdims, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_format_tag_any));
  TRY(make_pd(&pd, &amd, &bmd, M, N, 1, 0.0f));
  const char *impl = NULL;
  TRY(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
  snprintf(buf, n, "%s", impl ? impl : "");
out:
  if (pd) dnnl_primitive_desc_destroy(pd);
  return (int)s;
}

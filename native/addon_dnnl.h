/* addon_dnnl.h — N-API glue of the oneDNN GEMM (included by addon.c alone, like addon_args.h): argument checks
 * for gemmDnnl, the packed-weight handle (an external whose finaliser frees the packed memory) and dnnlInfo.
 * Dims: M, N, K of C[M,N] = op(A)[M,K]·op(B)[K,N]. */
#ifndef MOPE_ADDON_DNNL_H
#define MOPE_ADDON_DNNL_H
#include "addon_args.h"
#include "mope.h"

typedef struct {
  uint16_t *data;
  size_t len;
} U16;

static U16 arg_u16(Call *c, size_t i, const char *name) {
  U16 r = {NULL, 0};
  if (c->failed) return r;
  napi_valuetype t = type_of(c, i);
  if (t == napi_null || t == napi_undefined) return r;
  bool is_ta = false;
  napi_is_typedarray(c->env, c->argv[i], &is_ta);
  napi_typedarray_type tt = napi_int8_array;
  void *data = NULL;
  size_t len = 0;
  if (is_ta) napi_get_typedarray_info(c->env, c->argv[i], &tt, &len, &data, NULL, NULL);
  if (!is_ta || tt != napi_uint16_array) {
    throw_fmt(c, 0, "%s must be a Uint16Array or null", name);
    return r;
  }
  r.data = (uint16_t *)data;
  r.len = len;
  return r;
}

static mope_dnnl_weight *arg_packed(Call *c, size_t i, const char *name) {
  if (c->failed) return NULL;
  napi_valuetype t = type_of(c, i);
  if (t == napi_null || t == napi_undefined) return NULL;
  void *p = NULL;
  if (t != napi_external || napi_get_value_external(c->env, c->argv[i], &p) != napi_ok || !p) {
    throw_fmt(c, 0, "%s must be a handle returned by packWeight, or null", name);
    return NULL;
  }
  return (mope_dnnl_weight *)p;
}

static void throw_dnnl(Call *c, int status, const char *what) {
  throw_fmt(c, 0, "oneDNN %s failed with status %d%s", what, status,
            status == 3 ? " (unimplemented: this CPU or oneDNN build has no kernel for it)" : "");
}

static void finalize_packed(napi_env env, void *data, void *hint) {
  int64_t adj = 0;
  napi_adjust_external_memory(env, -(int64_t)mope_dnnl_weight_bytes((mope_dnnl_weight *)data), &adj);
  mope_dnnl_free((mope_dnnl_weight *)data);
}

/* packWeight(b, K, N, transB, bf16, Mhint) → handle */
static napi_value js_pack_weight(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "packWeight", 6)) return NULL;
  F32 b = arg_f32(&c, 0, "b", 0);
  int K = arg_dim(&c, 1, "K"), N = arg_dim(&c, 2, "N");
  int tB = arg_bool(&c, 3, "transB"), bf16 = arg_bool(&c, 4, "bf16");
  int Mhint = arg_dim(&c, 5, "Mhint");
  need(&c, b, "b", P2(&c, K, N), "K*N");
  if (!c.failed && (K == 0 || N == 0)) throw_fmt(&c, 1, "K and N must be positive, got %d and %d", K, N);
  if (c.failed) return NULL;
  mope_dnnl_weight *w = NULL;
  int s = mope_dnnl_pack(&w, b.data, K, N, tB, bf16, Mhint);
  if (s) {
    throw_dnnl(&c, s, "weight packing");
    return NULL;
  }
  napi_value r;
  if (napi_create_external(env, w, finalize_packed, NULL, &r) != napi_ok) {
    mope_dnnl_free(w);
    throw_fmt(&c, 0, "could not create the packed-weight handle");
    return NULL;
  }
  int64_t adj = 0;
  napi_adjust_external_memory(env, (int64_t)mope_dnnl_weight_bytes(w), &adj);
  return r;
}

/* gemmDnnl(c, a, b, packed, bias, scratch, M, N, K, transA, transB, beta, bf16) */
static napi_value js_gemm_dnnl(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "gemmDnnl", 13)) return NULL;
  F32 C = arg_f32(&c, 0, "c", 0), A = arg_f32(&c, 1, "a", 0), Bm = arg_f32(&c, 2, "b", 1);
  mope_dnnl_weight *pb = arg_packed(&c, 3, "packed");
  F32 bias = arg_f32(&c, 4, "bias", 1);
  U16 scratch = arg_u16(&c, 5, "scratch");
  int M = arg_dim(&c, 6, "M"), N = arg_dim(&c, 7, "N"), K = arg_dim(&c, 8, "K");
  int tA = arg_bool(&c, 9, "transA"), tB = arg_bool(&c, 10, "transB");
  float beta = (float)arg_num(&c, 11, "beta");
  int bf16 = arg_bool(&c, 12, "bf16");
  int64_t nc = P2(&c, M, N), na = P2(&c, M, K), nb = P2(&c, K, N);
  need(&c, C, "c", nc, "M*N");
  need(&c, A, "a", na, "M*K");
  if (!c.failed && !pb && !Bm.data) throw_fmt(&c, 0, "one of b and packed must be given");
  if (!c.failed && pb && Bm.data) throw_fmt(&c, 0, "give b or packed, not both");
  if (!pb) need_opt(&c, Bm, "b", nb, "K*N");
  if (!c.failed && pb) {
    int pk, pn;
    int pbf16 = mope_dnnl_weight_dims(pb, &pk, &pn);
    if (pk != K || pn != N) throw_fmt(&c, 1, "packed holds a %dx%d operand, expected K x N = %dx%d", pk, pn, K, N);
    if (!c.failed && pbf16 != bf16) throw_fmt(&c, 0, "packed was made with bf16 = %d, called with %d", pbf16, bf16);
  }
  need_opt(&c, bias, "bias", N, "N");
  if (!c.failed && bf16) {
    int64_t want = na + (pb ? 0 : nb);
    if ((int64_t)scratch.len < want)
      throw_fmt(&c, 1, "scratch has %zu elements, expected M*K%s = %lld", scratch.len, pb ? "" : " + K*N",
                (long long)want);
  }
  if (!c.failed && K == 0) throw_fmt(&c, 1, "K must be positive");
  no_overlap(&c, C, nc, "c", A, na, "a");
  no_overlap(&c, C, nc, "c", Bm, nb, "b");
  no_overlap(&c, C, nc, "c", bias, N, "bias");
  if (c.failed) return NULL;
  int s = mope_gemm_dnnl(C.data, A.data, Bm.data, pb, bias.data, scratch.data, M, N, K, tA, tB, beta, bf16);
  if (s) throw_dnnl(&c, s, "matmul");
  return c.failed ? NULL : undef(env);
}

/* dnnlInfo(bf16) → { isa, impl } (impl is null where no matmul of that type exists on this CPU) */
static napi_value js_dnnl_info(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "dnnlInfo", 1)) return NULL;
  int bf16 = arg_bool(&c, 0, "bf16");
  if (c.failed) return NULL;
  char impl[256];
  int s = mope_dnnl_impl(impl, sizeof impl, bf16, 256, 768, 768);
  napi_value r, isa, im;
  napi_create_object(env, &r);
  napi_create_string_utf8(env, mope_dnnl_isa(), NAPI_AUTO_LENGTH, &isa);
  if (s)
    napi_get_null(env, &im);
  else
    napi_create_string_utf8(env, impl, NAPI_AUTO_LENGTH, &im);
  napi_set_named_property(env, r, "isa", isa);
  napi_set_named_property(env, r, "impl", im);
  return r;
}

#endif

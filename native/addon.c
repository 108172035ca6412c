/* addon.c — the only N-API glue: checks argument counts, types (Float32Array / null / number / boolean),
 * dims and array lengths, throws TypeError / RangeError naming the kernel and argument, then calls the
 * plain C kernels, forward, backward and optimiser alike. Dims as in src/engine/kernels.ts: M N K,
 * B T C NH HS F, N rows, IC OC, ch H W P. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <node_api.h>
#include "mope.h"

#include "addon_args.h"
#include "addon_dnnl.h"
#include "addon_image.h"
#include "addon_optim.h"

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "setThreads", 1)) return NULL;
  int n = arg_dim(&c, 0, "n");
  if (!c.failed && (n < 1 || n > 1024)) throw_fmt(&c, 1, "n must be between 1 and 1024, got %d", n);
  if (c.failed) return NULL;
  mope_set_threads(n);
  return undef(env);
}

static napi_value js_get_threads(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "getThreads", 0)) return NULL;
  napi_value r;
  napi_create_int32(env, mope_get_threads(), &r);
  return r;
}

/* gemm(c, a, b, M, N, K, transA, transB, alpha, beta) */
static napi_value js_gemm(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "gemm", 10)) return NULL;
  F32 C = arg_f32(&c, 0, "c", 0), A = arg_f32(&c, 1, "a", 0), Bm = arg_f32(&c, 2, "b", 0);
  int M = arg_dim(&c, 3, "M"), N = arg_dim(&c, 4, "N"), K = arg_dim(&c, 5, "K");
  int tA = arg_bool(&c, 6, "transA"), tB = arg_bool(&c, 7, "transB");
  float alpha = (float)arg_num(&c, 8, "alpha"), beta = (float)arg_num(&c, 9, "beta");
  int64_t nc = P2(&c, M, N), na = P2(&c, M, K), nb = P2(&c, K, N);
  need(&c, C, "c", nc, "M*N");
  need(&c, A, "a", na, "M*K");
  need(&c, Bm, "b", nb, "K*N");
  no_overlap(&c, C, nc, "c", A, na, "a");
  no_overlap(&c, C, nc, "c", Bm, nb, "b");
  if (c.failed) return NULL;
  mope_gemm_f32(C.data, A.data, Bm.data, M, N, K, tA, tB, alpha, beta, tA ? M : K, tB ? K : N, N);
  return undef(env);
}

/* gemmStridedBatched(c, a, b, batch, M, N, K, transA, transB, alpha, beta, strideA, strideB, strideC) */
static napi_value js_gemm_strided_batched(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "gemmStridedBatched", 14)) return NULL;
  F32 C = arg_f32(&c, 0, "c", 0), A = arg_f32(&c, 1, "a", 0), Bm = arg_f32(&c, 2, "b", 0);
  int batch = arg_dim(&c, 3, "batch"), M = arg_dim(&c, 4, "M"), N = arg_dim(&c, 5, "N"), K = arg_dim(&c, 6, "K");
  int tA = arg_bool(&c, 7, "transA"), tB = arg_bool(&c, 8, "transB");
  float alpha = (float)arg_num(&c, 9, "alpha"), beta = (float)arg_num(&c, 10, "beta");
  int64_t sA = arg_dim(&c, 11, "strideA"), sB = arg_dim(&c, 12, "strideB"), sC = arg_dim(&c, 13, "strideC");
  int64_t nc = P2(&c, M, N), na = P2(&c, M, K), nb = P2(&c, K, N);
  if (!c.failed && batch > 1 && nc > 0 && sC < nc)
    throw_fmt(&c, 1, "strideC is %lld, expected at least M*N = %lld so outputs do not overlap", (long long)sC,
              (long long)nc);
  if (!c.failed && batch > 0) {
    int64_t tc = P2(&c, batch - 1, sC) + nc, ta = P2(&c, batch - 1, sA) + na, tb = P2(&c, batch - 1, sB) + nb;
    if (M > 0 && N > 0) {
      need(&c, C, "c", tc, "(batch-1)*strideC + M*N");
      need(&c, A, "a", K > 0 ? ta : 0, "(batch-1)*strideA + M*K");
      need(&c, Bm, "b", K > 0 ? tb : 0, "(batch-1)*strideB + K*N");
      no_overlap(&c, C, tc, "c", A, ta, "a");
      no_overlap(&c, C, tc, "c", Bm, tb, "b");
    }
  }
  if (c.failed) return NULL;
  mope_gemm_strided_batched_f32(C.data, A.data, Bm.data, batch, M, N, K, tA, tB, alpha, beta, sA, sB, sC);
  return undef(env);
}

/* linear(out, inp, weight, bias, N, IC, OC) */
static napi_value js_linear(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "linear", 7)) return NULL;
  F32 out = arg_f32(&c, 0, "out", 0), inp = arg_f32(&c, 1, "inp", 0), w = arg_f32(&c, 2, "weight", 0),
      bias = arg_f32(&c, 3, "bias", 1);
  int N = arg_dim(&c, 4, "N"), IC = arg_dim(&c, 5, "IC"), OC = arg_dim(&c, 6, "OC");
  int64_t no = P2(&c, N, OC), ni = P2(&c, N, IC), nw = P2(&c, OC, IC);
  need(&c, out, "out", no, "N*OC");
  need(&c, inp, "inp", ni, "N*IC");
  need(&c, w, "weight", nw, "OC*IC");
  need_opt(&c, bias, "bias", OC, "OC");
  no_overlap(&c, out, no, "out", inp, ni, "inp");
  no_overlap(&c, out, no, "out", w, nw, "weight");
  no_overlap(&c, out, no, "out", bias, OC, "bias");
  if (c.failed) return NULL;
  mope_linear_fwd(out.data, inp.data, w.data, bias.data, N, IC, OC);
  return undef(env);
}

/* layernorm(out, mean, rstd, inp, weight, bias, N, C, eps) */
static napi_value js_layernorm(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "layernorm", 9)) return NULL;
  F32 out = arg_f32(&c, 0, "out", 0), mean = arg_f32(&c, 1, "mean", 1), rstd = arg_f32(&c, 2, "rstd", 1),
      inp = arg_f32(&c, 3, "inp", 0), w = arg_f32(&c, 4, "weight", 0), b = arg_f32(&c, 5, "bias", 0);
  int N = arg_dim(&c, 6, "N"), C = arg_dim(&c, 7, "C");
  double eps = arg_num(&c, 8, "eps");
  if (!c.failed && eps < 0) throw_fmt(&c, 1, "eps must be >= 0, got %g", eps);
  int64_t n = P2(&c, N, C);
  need(&c, out, "out", n, "N*C");
  need(&c, inp, "inp", n, "N*C");
  need(&c, w, "weight", C, "C");
  need(&c, b, "bias", C, "C");
  need_opt(&c, mean, "mean", N, "N");
  need_opt(&c, rstd, "rstd", N, "N");
  same_or_disjoint(&c, out, n, "out", inp, "inp");
  no_overlap(&c, out, n, "out", w, C, "weight");
  no_overlap(&c, out, n, "out", b, C, "bias");
  no_overlap(&c, mean, N, "mean", inp, n, "inp");
  no_overlap(&c, rstd, N, "rstd", inp, n, "inp");
  no_overlap(&c, mean, N, "mean", out, n, "out");
  no_overlap(&c, rstd, N, "rstd", out, n, "out");
  no_overlap(&c, mean, N, "mean", rstd, N, "rstd");
  if (c.failed) return NULL;
  mope_layernorm_fwd(out.data, mean.data, rstd.data, inp.data, w.data, b.data, N, C, (float)eps);
  return undef(env);
}

/* activation(out, inp, mask, N, F, kind) */
static napi_value js_activation(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "activation", 6)) return NULL;
  F32 out = arg_f32(&c, 0, "out", 0), inp = arg_f32(&c, 1, "inp", 0), mask = arg_f32(&c, 2, "mask", 1);
  int N = arg_dim(&c, 3, "N"), F = arg_dim(&c, 4, "F");
  double kind = arg_num(&c, 5, "kind");
  if (!c.failed && kind != 0 && kind != 1) throw_fmt(&c, 1, "kind must be 0 (quick_gelu) or 1 (gelu), got %g", kind);
  int64_t n = P2(&c, N, F);
  need(&c, out, "out", n, "N*F");
  need(&c, inp, "inp", n, "N*F");
  need_opt(&c, mask, "mask", F, "F");
  same_or_disjoint(&c, out, n, "out", inp, "inp");
  no_overlap(&c, out, n, "out", mask, F, "mask");
  if (c.failed) return NULL;
  mope_activation_fwd(out.data, inp.data, mask.data, N, F, (int)kind);
  return undef(env);
}

/* attention(out, probs, qkv, keyMask, headMask, B, T, NH, HS, causal) */
static napi_value js_attention(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "attention", 10)) return NULL;
  F32 out = arg_f32(&c, 0, "out", 0), probs = arg_f32(&c, 1, "probs", 1), qkv = arg_f32(&c, 2, "qkv", 0),
      km = arg_f32(&c, 3, "keyMask", 1), hm = arg_f32(&c, 4, "headMask", 1);
  int B = arg_dim(&c, 5, "B"), T = arg_dim(&c, 6, "T"), NH = arg_dim(&c, 7, "NH"), HS = arg_dim(&c, 8, "HS");
  int causal = arg_bool(&c, 9, "causal");
  if (!c.failed && T > MOPE_ATTN_MAX_T) throw_fmt(&c, 1, "T is %d, at most %d is supported", T, MOPE_ATTN_MAX_T);
  int64_t C = P2(&c, NH, HS);
  if (!c.failed && C > INT_MAX / 3) throw_fmt(&c, 1, "NH*HS is too large");
  int64_t no = P3(&c, B, T, C), nq = P4(&c, B, T, 3, C), np = P4(&c, B, NH, T, T), nk = P2(&c, B, T);
  need(&c, out, "out", no, "B*T*NH*HS");
  need(&c, qkv, "qkv", nq, "B*T*3*NH*HS");
  need_opt(&c, probs, "probs", np, "B*NH*T*T");
  need_opt(&c, km, "keyMask", nk, "B*T");
  need_opt(&c, hm, "headMask", NH, "NH");
  no_overlap(&c, out, no, "out", qkv, nq, "qkv");
  no_overlap(&c, out, no, "out", probs, np, "probs");
  no_overlap(&c, probs, np, "probs", qkv, nq, "qkv");
  no_overlap(&c, out, no, "out", km, nk, "keyMask");
  no_overlap(&c, out, no, "out", hm, NH, "headMask");
  no_overlap(&c, probs, np, "probs", km, nk, "keyMask");
  no_overlap(&c, probs, np, "probs", hm, NH, "headMask");
  if (c.failed) return NULL;
  mope_attention_fwd(out.data, probs.data, qkv.data, km.data, hm.data, B, T, NH, HS, causal);
  return undef(env);
}

/* residualAdd(out, a, b, scale, N) */
static napi_value js_residual_add(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "residualAdd", 5)) return NULL;
  F32 out = arg_f32(&c, 0, "out", 0), a = arg_f32(&c, 1, "a", 0), b = arg_f32(&c, 2, "b", 0);
  float scale = (float)arg_num(&c, 3, "scale");
  int64_t N = arg_dim(&c, 4, "N");
  need(&c, out, "out", N, "N");
  need(&c, a, "a", N, "N");
  need(&c, b, "b", N, "N");
  same_or_disjoint(&c, out, N, "out", a, "a");
  same_or_disjoint(&c, out, N, "out", b, "b");
  if (c.failed) return NULL;
  mope_residual_add(out.data, a.data, b.data, scale, N);
  return undef(env);
}

/* l2normalize(out, norms, inp, N, C) */
static napi_value js_l2normalize(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "l2normalize", 5)) return NULL;
  F32 out = arg_f32(&c, 0, "out", 0), norms = arg_f32(&c, 1, "norms", 1), inp = arg_f32(&c, 2, "inp", 0);
  int N = arg_dim(&c, 3, "N"), C = arg_dim(&c, 4, "C");
  int64_t n = P2(&c, N, C);
  need(&c, out, "out", n, "N*C");
  need(&c, inp, "inp", n, "N*C");
  need_opt(&c, norms, "norms", N, "N");
  same_or_disjoint(&c, out, n, "out", inp, "inp");
  no_overlap(&c, norms, N, "norms", inp, n, "inp");
  no_overlap(&c, norms, N, "norms", out, n, "out");
  if (c.failed) return NULL;
  mope_l2normalize(out.data, norms.data, inp.data, N, C);
  return undef(env);
}

/* im2patch(out, pixels, B, ch, H, W, P) */
static napi_value js_im2patch(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "im2patch", 7)) return NULL;
  F32 out = arg_f32(&c, 0, "out", 0), px = arg_f32(&c, 1, "pixels", 0);
  int B = arg_dim(&c, 2, "B"), ch = arg_dim(&c, 3, "ch"), H = arg_dim(&c, 4, "H"), W = arg_dim(&c, 5, "W"),
      P = arg_dim(&c, 6, "P");
  if (!c.failed && P < 1) throw_fmt(&c, 1, "P must be at least 1, got %d", P);
  if (!c.failed && (H % P != 0 || W % P != 0))
    throw_fmt(&c, 1, "H = %d and W = %d must be multiples of P = %d", H, W, P);
  int64_t n = P4(&c, B, ch, H, W);
  need(&c, out, "out", n, "B*(H/P)*(W/P)*ch*P*P");
  need(&c, px, "pixels", n, "B*ch*H*W");
  no_overlap(&c, out, n, "out", px, n, "pixels");
  if (c.failed) return NULL;
  mope_im2patch(out.data, px.data, B, ch, H, W, P);
  return undef(env);
}

/* ---- backward kernels ------------------------------------------------------------------------ */

/* linearBackward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC) */
static napi_value js_linear_backward(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "linearBackward", 9)) return NULL;
  F32 dinp = arg_f32(&c, 0, "dinp", 1), dw = arg_f32(&c, 1, "dweight", 1), db = arg_f32(&c, 2, "dbias", 1),
      dout = arg_f32(&c, 3, "dout", 0), inp = arg_f32(&c, 4, "inp", 0), w = arg_f32(&c, 5, "weight", 0);
  int N = arg_dim(&c, 6, "N"), IC = arg_dim(&c, 7, "IC"), OC = arg_dim(&c, 8, "OC");
  int64_t no = P2(&c, N, OC), ni = P2(&c, N, IC), nw = P2(&c, OC, IC);
  need_opt(&c, dinp, "dinp", ni, "N*IC");
  need_opt(&c, dw, "dweight", nw, "OC*IC");
  need_opt(&c, db, "dbias", OC, "OC");
  need(&c, dout, "dout", no, "N*OC");
  need(&c, inp, "inp", ni, "N*IC");
  need(&c, w, "weight", nw, "OC*IC");
  no_overlap(&c, dinp, ni, "dinp", dout, no, "dout");
  no_overlap(&c, dinp, ni, "dinp", inp, ni, "inp");
  no_overlap(&c, dinp, ni, "dinp", w, nw, "weight");
  no_overlap(&c, dinp, ni, "dinp", dw, nw, "dweight");
  no_overlap(&c, dinp, ni, "dinp", db, OC, "dbias");
  no_overlap(&c, dw, nw, "dweight", dout, no, "dout");
  no_overlap(&c, dw, nw, "dweight", inp, ni, "inp");
  no_overlap(&c, dw, nw, "dweight", w, nw, "weight");
  no_overlap(&c, dw, nw, "dweight", db, OC, "dbias");
  no_overlap(&c, db, OC, "dbias", dout, no, "dout");
  no_overlap(&c, db, OC, "dbias", inp, ni, "inp");
  no_overlap(&c, db, OC, "dbias", w, nw, "weight");
  if (c.failed) return NULL;
  mope_linear_bwd(dinp.data, dw.data, db.data, dout.data, inp.data, w.data, N, IC, OC);
  return undef(env);
}

/* layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C) */
static napi_value js_layernorm_backward(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "layernormBackward", 10)) return NULL;
  F32 dinp = arg_f32(&c, 0, "dinp", 0), dw = arg_f32(&c, 1, "dweight", 0), db = arg_f32(&c, 2, "dbias", 0),
      dout = arg_f32(&c, 3, "dout", 0), inp = arg_f32(&c, 4, "inp", 0), w = arg_f32(&c, 5, "weight", 0),
      mean = arg_f32(&c, 6, "mean", 0), rstd = arg_f32(&c, 7, "rstd", 0);
  int N = arg_dim(&c, 8, "N"), C = arg_dim(&c, 9, "C");
  int64_t n = P2(&c, N, C);
  need(&c, dinp, "dinp", n, "N*C");
  need(&c, dw, "dweight", C, "C");
  need(&c, db, "dbias", C, "C");
  need(&c, dout, "dout", n, "N*C");
  need(&c, inp, "inp", n, "N*C");
  need(&c, w, "weight", C, "C");
  need(&c, mean, "mean", N, "N");
  need(&c, rstd, "rstd", N, "N");
  /* dinp holds xhat between passes, so it may not alias dout or inp */
  no_overlap(&c, dinp, n, "dinp", dout, n, "dout");
  no_overlap(&c, dinp, n, "dinp", inp, n, "inp");
  no_overlap(&c, dinp, n, "dinp", w, C, "weight");
  no_overlap(&c, dinp, n, "dinp", mean, N, "mean");
  no_overlap(&c, dinp, n, "dinp", rstd, N, "rstd");
  no_overlap(&c, dinp, n, "dinp", dw, C, "dweight");
  no_overlap(&c, dinp, n, "dinp", db, C, "dbias");
  no_overlap(&c, dw, C, "dweight", db, C, "dbias");
  no_overlap(&c, dw, C, "dweight", dout, n, "dout");
  no_overlap(&c, dw, C, "dweight", inp, n, "inp");
  no_overlap(&c, dw, C, "dweight", w, C, "weight");
  no_overlap(&c, db, C, "dbias", dout, n, "dout");
  no_overlap(&c, db, C, "dbias", inp, n, "inp");
  no_overlap(&c, db, C, "dbias", w, C, "weight");
  if (c.failed) return NULL;
  mope_layernorm_bwd(dinp.data, dw.data, db.data, dout.data, inp.data, w.data, mean.data, rstd.data, N, C);
  return undef(env);
}

/* activationBackward(dinp, dout, inp, mask, N, F, kind) */
static napi_value js_activation_backward(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "activationBackward", 7)) return NULL;
  F32 dinp = arg_f32(&c, 0, "dinp", 0), dout = arg_f32(&c, 1, "dout", 0), inp = arg_f32(&c, 2, "inp", 0),
      mask = arg_f32(&c, 3, "mask", 1);
  int N = arg_dim(&c, 4, "N"), F = arg_dim(&c, 5, "F");
  double kind = arg_num(&c, 6, "kind");
  if (!c.failed && kind != 0 && kind != 1) throw_fmt(&c, 1, "kind must be 0 (quick_gelu) or 1 (gelu), got %g", kind);
  int64_t n = P2(&c, N, F);
  need(&c, dinp, "dinp", n, "N*F");
  need(&c, dout, "dout", n, "N*F");
  need(&c, inp, "inp", n, "N*F");
  need_opt(&c, mask, "mask", F, "F");
  same_or_disjoint(&c, dinp, n, "dinp", dout, "dout");
  no_overlap(&c, dinp, n, "dinp", inp, n, "inp");
  no_overlap(&c, dinp, n, "dinp", mask, F, "mask");
  if (c.failed) return NULL;
  mope_activation_bwd(dinp.data, dout.data, inp.data, mask.data, N, F, (int)kind);
  return undef(env);
}

/* attentionBackward(dqkv, dout, probs, qkv, headMask, B, T, NH, HS) */
static napi_value js_attention_backward(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "attentionBackward", 9)) return NULL;
  F32 dqkv = arg_f32(&c, 0, "dqkv", 0), dout = arg_f32(&c, 1, "dout", 0), probs = arg_f32(&c, 2, "probs", 0),
      qkv = arg_f32(&c, 3, "qkv", 0), hm = arg_f32(&c, 4, "headMask", 1);
  int B = arg_dim(&c, 5, "B"), T = arg_dim(&c, 6, "T"), NH = arg_dim(&c, 7, "NH"), HS = arg_dim(&c, 8, "HS");
  if (!c.failed && T > MOPE_ATTN_MAX_T) throw_fmt(&c, 1, "T is %d, at most %d is supported", T, MOPE_ATTN_MAX_T);
  int64_t C = P2(&c, NH, HS);
  if (!c.failed && C > INT_MAX / 3) throw_fmt(&c, 1, "NH*HS is too large");
  int64_t no = P3(&c, B, T, C), nq = P4(&c, B, T, 3, C), np = P4(&c, B, NH, T, T);
  need(&c, dqkv, "dqkv", nq, "B*T*3*NH*HS");
  need(&c, dout, "dout", no, "B*T*NH*HS");
  need(&c, probs, "probs", np, "B*NH*T*T");
  need(&c, qkv, "qkv", nq, "B*T*3*NH*HS");
  need_opt(&c, hm, "headMask", NH, "NH");
  no_overlap(&c, dqkv, nq, "dqkv", dout, no, "dout");
  no_overlap(&c, dqkv, nq, "dqkv", probs, np, "probs");
  no_overlap(&c, dqkv, nq, "dqkv", qkv, nq, "qkv");
  no_overlap(&c, dqkv, nq, "dqkv", hm, NH, "headMask");
  if (c.failed) return NULL;
  mope_attention_bwd(dqkv.data, dout.data, probs.data, qkv.data, hm.data, B, T, NH, HS);
  return undef(env);
}

/* l2normalizeBackward(dinp, dout, out, norms, N, C) */
static napi_value js_l2normalize_backward(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "l2normalizeBackward", 6)) return NULL;
  F32 dinp = arg_f32(&c, 0, "dinp", 0), dout = arg_f32(&c, 1, "dout", 0), out = arg_f32(&c, 2, "out", 0),
      norms = arg_f32(&c, 3, "norms", 0);
  int N = arg_dim(&c, 4, "N"), C = arg_dim(&c, 5, "C");
  int64_t n = P2(&c, N, C);
  need(&c, dinp, "dinp", n, "N*C");
  need(&c, dout, "dout", n, "N*C");
  need(&c, out, "out", n, "N*C");
  need(&c, norms, "norms", N, "N");
  same_or_disjoint(&c, dinp, n, "dinp", dout, "dout");
  no_overlap(&c, dinp, n, "dinp", out, n, "out");
  no_overlap(&c, dinp, n, "dinp", norms, N, "norms");
  if (c.failed) return NULL;
  mope_l2normalize_bwd(dinp.data, dout.data, out.data, norms.data, N, C);
  return undef(env);
}

/* im2patchBackward(dpixels, dpatches, B, ch, H, W, P) */
static napi_value js_im2patch_backward(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "im2patchBackward", 7)) return NULL;
  F32 dpx = arg_f32(&c, 0, "dpixels", 0), dp = arg_f32(&c, 1, "dpatches", 0);
  int B = arg_dim(&c, 2, "B"), ch = arg_dim(&c, 3, "ch"), H = arg_dim(&c, 4, "H"), W = arg_dim(&c, 5, "W"),
      P = arg_dim(&c, 6, "P");
  if (!c.failed && P < 1) throw_fmt(&c, 1, "P must be at least 1, got %d", P);
  if (!c.failed && (H % P != 0 || W % P != 0))
    throw_fmt(&c, 1, "H = %d and W = %d must be multiples of P = %d", H, W, P);
  int64_t n = P4(&c, B, ch, H, W);
  need(&c, dpx, "dpixels", n, "B*ch*H*W");
  need(&c, dp, "dpatches", n, "B*(H/P)*(W/P)*ch*P*P");
  no_overlap(&c, dpx, n, "dpixels", dp, n, "dpatches");
  if (c.failed) return NULL;
  mope_im2patch_bwd(dpx.data, dp.data, B, ch, H, W, P);
  return undef(env);
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"setThreads", NULL, js_set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getThreads", NULL, js_get_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemm", NULL, js_gemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemmStridedBatched", NULL, js_gemm_strided_batched, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linear", NULL, js_linear, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layernorm", NULL, js_layernorm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"activation", NULL, js_activation, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attention", NULL, js_attention, NULL, NULL, NULL, napi_enumerable, NULL},
      {"residualAdd", NULL, js_residual_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"l2normalize", NULL, js_l2normalize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"im2patch", NULL, js_im2patch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"resampleRows", NULL, js_resample_rows, NULL, NULL, NULL, napi_enumerable, NULL},
      {"resampleCols", NULL, js_resample_cols, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linearBackward", NULL, js_linear_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layernormBackward", NULL, js_layernorm_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"activationBackward", NULL, js_activation_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attentionBackward", NULL, js_attention_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"l2normalizeBackward", NULL, js_l2normalize_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"im2patchBackward", NULL, js_im2patch_backward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adamw", NULL, js_adamw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sumSquares", NULL, js_sum_squares, NULL, NULL, NULL, napi_enumerable, NULL},
      {"diffSquares", NULL, js_diff_squares, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scale", NULL, js_scale, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemmDnnl", NULL, js_gemm_dnnl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packWeight", NULL, js_pack_weight, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dnnlInfo", NULL, js_dnnl_info, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

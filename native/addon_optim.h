/* addon_optim.h — N-API glue of the optimiser kernels of native/optim.c (included by addon.c alone, like
 * addon_dnnl.h): adamw, sumSquares, diffSquares and scale, each argument checked before the kernel runs. */
#ifndef MOPE_ADDON_OPTIM_H
#define MOPE_ADDON_OPTIM_H
#include "addon_args.h"
#include "mope.h"

/* ---- optimiser ------------------------------------------------------------------------------- */

/* adamw(param, grad, m, v, N, lr, beta1, beta2, eps, weightDecay, step) */
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "adamw", 11)) return NULL;
  F32 p = arg_f32(&c, 0, "param", 0), g = arg_f32(&c, 1, "grad", 0), m = arg_f32(&c, 2, "m", 0),
      v = arg_f32(&c, 3, "v", 0);
  int64_t N = arg_dim(&c, 4, "N");
  double lr = arg_num(&c, 5, "lr"), b1 = arg_num(&c, 6, "beta1"), b2 = arg_num(&c, 7, "beta2"),
         eps = arg_num(&c, 8, "eps"), wd = arg_num(&c, 9, "weightDecay");
  int step = arg_dim(&c, 10, "step");
  /* the ranges torch.optim.AdamW accepts */
  if (!c.failed && lr < 0) throw_fmt(&c, 1, "lr must be >= 0, got %g", lr);
  if (!c.failed && !(b1 >= 0 && b1 < 1)) throw_fmt(&c, 1, "beta1 must be in [0, 1), got %g", b1);
  if (!c.failed && !(b2 >= 0 && b2 < 1)) throw_fmt(&c, 1, "beta2 must be in [0, 1), got %g", b2);
  if (!c.failed && eps < 0) throw_fmt(&c, 1, "eps must be >= 0, got %g", eps);
  if (!c.failed && wd < 0) throw_fmt(&c, 1, "weightDecay must be >= 0, got %g", wd);
  if (!c.failed && step < 1) throw_fmt(&c, 1, "step must be at least 1 (steps count from 1), got %d", step);
  need(&c, p, "param", N, "N");
  need(&c, g, "grad", N, "N");
  need(&c, m, "m", N, "N");
  need(&c, v, "v", N, "N");
  no_overlap(&c, p, N, "param", g, N, "grad");
  no_overlap(&c, p, N, "param", m, N, "m");
  no_overlap(&c, p, N, "param", v, N, "v");
  no_overlap(&c, m, N, "m", g, N, "grad");
  no_overlap(&c, m, N, "m", v, N, "v");
  no_overlap(&c, v, N, "v", g, N, "grad");
  if (c.failed) return NULL;
  mope_adamw(p.data, g.data, m.data, v.data, N, lr, b1, b2, eps, wd, step);
  return undef(env);
}

/* sumSquares(x, N) */
static napi_value js_sum_squares(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "sumSquares", 2)) return NULL;
  F32 x = arg_f32(&c, 0, "x", 0);
  int64_t N = arg_dim(&c, 1, "N");
  need(&c, x, "x", N, "N");
  if (c.failed) return NULL;
  napi_value r;
  napi_create_double(env, mope_sum_squares(x.data, N), &r);
  return r;
}

/* diffSquares(g, a, b, coef, N) */
static napi_value js_diff_squares(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "diffSquares", 5)) return NULL;
  F32 g = arg_f32(&c, 0, "g", 0);
  F32 a = arg_f32(&c, 1, "a", 0);
  F32 b = arg_f32(&c, 2, "b", 0);
  float coef = (float)arg_num(&c, 3, "coef");
  int64_t N = arg_dim(&c, 4, "N");
  need(&c, g, "g", N, "N");
  need(&c, a, "a", N, "N");
  need(&c, b, "b", N, "N");
  no_overlap(&c, g, N, "g", a, N, "a");
  no_overlap(&c, g, N, "g", b, N, "b");
  if (c.failed) return NULL;
  napi_value r;
  napi_create_double(env, mope_diff_squares(g.data, a.data, b.data, coef, N), &r);
  return r;
}

/* scale(x, s, N) */
static napi_value js_scale(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "scale", 3)) return NULL;
  F32 x = arg_f32(&c, 0, "x", 0);
  float s = (float)arg_num(&c, 1, "s");
  int64_t N = arg_dim(&c, 2, "N");
  need(&c, x, "x", N, "N");
  if (c.failed) return NULL;
  mope_scale(x.data, s, N);
  return undef(env);
}

#endif

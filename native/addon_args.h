/* addon_args.h — argument checking for addon.c (included by it alone, so addon.c stays the one N-API glue
 * unit): counts, types (Float32Array / null / number / boolean), dims, lengths and overlaps, each failure a
 * TypeError / RangeError naming the kernel and the argument. */
#ifndef MOPE_ADDON_ARGS_H
#define MOPE_ADDON_ARGS_H
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <node_api.h>

#define MAX_ARGS 16

typedef struct {
  napi_env env;
  const char *kernel;
  size_t argc;
  napi_value argv[MAX_ARGS];
  int failed; /* an exception is pending: every later check is a no-op and the kernel is not run */
} Call;

typedef struct {
  float *data;
  size_t len;
} F32;

static void throw_fmt(Call *c, int range, const char *fmt, ...) {
  if (c->failed) return;
  char msg[512];
  int k = snprintf(msg, sizeof msg, "%s: ", c->kernel);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
  va_end(ap);
  if (range)
    napi_throw_range_error(c->env, NULL, msg);
  else
    napi_throw_type_error(c->env, NULL, msg);
  c->failed = 1;
}

static int begin(Call *c, napi_env env, napi_callback_info info, const char *kernel, size_t want) {
  c->env = env;
  c->kernel = kernel;
  c->failed = 0;
  c->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &c->argc, c->argv, NULL, NULL) != napi_ok) {
    throw_fmt(c, 0, "could not read arguments");
    return 0;
  }
  if (c->argc != want) throw_fmt(c, 0, "expected %zu arguments, got %zu", want, c->argc);
  return !c->failed;
}

static napi_valuetype type_of(Call *c, size_t i) {
  napi_valuetype t = napi_undefined;
  napi_typeof(c->env, c->argv[i], &t);
  return t;
}

/* Float32Array argument i; nullable accepts null (and undefined) as "absent" (data NULL). */
static F32 arg_f32(Call *c, size_t i, const char *name, int nullable) {
  F32 r = {NULL, 0};
  if (c->failed) return r;
  napi_valuetype t = type_of(c, i);
  if (nullable && (t == napi_null || t == napi_undefined)) return r;
  bool is_ta = false;
  napi_is_typedarray(c->env, c->argv[i], &is_ta);
  napi_typedarray_type tt = napi_int8_array;
  void *data = NULL;
  size_t len = 0;
  if (is_ta) napi_get_typedarray_info(c->env, c->argv[i], &tt, &len, &data, NULL, NULL);
  if (!is_ta || tt != napi_float32_array) {
    throw_fmt(c, 0, "%s must be a Float32Array%s", name, nullable ? " or null" : "");
    return r;
  }
  r.data = (float *)data;
  r.len = len;
  return r;
}

static double arg_num(Call *c, size_t i, const char *name) {
  double v = 0.0;
  if (c->failed) return v;
  if (type_of(c, i) != napi_number) {
    throw_fmt(c, 0, "%s must be a number", name);
    return v;
  }
  napi_get_value_double(c->env, c->argv[i], &v);
  if (!isfinite(v)) throw_fmt(c, 1, "%s must be finite, got %g", name, v);
  return v;
}

/* A dimension or stride: a non-negative integer that fits in a C int. */
static int arg_dim(Call *c, size_t i, const char *name) {
  double v = arg_num(c, i, name);
  if (c->failed) return 0;
  if (v < 0 || v != floor(v) || v > INT_MAX) {
    throw_fmt(c, 1, "%s must be a non-negative integer below 2^31, got %g", name, v);
    return 0;
  }
  return (int)v;
}

static int arg_bool(Call *c, size_t i, const char *name) {
  bool v = false;
  if (c->failed) return 0;
  if (type_of(c, i) != napi_boolean) {
    throw_fmt(c, 0, "%s must be a boolean", name);
    return 0;
  }
  napi_get_value_bool(c->env, c->argv[i], &v);
  return v;
}

/* Product of dims, as a size; RangeError on overflow past 2^53 (no JS array is that long anyway). */
static int64_t prod(Call *c, int n, ...) {
  va_list ap;
  va_start(ap, n);
  int64_t r = 1;
  for (int k = 0; k < n; k++) {
    int64_t d = va_arg(ap, int64_t);
    if (!c->failed && d != 0 && r > ((int64_t)1 << 53) / d) throw_fmt(c, 1, "dimensions are too large");
    r *= d;
  }
  va_end(ap);
  return c->failed ? 0 : r;
}
#define P2(c, a, b) prod(c, 2, (int64_t)(a), (int64_t)(b))
#define P3(c, a, b, d) prod(c, 3, (int64_t)(a), (int64_t)(b), (int64_t)(d))
#define P4(c, a, b, d, e) prod(c, 4, (int64_t)(a), (int64_t)(b), (int64_t)(d), (int64_t)(e))

/* Arrays may be longer than needed (views into a bigger buffer are fine), never shorter. */
static void need(Call *c, F32 x, const char *name, int64_t want, const char *expr) {
  if (c->failed) return;
  if ((int64_t)x.len < want)
    throw_fmt(c, 1, "%s has %zu elements, expected %s = %lld", name, x.len, expr, (long long)want);
}
static void need_opt(Call *c, F32 x, const char *name, int64_t want, const char *expr) {
  if (x.data) need(c, x, name, want, expr);
}

/* Outputs written by a kernel must not share memory with its other arguments (except where documented). */
static void no_overlap(Call *c, F32 x, int64_t nx, const char *xn, F32 y, int64_t ny, const char *yn) {
  if (c->failed || !x.data || !y.data || nx <= 0 || ny <= 0) return;
  const char *x0 = (const char *)x.data, *x1 = x0 + nx * 4, *y0 = (const char *)y.data, *y1 = y0 + ny * 4;
  if (x0 < y1 && y0 < x1) throw_fmt(c, 1, "%s overlaps %s in memory; use separate buffers", xn, yn);
}
/* Elementwise kernels allow exact aliasing but not a shifted overlap. */
static void same_or_disjoint(Call *c, F32 x, int64_t n, const char *xn, F32 y, const char *yn) {
  if (x.data != y.data) no_overlap(c, x, n, xn, y, n, yn);
}

static napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* ---------------------------------------------------------------------------------------------- */

#endif

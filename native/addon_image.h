/* addon_image.h — N-API glue of the image resampling passes (included by addon.c alone, like addon_dnnl.h):
 * Uint8Array / Int32Array arguments, checks that every coefficient window lies inside its input, and the
 * resampleRows / resampleCols bindings of native/image.c. */
#ifndef MOPE_ADDON_IMAGE_H
#define MOPE_ADDON_IMAGE_H
#include "addon_args.h"
#include "mope.h"

/* A Uint8Array or Int32Array argument (the image kernels): data and element count. */
typedef struct {
  void *data;
  size_t len;
} Ints;

static Ints arg_ints(Call *c, size_t i, const char *name, napi_typedarray_type want, const char *tname) {
  Ints r = {NULL, 0};
  if (c->failed) return r;
  bool is_ta = false;
  napi_is_typedarray(c->env, c->argv[i], &is_ta);
  napi_typedarray_type tt = napi_float32_array;
  if (is_ta) napi_get_typedarray_info(c->env, c->argv[i], &tt, &r.len, &r.data, NULL, NULL);
  if (!is_ta || tt != want) {
    throw_fmt(c, 0, "%s must be a %s", name, tname);
    r.data = NULL;
    r.len = 0;
  }
  return r;
}
#define arg_u8(c, i, name) arg_ints(c, i, name, napi_uint8_array, "Uint8Array")
#define arg_i32(c, i, name) arg_ints(c, i, name, napi_int32_array, "Int32Array")

/* Coefficient tables of n output pixels: start/count [n], k [n*ksize]; every window inside [lo, hi) of the input. */
static void check_coeffs(Call *c, Ints start, Ints count, Ints k, int n, int ksize, int64_t lo, int64_t hi) {
  if (c->failed) return;
  if ((int64_t)start.len < n || (int64_t)count.len < n)
    throw_fmt(c, 1, "start and count need %d elements, have %zu and %zu", n, start.len, count.len);
  else if ((int64_t)k.len < (int64_t)n * ksize)
    throw_fmt(c, 1, "k has %zu elements, expected n*ksize = %lld", k.len, (long long)n * ksize);
  const int32_t *s = start.data, *m = count.data;
  for (int i = 0; i < n && !c->failed; i++)
    if (m[i] < 0 || m[i] > ksize || s[i] < lo || (int64_t)s[i] + m[i] > hi)
      throw_fmt(c, 1, "window %d (start %d, count %d) must lie in [%lld, %lld) with count <= ksize = %d", i, s[i], m[i],
                (long long)lo, (long long)hi, ksize);
}

static void u8_disjoint(Call *c, Ints a, const char *an, Ints b, const char *bn) {
  if (c->failed) return;
  const uint8_t *a0 = a.data, *b0 = b.data;
  if (a0 < b0 + b.len && b0 < a0 + a.len) throw_fmt(c, 1, "%s overlaps %s in memory; use separate buffers", an, bn);
}

/* resampleRows(out, src, srcW, rowOffset, rows, outW, channels, ksize, start, count, k) */
static napi_value js_resample_rows(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "resampleRows", 11)) return NULL;
  Ints out = arg_u8(&c, 0, "out"), src = arg_u8(&c, 1, "src");
  int srcW = arg_dim(&c, 2, "srcW"), off = arg_dim(&c, 3, "rowOffset"), rows = arg_dim(&c, 4, "rows"),
      outW = arg_dim(&c, 5, "outW"), ch = arg_dim(&c, 6, "channels"), ksize = arg_dim(&c, 7, "ksize");
  Ints start = arg_i32(&c, 8, "start"), count = arg_i32(&c, 9, "count"), k = arg_i32(&c, 10, "k");
  if (!c.failed && (ch < 1 || ch > 4)) throw_fmt(&c, 1, "channels must be 1 to 4, got %d", ch);
  int64_t nsrc = P3(&c, (int64_t)off + rows, srcW, ch), nout = P3(&c, rows, outW, ch);
  if (!c.failed && (int64_t)src.len < nsrc)
    throw_fmt(&c, 1, "src has %zu bytes, expected (rowOffset+rows)*srcW*channels = %lld", src.len, (long long)nsrc);
  if (!c.failed && (int64_t)out.len < nout)
    throw_fmt(&c, 1, "out has %zu bytes, expected rows*outW*channels = %lld", out.len, (long long)nout);
  check_coeffs(&c, start, count, k, outW, ksize, 0, srcW);
  u8_disjoint(&c, out, "out", src, "src");
  if (c.failed) return NULL;
  mope_resample_rows_u8(out.data, src.data, srcW, off, rows, outW, ch, ksize, start.data, count.data, k.data);
  return undef(env);
}

/* resampleCols(out, src, width, outH, channels, ksize, start, count, k, rowShift) */
static napi_value js_resample_cols(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(&c, env, info, "resampleCols", 10)) return NULL;
  Ints out = arg_u8(&c, 0, "out"), src = arg_u8(&c, 1, "src");
  int width = arg_dim(&c, 2, "width"), outH = arg_dim(&c, 3, "outH"), ch = arg_dim(&c, 4, "channels"),
      ksize = arg_dim(&c, 5, "ksize");
  Ints start = arg_i32(&c, 6, "start"), count = arg_i32(&c, 7, "count"), k = arg_i32(&c, 8, "k");
  int shift = arg_dim(&c, 9, "rowShift");
  if (!c.failed && (ch < 1 || ch > 4)) throw_fmt(&c, 1, "channels must be 1 to 4, got %d", ch);
  int64_t stride = P2(&c, width, ch), nout = P3(&c, outH, width, ch);
  if (!c.failed && (int64_t)out.len < nout)
    throw_fmt(&c, 1, "out has %zu bytes, expected outH*width*channels = %lld", out.len, (long long)nout);
  /* rows of src available: src.len / stride, holding source rows rowShift … */
  int64_t srows = stride > 0 ? (int64_t)src.len / stride : 0;
  check_coeffs(&c, start, count, k, outH, ksize, shift, shift + srows);
  u8_disjoint(&c, out, "out", src, "src");
  if (c.failed) return NULL;
  mope_resample_cols_u8(out.data, src.data, width, outH, ch, ksize, start.data, count.data, k.data, shift);
  return undef(env);
}

#endif

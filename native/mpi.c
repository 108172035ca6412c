/* mpi.c — the thin MPI binding of data-parallel training, a separate addon (build/Release/mope_mpi.node) so that
 * the kernel library never links libmpi: it is loaded only by a process started under mpirun / srun. Every
 * collective runs on MPI_COMM_WORLD as a non-blocking call polled against a deadline, so a dead or stuck peer
 * becomes a JS Error after `timeoutS` seconds instead of a hang. Float32Array buffers only. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <mpi.h>
#include <node_api.h>

static int g_init = 0;

static napi_value throw_err(napi_env env, const char *fn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static napi_value throw_err(napi_env env, const char *fn, const char *fmt, ...) {
  char msg[600];
  int k = snprintf(msg, sizeof msg, "mpi.%s: ", fn);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
  va_end(ap);
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *fn) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    throw_err(env, fn, "expected %zu arguments, got %zu", want, argc);
    return 0;
  }
  if (!g_init && strcmp(fn, "init") != 0) {
    throw_err(env, fn, "MPI is not initialised (call init first)");
    return 0;
  }
  return 1;
}

static int get_f32(napi_env env, napi_value v, const char *fn, const char *name, float **data, size_t *len) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  napi_typedarray_type t;
  void *p = NULL;
  if (is_ta) napi_get_typedarray_info(env, v, &t, len, &p, NULL, NULL);
  if (!is_ta || t != napi_float32_array) {
    throw_err(env, fn, "%s must be a Float32Array", name);
    return 0;
  }
  *data = (float *)p;
  return 1;
}

static int get_num(napi_env env, napi_value v, const char *fn, const char *name, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    throw_err(env, fn, "%s must be a number", name);
    return 0;
  }
  return 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Polls req until done or timeoutS elapsed: spins briefly, then sleeps 20 µs .. 1 ms between tests. Returns 0 on
 * completion, -1 on timeout, an MPI error code otherwise. */
static int wait_deadline(MPI_Request *req, double timeoutS) {
  double deadline = now_s() + timeoutS;
  long sleep_ns = 0;
  for (int it = 0;; it++) {
    int done = 0;
    int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return rc;
    if (done) return 0;
    if (now_s() > deadline) return -1;
    if (it > 2000) {
      sleep_ns = sleep_ns == 0 ? 20000 : (sleep_ns < 1000000 ? sleep_ns * 2 : 1000000);
      struct timespec ts = {0, sleep_ns};
      nanosleep(&ts, NULL);
    }
  }
}

static napi_value finish(napi_env env, const char *fn, int rc, double timeoutS) {
  if (rc == 0) return NULL;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rc == -1) {
    return throw_err(env, fn,
                     "rank %d: no answer from the other ranks within %g s (a peer died, hangs, or is far "
                     "behind; set MOPE_MPI_TIMEOUT_S to wait longer)",
                     rank, timeoutS);
  }
  char s[MPI_MAX_ERROR_STRING];
  int n = 0;
  MPI_Error_string(rc, s, &n);
  return throw_err(env, fn, "rank %d: %s", rank, s);
}

static napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value int_obj(napi_env env, int rank, int size) {
  napi_value o, a, b;
  napi_create_object(env, &o);
  napi_create_int32(env, rank, &a);
  napi_create_int32(env, size, &b);
  napi_set_named_property(env, o, "rank", a);
  napi_set_named_property(env, o, "size", b);
  return o;
}

/* init() → {rank, size}. libmpi is promoted to RTLD_GLOBAL first: Open MPI's plugins resolve their symbols
 * against it, and Node loads addons (and so their libraries) RTLD_LOCAL. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 0, argv, "init")) return NULL;
  if (!g_init) {
    const char *libs[] = {"libmpi.so.40", "libmpi.so.12", "libmpi.so"};
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
      if (dlopen(libs[i], RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) break;
    }
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return throw_err(env, "init", "MPI_Init_thread failed with code %d", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    g_init = 1;
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return int_obj(env, rank, size);
}

/* Collectives move at most 2^30 floats per call; longer buffers go in chunks. */
#define CHUNK ((size_t)1 << 30)

/* allreduceSum(buf, timeoutS): buf ← Σ over ranks of buf, in place. */
static napi_value js_allreduce(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  float *d;
  size_t n;
  double to;
  if (!get_args(env, info, 2, argv, "allreduceSum") || !get_f32(env, argv[0], "allreduceSum", "buf", &d, &n) ||
      !get_num(env, argv[1], "allreduceSum", "timeoutS", &to))
    return NULL;
  for (size_t o = 0; o < n; o += CHUNK) {
    int cnt = (int)(n - o < CHUNK ? n - o : CHUNK);
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, d + o, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS) rc = wait_deadline(&req, to);
    if (rc != 0) return finish(env, "allreduceSum", rc, to);
  }
  return undef(env);
}

/* allgather(send, recv, timeoutS): recv[r·n .. (r+1)·n) ← rank r's send (n = send.length, the same on every rank). */
static napi_value js_allgather(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  float *s, *r;
  size_t ns, nr;
  double to;
  if (!get_args(env, info, 3, argv, "allgather") || !get_f32(env, argv[0], "allgather", "send", &s, &ns) ||
      !get_f32(env, argv[1], "allgather", "recv", &r, &nr) || !get_num(env, argv[2], "allgather", "timeoutS", &to)) {
    return NULL;
  }
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (nr != ns * (size_t)size) {
    return throw_err(env, "allgather", "recv has %zu elements, expected send.length × ranks = %zu × %d", nr, ns, size);
  }
  if (ns > (size_t)INT32_MAX) return throw_err(env, "allgather", "send has %zu elements, at most 2^31−1 allowed", ns);
  MPI_Request req;
  int rc = MPI_Iallgather(s, (int)ns, MPI_FLOAT, r, (int)ns, MPI_FLOAT, MPI_COMM_WORLD, &req);
  if (rc == MPI_SUCCESS) rc = wait_deadline(&req, to);
  if (rc != 0) return finish(env, "allgather", rc, to);
  return undef(env);
}

/* broadcast(buf, root, timeoutS): every rank's buf ← root's. */
static napi_value js_broadcast(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  float *d;
  size_t n;
  double root, to;
  if (!get_args(env, info, 3, argv, "broadcast") || !get_f32(env, argv[0], "broadcast", "buf", &d, &n) ||
      !get_num(env, argv[1], "broadcast", "root", &root) || !get_num(env, argv[2], "broadcast", "timeoutS", &to)) {
    return NULL;
  }
  for (size_t o = 0; o < n; o += CHUNK) {
    int cnt = (int)(n - o < CHUNK ? n - o : CHUNK);
    MPI_Request req;
    int rc = MPI_Ibcast(d + o, cnt, MPI_FLOAT, (int)root, MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS) rc = wait_deadline(&req, to);
    if (rc != 0) return finish(env, "broadcast", rc, to);
  }
  return undef(env);
}

static napi_value js_barrier(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  double to;
  if (!get_args(env, info, 1, argv, "barrier") || !get_num(env, argv[0], "barrier", "timeoutS", &to)) return NULL;
  MPI_Request req;
  int rc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
  if (rc == MPI_SUCCESS) rc = wait_deadline(&req, to);
  if (rc != 0) return finish(env, "barrier", rc, to);
  return undef(env);
}

/* abort(code): ends every rank of the job (does not return). */
static napi_value js_abort(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  double code;
  if (!get_args(env, info, 1, argv, "abort") || !get_num(env, argv[0], "abort", "code", &code)) return NULL;
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, (int)code);
  return undef(env);
}

static napi_value js_finalize(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 0, argv, "finalize")) return NULL;
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
  return undef(env);
}

static napi_value init_module(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"allreduceSum", NULL, js_allreduce, NULL, NULL, NULL, napi_default, NULL},
      {"allgather", NULL, js_allgather, NULL, NULL, NULL, napi_default, NULL},
      {"broadcast", NULL, js_broadcast, NULL, NULL, NULL, napi_default, NULL},
      {"barrier", NULL, js_barrier, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, js_abort, NULL, NULL, NULL, napi_default, NULL},
      {"finalize", NULL, js_finalize, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)

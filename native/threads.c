/* threads.c — one thread count shared by the OpenMP kernels and OpenBLAS. No dims. */
#include <omp.h>
#include "mope.h"

/* Debian's openblas-pthread cblas.h declares this; repeated here so the file builds against any cblas.h. */
extern void openblas_set_num_threads(int num_threads);

void mope_set_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int mope_get_threads(void) {
  return omp_get_max_threads();
}

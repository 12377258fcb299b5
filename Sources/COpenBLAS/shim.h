#include <cblas.h>

/* LAPACK's Cholesky factorization (exported by libopenblas; no LAPACKE header needed). The trailing
   argument is gfortran's hidden length of `uplo`. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);

/*
 * ec_linear_mve.h - the Helium (MVE) dot products of the fast fully connected layer
 * (ec_linear_fast.c), for cores with EC_FAST_MVE (ec_fast.h).  They read the same packed
 * weights as the DSP path, and the int8 input at any alignment.
 */
#ifndef EC_LINEAR_MVE_H
#define EC_LINEAR_MVE_H

#include <stdint.h>

#include "ec_fast.h"

#if EC_FAST_MVE
/* acc[r] += row r . x over the first 4 * n values (n > 0 chunks), for rows r < rows:
 * 4 rows whose words are interleaved (a group of ec_fast.h), or 1 row.  Returns w past
 * the bytes read. */
const int8_t *ec_linear_mve_dot(const int8_t *w, const int8_t *x, int n, int rows, int32_t *acc);
#endif

#endif /* EC_LINEAR_MVE_H */

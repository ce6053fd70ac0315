/*
 * ec_pool2d_mve.h - the Helium (MVE) reduction of the fast pooling kernels (ec_pool2d_fast.c),
 * for cores with EC_FAST_MVE (ec_fast.h): long runs of values, as in global pooling.
 */
#ifndef EC_POOL2D_MVE_H
#define EC_POOL2D_MVE_H

#include <stdint.h>

#include "ec_fast.h"

#if EC_FAST_MVE
/* The max (from r, is_max) or the sum (from r) of the n >= 0 values at p. */
int32_t ec_pool_mve_run(const int8_t *p, int n, int32_t r, int is_max);
#endif

#endif /* EC_POOL2D_MVE_H */

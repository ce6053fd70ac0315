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

/* n > 0 outputs of 2x2 max pooling with horizontal stride 2: out[i] = the max of p[2i], p[2i + 1],
 * p[in_w + 2i], p[in_w + 2i + 1] (every window inside the input).  Returns out + n. */
int8_t *ec_pool_mve_max_2x2_s2(const int8_t *p, int in_w, int n, int8_t *out);
#endif

#endif /* EC_POOL2D_MVE_H */

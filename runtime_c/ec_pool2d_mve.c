/*
 * ec_pool2d_mve.c - Helium (MVE) reduction for the fast pooling kernels (see ec_pool2d_mve.h).
 *
 * 16 values per vector: VADDVA adds the 16 int8 lanes to a 32-bit sum, VMAXV keeps the
 * largest of them and the running max; the last n % 16 values are a predicated load
 * (inactive lanes 0, which add nothing) and, for the max, a predicated VMAXV (inactive
 * lanes take no part).  Exactness: the same values are reduced; the sum is at most
 * 128 * n in magnitude, within the bound of ec_pool2d.h, so the int32 result is the same.
 */
#include "ec_pool2d_mve.h"

#if EC_FAST_MVE

int32_t ec_pool_mve_run(const int8_t *p, int n, int32_t r, int is_max)
{
    const mve_pred16_t tail = vctp8q((uint32_t)(n & 15));
    int j;
    if (is_max) {
        int8_t m = (int8_t)r; /* r is an int8 value or INT8_MIN */
        for (j = n >> 4; j > 0; --j, p += 16) {
            m = vmaxvq_s8(m, vld1q_s8(p));
        }
        if (n & 15) {
            m = vmaxvq_p_s8(m, vld1q_z_s8(p, tail), tail);
        }
        return m;
    }
    for (j = n >> 4; j > 0; --j, p += 16) {
        r = vaddvaq_s8(r, vld1q_s8(p));
    }
    if (n & 15) {
        r = vaddvaq_s8(r, vld1q_z_s8(p, tail));
    }
    return r;
}

#else
typedef int ec_pool2d_mve_unused; /* ISO C wants a declaration in every translation unit */
#endif

/*
 * ec_pool2d_mve.c - Helium (MVE) reduction for the fast pooling kernels (see ec_pool2d_mve.h).
 *
 * 16 values per vector: VADDVA adds the 16 int8 lanes to a 32-bit sum, VMAXV keeps the
 * largest of them and the running max; the last n % 16 values are a predicated load
 * (inactive lanes 0, which add nothing) and, for the max, a predicated VMAXV (inactive
 * lanes take no part).  Exactness: the same values are reduced; the sum is at most
 * 128 * n in magnitude, within the bound of ec_pool2d.h, so the int32 result is the same.
 * 2x2 max pooling with stride 2 takes 16 windows per vector: the max of the same four values.
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

/* Byte offsets of the left and right columns of 16 windows 2 apart. */
static const uint8_t ec_pool_mve_left[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};

/* 16 windows per step: four predicated gathers (the two columns of the two rows; inactive lanes
 * load nothing, so the last windows of a row read nothing past them), three VMAX, one store. */
int8_t *ec_pool_mve_max_2x2_s2(const int8_t *p, int in_w, int n, int8_t *out)
{
    const uint8x16_t left = vld1q_u8(ec_pool_mve_left), right = vaddq_n_u8(left, 1);
    for (; n > 0; n -= 16, p += 32, out += 16) {
        const mve_pred16_t q = vctp8q((uint32_t)n);
        const int8x16_t top = vmaxq_s8(vldrbq_gather_offset_z_s8(p, left, q), vldrbq_gather_offset_z_s8(p, right, q));
        const int8x16_t bottom = vmaxq_s8(vldrbq_gather_offset_z_s8(p + in_w, left, q),
                                          vldrbq_gather_offset_z_s8(p + in_w, right, q));
        vstrbq_p_s8(out, vmaxq_s8(top, bottom), q);
    }
    return out + n; /* n <= 0 here: back from the end of the last step */
}

#else
typedef int ec_pool2d_mve_unused; /* ISO C wants a declaration in every translation unit */
#endif

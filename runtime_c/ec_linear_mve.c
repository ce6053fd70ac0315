/*
 * ec_linear_mve.c - Helium (MVE) dot products of the fast fully connected layer (see
 * ec_linear_mve.h).
 *
 * A group of 4 rows stores its words interleaved (word j of rows 0, 1, 2, 3, then word
 * j + 1, ...): VLD40..VLD43 of 64 bytes split them into one vector per row, the row's 16
 * values j .. j + 15 in the natural order, and one VMLADAVA per row adds their 16
 * products with the input's 16 values (one load for the four rows).  The last 1 to 3
 * words of each row come through a predicated gather (inactive lanes 0) and a predicated
 * input load.  A single row reads its values straight.
 *
 * Exactness: the same products w * x as the reference (|w * x| <= 2^14), added in
 * another order to an accumulator that starts at the same value; every partial sum,
 * VMLADAVA's included, is bounded by acc_bound (+ 2^(s-1)) <= 2^31 - 1 (ec_fast.h).
 */
#include "ec_linear_mve.h"

#if EC_FAST_MVE

/* Byte offsets of one row's values among the last 1 to 3 words of a group of 4 rows (its
 * words are 16 bytes apart), lanes in the row's value order. */
static const uint8_t ec_linear_mve_rest[16] = {0, 1, 2, 3, 16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51};

const int8_t *ec_linear_mve_dot(const int8_t *w, const int8_t *x, int n, int rows, int32_t *acc)
{
    const int blocks = n >> 2, rest = 4 * (n & 3); /* 16 values per block; rest values after */
    const mve_pred16_t p_rest = vctp8q((uint32_t)rest);
    int j;
    if (rows == 4) {
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        for (j = blocks; j > 0; --j) {
            const int32x4x4_t v = vld4q_s32((const int32_t *)(const void *)w); /* aligned: ec_fast.h */
            const int8x16_t xv = vld1q_s8(x);
            a0 = vmladavaq_s8(a0, vreinterpretq_s8_s32(v.val[0]), xv);
            a1 = vmladavaq_s8(a1, vreinterpretq_s8_s32(v.val[1]), xv);
            a2 = vmladavaq_s8(a2, vreinterpretq_s8_s32(v.val[2]), xv);
            a3 = vmladavaq_s8(a3, vreinterpretq_s8_s32(v.val[3]), xv);
            w += 64;
            x += 16;
        }
        if (rest != 0) {
            const uint8x16_t offs = vld1q_u8(ec_linear_mve_rest);
            const int8x16_t xv = vld1q_z_s8(x, p_rest);
            a0 = vmladavaq_s8(a0, vldrbq_gather_offset_z_s8(w, offs, p_rest), xv);
            a1 = vmladavaq_s8(a1, vldrbq_gather_offset_z_s8(w + 4, offs, p_rest), xv);
            a2 = vmladavaq_s8(a2, vldrbq_gather_offset_z_s8(w + 8, offs, p_rest), xv);
            a3 = vmladavaq_s8(a3, vldrbq_gather_offset_z_s8(w + 12, offs, p_rest), xv);
            w += 4 * rest;
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
    } else {
        int32_t a = acc[0];
        for (j = blocks; j > 0; --j) {
            a = vmladavaq_s8(a, vld1q_s8(w), vld1q_s8(x));
            w += 16;
            x += 16;
        }
        if (rest != 0) {
            a = vmladavaq_s8(a, vld1q_z_s8(w, p_rest), vld1q_z_s8(x, p_rest));
            w += rest;
        }
        acc[0] = a;
    }
    return w;
}

#else
typedef int ec_linear_mve_unused; /* ISO C wants a declaration in every translation unit */
#endif

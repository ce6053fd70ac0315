/*
 * ec_conv2d_mve.c - Helium (MVE) steps of the fast convolutions (see ec_conv2d_mve.h).
 *
 * Per pair of output pixels A, B and pair of output channels a, b (rows of packed
 * weights), four accumulators: a.A, a.B, b.A, b.B.  The packed words of a pair of rows
 * alternate (word j of a, word j of b, ...): VLD20/VLD21 of 32 bytes split them into row
 * a's 16 values and row b's 16 values, each in the word order (k0, k2, k1, k3), the order
 * the columns are stored in (ec_conv2d_mve.h).  One VMLADAVA then adds 16 products
 * w * x to an accumulator: per 16 values of a pair of rows, 2 weight loads, 2 column
 * loads and 4 VMLADAVAs for 64 products.  The last K4 % 16 values of a row (1 to 3
 * words) come through a predicated gather of the row's bytes (inactive lanes 0) and a
 * predicated column load; the K % 4 tail products are added in scalar code from the
 * tail layout of ec_fast.h; then the four outputs are stored.
 *
 * Exactness: each accumulator starts at the reference's bias (+ the folded rounding
 * constant, ec_fast.h) and adds the reference's products w * x (|w * x| <= 2^14), in
 * another order.  Every partial sum, including VMLADAVA's (a partial sum of the same
 * accumulator), is bounded by acc_bound (+ 2^(s-1)) <= 2^31 - 1, so no step overflows
 * and the int32 result and the output are the same.
 */
#include "ec_conv2d_mve.h"

#if EC_FAST_MVE

/* Byte offsets of one row's values among the last 1 to 3 words of a pair of rows (its
 * words are 8 bytes apart), lanes in the row's value order. */
static const uint8_t ec_conv_mve_pair_rest[16] = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};

void ec_conv_mve_cols_pointwise(const int8_t *a, long d, long plane, int k4, int tail, int8_t *cols)
{
    /* Lane i of a word gathers value order[i] of its chunk: (k0, k2, k1, k3). */
    const uint32_t p = (uint32_t)plane, order[4] = {0, 2 * p, p, 3 * p};
    const uint32x4_t offs = vld1q_u32(order);
    int8_t *qa = cols, *qb = cols + k4 + 4;
    int j, i;
    for (j = k4 >> 2; j > 0; --j) {
        vstrbq_s32(qa, vldrbq_gather_offset_s32(a, offs));
        vstrbq_s32(qb, vldrbq_gather_offset_s32(a + d, offs));
        a += 4 * plane;
        qa += 4;
        qb += 4;
    }
    for (i = 0; i < tail; ++i) {
        qa[i] = a[0];
        qb[i] = a[d];
        a += plane;
    }
}

void ec_conv_mve_order_offsets(int32_t *offs, int k4)
{
    int j;
    for (j = 0; j < k4; j += 4) {
        const int32_t t = offs[j + 1];
        offs[j + 1] = offs[j + 2];
        offs[j + 2] = t;
    }
}

void ec_conv_mve_cols(const int8_t *a, const int8_t *b, const int32_t *offs, int k4, int tail, int8_t *cols)
{
    int8_t *qa = cols, *qb = cols + k4 + 4;
    int j, i;
    for (j = k4 >> 2; j > 0; --j) {
        /* the offsets are >= 0 (taps right of or below the window's top-left one) */
        const uint32x4_t o = vreinterpretq_u32_s32(vld1q_s32(offs));
        vstrbq_s32(qa, vldrbq_gather_offset_s32(a, o));
        vstrbq_s32(qb, vldrbq_gather_offset_s32(b, o));
        offs += 4;
        qa += 4;
        qb += 4;
    }
    for (i = 0; i < tail; ++i) {
        qa[i] = a[offs[i]];
        qb[i] = b[offs[i]];
    }
}

/* The four accumulators of one pair of rows (or two of one row: b == a). */
struct ec_conv_mve_acc {
    int32_t aa, ab, ba, bb; /* row a . A, row a . B, row b . A, row b . B */
};

/* The pixel pair for one output mode (constant after inlining, so the output rule folds). */
static EC_FAST_INLINE void ec_conv_mve_pair_mode(const struct ec_conv_mve_plan *pl, const int8_t *cols, int b_step,
                                                 int8_t *out, int mode)
{
    const int k4 = pl->k4, tail = pl->tail, blocks = k4 >> 4, rest = k4 & 15;
    const int8_t *xa = cols, *xb = cols + k4 + 4;
    const int8_t *ta = xa + k4, *tb = xb + k4; /* the tail values, natural order */
    const mve_pred16_t p_rest = vctp8q((uint32_t)rest);
    const uint8x16_t gather = vld1q_u8(ec_conv_mve_pair_rest);
    /* the columns' last K4 % 16 values, 0 in the inactive lanes */
    const int8x16_t xa_rest = vld1q_z_s8(xa + 16 * blocks, p_rest), xb_rest = vld1q_z_s8(xb + 16 * blocks, p_rest);
    const int8_t *w = pl->weight, *w2 = pl->w_tail2, *w1 = pl->w_tail1, *s = pl->shift;
    const int32_t *init = pl->init;
    const long stride = pl->out_stride;
    int c, j;

    for (c = pl->pairs; c > 0; --c, init += 2) {
        struct ec_conv_mve_acc r;
        const int8_t *pa = xa, *pb = xb;
        r.aa = r.ab = init[0];
        r.ba = r.bb = init[1];
        for (j = blocks; j > 0; --j) {
            const int32x4x2_t v = vld2q_s32((const int32_t *)(const void *)w); /* aligned: ec_fast.h */
            const int8x16_t wa = vreinterpretq_s8_s32(v.val[0]), wb = vreinterpretq_s8_s32(v.val[1]);
            const int8x16_t x0 = vld1q_s8(pa), x1 = vld1q_s8(pb);
            r.aa = vmladavaq_s8(r.aa, wa, x0);
            r.ab = vmladavaq_s8(r.ab, wa, x1);
            r.ba = vmladavaq_s8(r.ba, wb, x0);
            r.bb = vmladavaq_s8(r.bb, wb, x1);
            w += 32;
            pa += 16;
            pb += 16;
        }
        if (rest != 0) {
            const int8x16_t wa = vldrbq_gather_offset_z_s8(w, gather, p_rest);
            const int8x16_t wb = vldrbq_gather_offset_z_s8(w + 4, gather, p_rest);
            r.aa = vmladavaq_s8(r.aa, wa, xa_rest);
            r.ab = vmladavaq_s8(r.ab, wa, xb_rest);
            r.ba = vmladavaq_s8(r.ba, wb, xa_rest);
            r.bb = vmladavaq_s8(r.bb, wb, xb_rest);
            w += 2 * rest;
        }
        if (tail & 2) { /* the word (a_k0, b_k0, a_k1, b_k1) */
            r.aa += (int32_t)w2[0] * ta[0] + (int32_t)w2[2] * ta[1];
            r.ab += (int32_t)w2[0] * tb[0] + (int32_t)w2[2] * tb[1];
            r.ba += (int32_t)w2[1] * ta[0] + (int32_t)w2[3] * ta[1];
            r.bb += (int32_t)w2[1] * tb[0] + (int32_t)w2[3] * tb[1];
            w2 += 4;
        }
        if (tail & 1) { /* the halfword (a_kl, b_kl) of the last value */
            r.aa += (int32_t)w1[0] * ta[tail - 1];
            r.ab += (int32_t)w1[0] * tb[tail - 1];
            r.ba += (int32_t)w1[1] * ta[tail - 1];
            r.bb += (int32_t)w1[1] * tb[tail - 1];
            w1 += 2;
        }
        ec_fast_output2(r.aa, s[0], r.ab, s[0], mode, pl->act_min, pl->act_max, out, b_step);
        s += pl->shift_step;
        out += stride;
        ec_fast_output2(r.ba, s[0], r.bb, s[0], mode, pl->act_min, pl->act_max, out, b_step);
        s += pl->shift_step;
        out += stride;
    }
    if (pl->out_c & 1) { /* the last row: K4 values one after another, then its tail */
        const int8_t *wo = pl->w_tail_odd;
        const int8_t *pa = xa, *pb = xb;
        int32_t a = init[0], b = init[0];
        int i;
        for (j = blocks; j > 0; --j) {
            const int8x16_t v = vld1q_s8(w);
            a = vmladavaq_s8(a, v, vld1q_s8(pa));
            b = vmladavaq_s8(b, v, vld1q_s8(pb));
            w += 16;
            pa += 16;
            pb += 16;
        }
        if (rest != 0) {
            const int8x16_t v = vld1q_z_s8(w, p_rest);
            a = vmladavaq_s8(a, v, xa_rest);
            b = vmladavaq_s8(b, v, xb_rest);
        }
        for (i = 0; i < tail; ++i) {
            a += (int32_t)wo[i] * ta[i];
            b += (int32_t)wo[i] * tb[i];
        }
        ec_fast_output2(a, s[0], b, s[0], mode, pl->act_min, pl->act_max, out, b_step);
    }
}

void ec_conv_mve_pixel_pair(const struct ec_conv_mve_plan *pl, const int8_t *cols, int b_step, int8_t *out)
{
    if (pl->mode == EC_RQ_S8) {
        ec_conv_mve_pair_mode(pl, cols, b_step, out, EC_RQ_S8);
    } else if (pl->mode == EC_RQ_RELU) {
        ec_conv_mve_pair_mode(pl, cols, b_step, out, EC_RQ_RELU);
    } else {
        ec_conv_mve_pair_mode(pl, cols, b_step, out, pl->mode); /* the rare modes: out of line per value */
    }
}

#else
typedef int ec_conv2d_mve_unused; /* ISO C wants a declaration in every translation unit */
#endif

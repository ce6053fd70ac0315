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

/* The four accumulators of one pair of rows. */
struct ec_conv_mve_acc {
    int32_t aa, ab, ba, bb; /* row a . A, row a . B, row b . A, row b . B */
};

/* What stays fixed through one pixel pair. */
struct ec_conv_mve_step {
    const int8_t *ta, *tb; /* A's and B's K % 4 tail values */
    int tail, mode, b_step;
    int32_t act_min, act_max;
};

/* Adds a pair of rows' K % 4 tail products (from the pair word at *w2 and the pair
 * halfword at *w1, both advanced) and stores its four outputs (shifts sa, sb) at out and
 * out + stride. */
static EC_FAST_INLINE void ec_conv_mve_pair_out(struct ec_conv_mve_acc r, const struct ec_conv_mve_step *st,
                                                const int8_t **w2, const int8_t **w1, int sa, int sb, int8_t *out,
                                                long stride, int mode)
{
    const int8_t *ta = st->ta, *tb = st->tb;
    const int tail = st->tail;
    if (tail & 2) { /* the word (a_k0, b_k0, a_k1, b_k1) */
        const int8_t *v = *w2;
        r.aa += (int32_t)v[0] * ta[0] + (int32_t)v[2] * ta[1];
        r.ab += (int32_t)v[0] * tb[0] + (int32_t)v[2] * tb[1];
        r.ba += (int32_t)v[1] * ta[0] + (int32_t)v[3] * ta[1];
        r.bb += (int32_t)v[1] * tb[0] + (int32_t)v[3] * tb[1];
        *w2 = v + 4;
    }
    if (tail & 1) { /* the halfword (a_kl, b_kl) of the last value */
        const int8_t *v = *w1;
        r.aa += (int32_t)v[0] * ta[tail - 1];
        r.ab += (int32_t)v[0] * tb[tail - 1];
        r.ba += (int32_t)v[1] * ta[tail - 1];
        r.bb += (int32_t)v[1] * tb[tail - 1];
        *w1 = v + 2;
    }
    ec_fast_output2(r.aa, sa, r.ab, sa, mode, st->act_min, st->act_max, out, st->b_step);
    ec_fast_output2(r.ba, sb, r.bb, sb, mode, st->act_min, st->act_max, out + stride, st->b_step);
}

/* Two pairs of rows (words at w and v) times the two columns (at pa, pb), n > 0 blocks of 16
 * values: per block 4 weight loads (VLD20/VLD21 split each pair's words into its two
 * rows), 2 column loads and 8 VMLADAVAs, 128 products in 15 instructions with the loop.
 * In assembly: VMLADAVA takes only even registers, and the 8 accumulators need all of
 * them (r0 .. r12 and lr); written with intrinsics the compiler spilled them. */
static EC_FAST_INLINE void ec_conv_mve_dot_4x2(const int8_t *w, const int8_t *v, const int8_t *pa, const int8_t *pb,
                                               int n, struct ec_conv_mve_acc *r, struct ec_conv_mve_acc *q)
{
    register int32_t r_aa __asm__("r0") = r->aa;
    register int32_t r_ab __asm__("r2") = r->ab;
    register int32_t r_ba __asm__("r4") = r->ba;
    register int32_t r_bb __asm__("r6") = r->bb;
    register int32_t q_aa __asm__("r8") = q->aa;
    register int32_t q_ab __asm__("r10") = q->ab;
    register int32_t q_ba __asm__("r12") = q->ba;
    register int32_t q_bb __asm__("lr") = q->bb;
    register const int8_t *rw __asm__("r1") = w;
    register const int8_t *rv __asm__("r3") = v;
    register const int8_t *ra __asm__("r5") = pa;
    register const int8_t *rb __asm__("r9") = pb;
    register int rn __asm__("r11") = n;
    __asm__("1:\n\t"
            "vld20.32     {q0, q1}, [%[w]]\n\t"
            "vld21.32     {q0, q1}, [%[w]]!\n\t"
            "vld20.32     {q2, q3}, [%[v]]\n\t"
            "vld21.32     {q2, q3}, [%[v]]!\n\t"
            "vldrb.8      q4, [%[a]], #16\n\t"
            "vldrb.8      q5, [%[b]], #16\n\t"
            "vmladava.s8  %[r_aa], q0, q4\n\t"
            "vmladava.s8  %[r_ab], q0, q5\n\t"
            "vmladava.s8  %[r_ba], q1, q4\n\t"
            "vmladava.s8  %[r_bb], q1, q5\n\t"
            "vmladava.s8  %[q_aa], q2, q4\n\t"
            "vmladava.s8  %[q_ab], q2, q5\n\t"
            "vmladava.s8  %[q_ba], q3, q4\n\t"
            "vmladava.s8  %[q_bb], q3, q5\n\t"
            "subs         %[n], %[n], #1\n\t"
            "bne          1b\n\t"
            : [r_aa] "+r"(r_aa), [r_ab] "+r"(r_ab), [r_ba] "+r"(r_ba), [r_bb] "+r"(r_bb), [q_aa] "+r"(q_aa),
              [q_ab] "+r"(q_ab), [q_ba] "+r"(q_ba), [q_bb] "+r"(q_bb), [w] "+r"(rw), [v] "+r"(rv), [a] "+r"(ra),
              [b] "+r"(rb), [n] "+r"(rn)
            :
            : "q0", "q1", "q2", "q3", "q4", "q5", "cc", "memory");
    r->aa = r_aa;
    r->ab = r_ab;
    r->ba = r_ba;
    r->bb = r_bb;
    q->aa = q_aa;
    q->ab = q_ab;
    q->ba = q_ba;
    q->bb = q_bb;
}

/* The gather offsets and the columns' last K4 % 16 values (0 in the inactive lanes), loaded
 * where they are used: kept live through the loops they would take 3 of the 8 vector
 * registers and make the compiler spill. */
#define EC_CONV_MVE_REST_VECTORS                                                                                     \
    const uint8x16_t gather = vld1q_u8(ec_conv_mve_pair_rest);                                                       \
    const int8x16_t xa_rest = vld1q_z_s8(xa + 16 * blocks, p_rest), xb_rest = vld1q_z_s8(xb + 16 * blocks, p_rest)

/* The pixel pair for one output mode (constant after inlining, so the output rule folds).
 * Two pairs of rows at a time (8 accumulators: per 16 values, 4 weight loads, 2 column
 * loads, 8 VMLADAVAs for 128 products), then a last pair and the odd row. */
static EC_FAST_INLINE void ec_conv_mve_pair_mode(const struct ec_conv_mve_plan *pl, const int8_t *cols, int b_step,
                                                 int8_t *out, int mode)
{
    const int k4 = pl->k4, blocks = k4 >> 4, rest = k4 & 15;
    const int8_t *xa = cols, *xb = cols + k4 + 4;
    const mve_pred16_t p_rest = vctp8q((uint32_t)rest);
    const int8_t *w = pl->weight, *w2 = pl->w_tail2, *w1 = pl->w_tail1, *s = pl->shift;
    const int32_t *init = pl->init;
    const long stride = pl->out_stride;
    const int step = pl->shift_step;
    struct ec_conv_mve_step st;
    int c, j;
    st.ta = xa + k4;
    st.tb = xb + k4;
    st.tail = pl->tail;
    st.mode = mode;
    st.b_step = b_step;
    st.act_min = pl->act_min;
    st.act_max = pl->act_max;

    for (c = pl->pairs >> 1; c > 0; --c, init += 4) {
        struct ec_conv_mve_acc r, q; /* rows 0, 1 and rows 2, 3 */
        const int8_t *v = w + 2 * k4; /* the second pair's words */
        r.aa = r.ab = init[0];
        r.ba = r.bb = init[1];
        q.aa = q.ab = init[2];
        q.ba = q.bb = init[3];
        if (blocks > 0) {
            ec_conv_mve_dot_4x2(w, v, xa, xb, blocks, &r, &q);
            w += 32 * blocks;
            v += 32 * blocks;
        }
        if (rest != 0) {
            EC_CONV_MVE_REST_VECTORS;
            int8x16_t ua = vldrbq_gather_offset_z_s8(w, gather, p_rest);
            int8x16_t ub = vldrbq_gather_offset_z_s8(w + 4, gather, p_rest);
            r.aa = vmladavaq_s8(r.aa, ua, xa_rest);
            r.ab = vmladavaq_s8(r.ab, ua, xb_rest);
            r.ba = vmladavaq_s8(r.ba, ub, xa_rest);
            r.bb = vmladavaq_s8(r.bb, ub, xb_rest);
            ua = vldrbq_gather_offset_z_s8(v, gather, p_rest);
            ub = vldrbq_gather_offset_z_s8(v + 4, gather, p_rest);
            q.aa = vmladavaq_s8(q.aa, ua, xa_rest);
            q.ab = vmladavaq_s8(q.ab, ua, xb_rest);
            q.ba = vmladavaq_s8(q.ba, ub, xa_rest);
            q.bb = vmladavaq_s8(q.bb, ub, xb_rest);
        }
        w = v + 2 * rest; /* past the second pair */
        ec_conv_mve_pair_out(r, &st, &w2, &w1, s[0], s[step], out, stride, mode);
        ec_conv_mve_pair_out(q, &st, &w2, &w1, s[2 * step], s[3 * step], out + 2 * stride, stride, mode);
        s += 4 * step;
        out += 4 * stride;
    }
    if (pl->pairs & 1) {
        struct ec_conv_mve_acc r;
        const int8_t *pa = xa, *pb = xb;
        r.aa = r.ab = init[0];
        r.ba = r.bb = init[1];
        for (j = blocks; j > 0; --j) {
            const int32x4x2_t u = vld2q_s32((const int32_t *)(const void *)w); /* aligned: ec_fast.h */
            const int8x16_t wa = vreinterpretq_s8_s32(u.val[0]), wb = vreinterpretq_s8_s32(u.val[1]);
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
            EC_CONV_MVE_REST_VECTORS;
            const int8x16_t wa = vldrbq_gather_offset_z_s8(w, gather, p_rest);
            const int8x16_t wb = vldrbq_gather_offset_z_s8(w + 4, gather, p_rest);
            r.aa = vmladavaq_s8(r.aa, wa, xa_rest);
            r.ab = vmladavaq_s8(r.ab, wa, xb_rest);
            r.ba = vmladavaq_s8(r.ba, wb, xa_rest);
            r.bb = vmladavaq_s8(r.bb, wb, xb_rest);
            w += 2 * rest;
        }
        ec_conv_mve_pair_out(r, &st, &w2, &w1, s[0], s[step], out, stride, mode);
        s += 2 * step;
        out += 2 * stride;
        init += 2;
    }
    if (pl->out_c & 1) { /* the last row: K4 values one after another, then its tail */
        const int8_t *wo = pl->w_tail_odd;
        const int8_t *pa = xa, *pb = xb;
        int32_t a = init[0], b = init[0];
        int i;
        for (j = blocks; j > 0; --j) {
            const int8x16_t u = vld1q_s8(w);
            a = vmladavaq_s8(a, u, vld1q_s8(pa));
            b = vmladavaq_s8(b, u, vld1q_s8(pb));
            w += 16;
            pa += 16;
            pb += 16;
        }
        if (rest != 0) {
            const int8x16_t xa_rest = vld1q_z_s8(xa + 16 * blocks, p_rest);
            const int8x16_t xb_rest = vld1q_z_s8(xb + 16 * blocks, p_rest);
            const int8x16_t u = vld1q_z_s8(w, p_rest);
            a = vmladavaq_s8(a, u, xa_rest);
            b = vmladavaq_s8(b, u, xb_rest);
        }
        for (i = 0; i < st.tail; ++i) {
            a += (int32_t)wo[i] * st.ta[i];
            b += (int32_t)wo[i] * st.tb[i];
        }
        ec_fast_output2(a, s[0], b, s[0], mode, st.act_min, st.act_max, out, b_step);
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

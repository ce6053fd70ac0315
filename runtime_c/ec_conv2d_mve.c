/*
 * ec_conv2d_mve.c - Helium (MVE) steps of the fast convolutions (see ec_conv2d_mve.h).
 *
 * Per pair of output pixels A, B and pair of output channels a, b (rows of packed
 * weights), four accumulators: a.A, a.B, b.A, b.B; two pairs of channels at a time in
 * assembly (ec_conv_mve_quads), into an array of accumulators in scratch.  The packed words of a pair of rows
 * alternate (word j of a, word j of b, ...): VLD20/VLD21 of 32 bytes split them into row
 * a's 16 values and row b's 16 values, each in the word order (k0, k2, k1, k3), the order
 * the columns are stored in (ec_conv2d_mve.h).  One VMLADAVA then adds 16 products
 * w * x to an accumulator: per 16 values of a pair of rows, 2 weight loads, 2 column
 * loads and 4 VMLADAVAs for 64 products.  The last K4 % 16 values of a row (1 to 3
 * words) come through a predicated gather of the row's bytes (inactive lanes 0) and a
 * predicated column load; the K % 4 tail products are added in scalar code from the
 * tail layout of ec_fast.h; then all outputs of the two pixels are stored in one pass.
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

/* What ec_conv_mve_quads' assembly reloads for each group of four rows (offsets used there). */
struct ec_conv_mve_ctx {
    const int8_t *xa, *xb; /*  0,  4: the columns */
    int32_t blocks;        /*  8: K4 / 16 > 0 */
    int32_t pair_bytes;    /* 12: 2 * K4, from a pair's words to the next pair's */
    const int32_t *init;   /* 16: the next group's start values */
    int32_t *acc;          /* 20: the next group's accumulators */
    int32_t rest_bytes;    /* 24: 2 * (K4 % 16), each pair's words after its blocks */
    int32_t quads;         /* 28: groups left > 0 */
    uint32_t rest_pred;    /* 32: vctp8q(K4 % 16): the lanes of the rest */
    const uint8_t *rest_offsets; /* 36: ec_conv_mve_pair_rest */
};

/* One block of 16 values for two pairs of rows (words at w and v) and the two columns: 4
 * weight loads (VLD20/VLD21 split each pair's words into its two rows), 2 column loads and
 * 8 VMLADAVAs, 128 products in 15 instructions with the loop. */
#define EC_CONV_MVE_BLOCK                                                                                            \
    "vld20.32     {q0, q1}, [%[w]]\n\t"                                                                              \
    "vld21.32     {q0, q1}, [%[w]]!\n\t"                                                                             \
    "vld20.32     {q2, q3}, [%[v]]\n\t"                                                                              \
    "vld21.32     {q2, q3}, [%[v]]!\n\t"                                                                             \
    "vldrb.8      q4, [%[a]], #16\n\t"                                                                               \
    "vldrb.8      q5, [%[b]], #16\n\t"                                                                               \
    "vmladava.s8  %[r_aa], q0, q4\n\t"                                                                               \
    "vmladava.s8  %[r_ab], q0, q5\n\t"                                                                               \
    "vmladava.s8  %[r_ba], q1, q4\n\t"                                                                               \
    "vmladava.s8  %[r_bb], q1, q5\n\t"                                                                               \
    "vmladava.s8  %[q_aa], q2, q4\n\t"                                                                               \
    "vmladava.s8  %[q_ab], q2, q5\n\t"                                                                               \
    "vmladava.s8  %[q_ba], q3, q4\n\t"                                                                               \
    "vmladava.s8  %[q_bb], q3, q5\n\t"

/* The rest of the words of two pairs (K4 % 16 > 0 values per row, at w and v): each row's
 * bytes by a gather (q6: the offsets) and the columns' last values, predicated by P0 (inactive
 * lanes load 0), then 8 VMLADAVAs. */
#define EC_CONV_MVE_REST                                                                                             \
    "adds         %[n], %[w], #4\n\t"                                                                               \
    "vpstttt\n\t"                                                                                                    \
    "vldrbt.8     q4, [%[a]]\n\t"                                                                                   \
    "vldrbt.8     q5, [%[b]]\n\t"                                                                                   \
    "vldrbt.u8    q0, [%[w], q6]\n\t"                                                                               \
    "vldrbt.u8    q1, [%[n], q6]\n\t"                                                                               \
    "adds         %[n], %[v], #4\n\t"                                                                               \
    "vpstt\n\t"                                                                                                      \
    "vldrbt.u8    q2, [%[v], q6]\n\t"                                                                               \
    "vldrbt.u8    q3, [%[n], q6]\n\t"                                                                               \
    "vmladava.s8  %[r_aa], q0, q4\n\t"                                                                               \
    "vmladava.s8  %[r_ab], q0, q5\n\t"                                                                               \
    "vmladava.s8  %[r_ba], q1, q4\n\t"                                                                               \
    "vmladava.s8  %[r_bb], q1, q5\n\t"                                                                               \
    "vmladava.s8  %[q_aa], q2, q4\n\t"                                                                               \
    "vmladava.s8  %[q_ab], q2, q5\n\t"                                                                               \
    "vmladava.s8  %[q_ba], q3, q4\n\t"                                                                               \
    "vmladava.s8  %[q_bb], q3, q5\n\t"

/*
 * For each group of four rows (two pairs, 4 * ctx->quads rows from w): acc[2c] and acc[2c + 1]
 * = init[c] + row c . A and . B over the K4 values (16 * blocks, then the rest).  All in one
 * assembly block:
 * VMLADAVA takes only even registers, and the 8 accumulators need all of them (r0 .. r12 and
 * lr); written with intrinsics the compiler spilled them, and around the loop it spent more
 * than the loop.  The context (above) is reloaded once per group, its pointer kept on the stack.
 */
static EC_FAST_NOINLINE void ec_conv_mve_quads(const int8_t *w, struct ec_conv_mve_ctx *ctx)
{
    register int32_t r_aa __asm__("r0");
    register int32_t r_ab __asm__("r2");
    register int32_t r_ba __asm__("r4");
    register int32_t r_bb __asm__("r6");
    register int32_t q_aa __asm__("r8");
    register int32_t q_ab __asm__("r10");
    register int32_t q_ba __asm__("r12");
    register int32_t q_bb __asm__("lr");
    register const int8_t *rw __asm__("r1") = w;
    register const int8_t *ra __asm__("r3");
    register const int8_t *rb __asm__("r5");
    register int32_t rn __asm__("r9") = (int32_t)(uintptr_t)ctx; /* starts as the context pointer */
    register const int8_t *rv __asm__("r11");
    __asm__ __volatile__(
        "str          %[n], [sp, #-8]!\n\t" /* the context pointer, sp kept 8-byte aligned */
        "ldrd         %[a], %[b], [%[n], #32]\n\t"
        "vmsr         p0, %[a]\n\t" /* the rest's lanes, for the whole block */
        "vldrw.32     q6, [%[b]]\n\t"
        "2:\n\t"
        "ldr          %[n], [sp]\n\t"
        "ldr          %[v], [%[n], #16]\n\t"
        "ldrd         %[r_aa], %[r_ba], [%[v]]\n\t"
        "ldrd         %[q_aa], %[q_ba], [%[v], #8]\n\t"
        "adds         %[v], %[v], #16\n\t"
        "str          %[v], [%[n], #16]\n\t"
        "mov          %[r_ab], %[r_aa]\n\t"
        "mov          %[r_bb], %[r_ba]\n\t"
        "mov          %[q_ab], %[q_aa]\n\t"
        "mov          %[q_bb], %[q_ba]\n\t"
        "ldrd         %[a], %[b], [%[n]]\n\t"
        "ldr          %[v], [%[n], #12]\n\t"
        "add          %[v], %[v], %[w]\n\t" /* the second pair's words */
        "ldr          %[n], [%[n], #8]\n\t"
        "cmp          %[n], #0\n\t"
        "beq          3f\n\t"
        "1:\n\t" EC_CONV_MVE_BLOCK
        "subs         %[n], %[n], #1\n\t"
        "bne          1b\n\t"
        "3:\n\t"
        "ldr          %[n], [sp]\n\t"
        "ldr          %[n], [%[n], #24]\n\t"
        "cmp          %[n], #0\n\t"
        "beq          4f\n\t" EC_CONV_MVE_REST
        "4:\n\t"
        "ldr          %[n], [sp]\n\t"
        "ldr          %[a], [%[n], #20]\n\t"
        "strd         %[r_aa], %[r_ab], [%[a]], #8\n\t"
        "strd         %[r_ba], %[r_bb], [%[a]], #8\n\t"
        "strd         %[q_aa], %[q_ab], [%[a]], #8\n\t"
        "strd         %[q_ba], %[q_bb], [%[a]], #8\n\t"
        "str          %[a], [%[n], #20]\n\t"
        "ldrd         %[a], %[b], [%[n], #24]\n\t"
        "add          %[w], %[v], %[a]\n\t" /* past the second pair */
        "subs         %[b], %[b], #1\n\t"
        "str          %[b], [%[n], #28]\n\t"
        "bne          2b\n\t"
        "add          sp, sp, #8\n\t"
        : [r_aa] "=&r"(r_aa), [r_ab] "=&r"(r_ab), [r_ba] "=&r"(r_ba), [r_bb] "=&r"(r_bb), [q_aa] "=&r"(q_aa),
          [q_ab] "=&r"(q_ab), [q_ba] "=&r"(q_ba), [q_bb] "=&r"(q_bb), [w] "+r"(rw), [v] "=&r"(rv), [a] "=&r"(ra),
          [b] "=&r"(rb), [n] "+r"(rn)
        :
        : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "cc", "memory");
}

/* acc[0 .. 3] += rows a, b (a pair's words from w) . columns A, B over n >= 0 blocks of 16
 * values and then the rest (K4 % 16 values: a predicated gather of each row's bytes, inactive
 * lanes 0); returns w past the pair. */
static const int8_t *ec_conv_mve_pair(const int8_t *w, const int8_t *xa, const int8_t *xb, int n, int rest,
                                      int32_t *acc)
{
    int32_t aa = acc[0], ab = acc[1], ba = acc[2], bb = acc[3];
    for (; n > 0; --n, w += 32, xa += 16, xb += 16) {
        const int32x4x2_t v = vld2q_s32((const int32_t *)(const void *)w); /* aligned: ec_fast.h */
        const int8x16_t x0 = vld1q_s8(xa), x1 = vld1q_s8(xb);
        aa = vmladavaq_s8(aa, vreinterpretq_s8_s32(v.val[0]), x0);
        ab = vmladavaq_s8(ab, vreinterpretq_s8_s32(v.val[0]), x1);
        ba = vmladavaq_s8(ba, vreinterpretq_s8_s32(v.val[1]), x0);
        bb = vmladavaq_s8(bb, vreinterpretq_s8_s32(v.val[1]), x1);
    }
    if (rest != 0) {
        const mve_pred16_t p = vctp8q((uint32_t)rest);
        const uint8x16_t gather = vld1q_u8(ec_conv_mve_pair_rest);
        const int8x16_t x0 = vld1q_z_s8(xa, p), x1 = vld1q_z_s8(xb, p);
        const int8x16_t u = vldrbq_gather_offset_z_s8(w, gather, p), t = vldrbq_gather_offset_z_s8(w + 4, gather, p);
        aa = vmladavaq_s8(aa, u, x0);
        ab = vmladavaq_s8(ab, u, x1);
        ba = vmladavaq_s8(ba, t, x0);
        bb = vmladavaq_s8(bb, t, x1);
        w += 2 * rest;
    }
    acc[0] = aa;
    acc[1] = ab;
    acc[2] = ba;
    acc[3] = bb;
    return w;
}

/* The outputs of both pixels for every channel, one output mode (constant after inlining). */
static EC_FAST_INLINE void ec_conv_mve_store(const struct ec_conv_mve_plan *pl, const int32_t *acc, int b_step,
                                             int8_t *out, int mode)
{
    const int8_t *s = pl->shift;
    const int step = pl->shift_step;
    const long stride = pl->out_stride;
    int c;
    for (c = pl->out_c; c > 0; --c, acc += 2, s += step, out += stride) {
        ec_fast_output2(acc[0], *s, acc[1], *s, mode, pl->act_min, pl->act_max, out, b_step);
    }
}

void ec_conv_mve_pixel_pair(const struct ec_conv_mve_plan *pl, const int8_t *cols, int b_step, int8_t *out)
{
    const int k4 = pl->k4, tail = pl->tail, blocks = k4 >> 4, rest = k4 & 15, pairs = pl->pairs;
    const int8_t *xa = cols, *xb = cols + k4 + 4;
    const int8_t *ta = xa + k4, *tb = xb + k4; /* the K % 4 tail values, natural order */
    int32_t *acc = (int32_t *)(void *)(cols + 2 * k4 + 8); /* per channel: A's, B's (in scratch) */
    const int8_t *w = pl->weight;
    int c, i, first = 0; /* first: the first pair not yet in acc */

    if (k4 > 0 && pairs >= 2) {
        struct ec_conv_mve_ctx ctx;
        ctx.xa = xa;
        ctx.xb = xb;
        ctx.blocks = blocks;
        ctx.pair_bytes = 2 * k4;
        ctx.init = pl->init;
        ctx.acc = acc;
        ctx.rest_bytes = 2 * rest;
        ctx.quads = pairs >> 1;
        ctx.rest_pred = vctp8q((uint32_t)rest);
        ctx.rest_offsets = ec_conv_mve_pair_rest;
        ec_conv_mve_quads(w, &ctx);
        first = pairs & ~1;
        w += (long)first * 2 * k4;
    }
    for (c = first; c < pairs; ++c) { /* the pairs the assembly did not take */
        acc[4 * c] = acc[4 * c + 1] = pl->init[2 * c];
        acc[4 * c + 2] = acc[4 * c + 3] = pl->init[2 * c + 1];
        w = ec_conv_mve_pair(w, xa, xb, blocks, rest, acc + 4 * c);
    }
    if (tail > 0) { /* the K % 4 tail products (layout in ec_fast.h) */
        const int8_t *w2 = pl->w_tail2, *w1 = pl->w_tail1;
        int32_t *a = acc;
        for (c = 0; c < pairs; ++c, a += 4) {
            if (tail & 2) { /* the word (a_k0, b_k0, a_k1, b_k1) */
                a[0] += (int32_t)w2[0] * ta[0] + (int32_t)w2[2] * ta[1];
                a[1] += (int32_t)w2[0] * tb[0] + (int32_t)w2[2] * tb[1];
                a[2] += (int32_t)w2[1] * ta[0] + (int32_t)w2[3] * ta[1];
                a[3] += (int32_t)w2[1] * tb[0] + (int32_t)w2[3] * tb[1];
                w2 += 4;
            }
            if (tail & 1) { /* the halfword (a_kl, b_kl) of the last value */
                a[0] += (int32_t)w1[0] * ta[tail - 1];
                a[1] += (int32_t)w1[0] * tb[tail - 1];
                a[2] += (int32_t)w1[1] * ta[tail - 1];
                a[3] += (int32_t)w1[1] * tb[tail - 1];
                w1 += 2;
            }
        }
    }
    if (pl->out_c & 1) { /* the last row: K4 values one after another, then its tail */
        const int8_t *wo = pl->w_tail_odd, *pa = xa, *pb = xb;
        int32_t a = pl->init[pl->out_c - 1], b = a;
        for (c = blocks; c > 0; --c, w += 16, pa += 16, pb += 16) {
            const int8x16_t u = vld1q_s8(w);
            a = vmladavaq_s8(a, u, vld1q_s8(pa));
            b = vmladavaq_s8(b, u, vld1q_s8(pb));
        }
        if (rest != 0) {
            const mve_pred16_t p = vctp8q((uint32_t)rest);
            const int8x16_t u = vld1q_z_s8(w, p);
            a = vmladavaq_s8(a, u, vld1q_z_s8(pa, p));
            b = vmladavaq_s8(b, u, vld1q_z_s8(pb, p));
        }
        for (i = 0; i < tail; ++i) {
            a += (int32_t)wo[i] * ta[i];
            b += (int32_t)wo[i] * tb[i];
        }
        acc[2 * pl->out_c - 2] = a;
        acc[2 * pl->out_c - 1] = b;
    }
    if (pl->mode == EC_RQ_S8) {
        ec_conv_mve_store(pl, acc, b_step, out, EC_RQ_S8);
    } else if (pl->mode == EC_RQ_RELU) {
        ec_conv_mve_store(pl, acc, b_step, out, EC_RQ_RELU);
    } else {
        ec_conv_mve_store(pl, acc, b_step, out, pl->mode); /* the rare modes: out of line per value */
    }
}

#else
typedef int ec_conv2d_mve_unused; /* ISO C wants a declaration in every translation unit */
#endif

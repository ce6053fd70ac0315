/*
 * ec_conv2d_dot_dsp.h - the inner products of the fast convolution on cores with the DSP
 * extension (Cortex-M4/M7/M33): SMLAD on pairs of int16 columns and sign-extended weight
 * pairs.  Included by ec_conv2d_fast.c, whose driver calls ec_conv_dot and
 * ec_conv_tail_pairs; ec_conv2d_dot_portable.h computes the same sums without the DSP.
 */
#ifndef EC_CONV2D_DOT_DSP_H
#define EC_CONV2D_DOT_DSP_H

/* What ec_conv_dot's assembly reloads for each pair of rows (offsets used there). */
struct ec_conv_dot_ctx {
    const int16_t *cols; /*  0 */
    int32_t chunks;      /*  4: K4 / 4 > 0 */
    const int32_t *init; /*  8: next pair's start values */
    int32_t *acc;        /* 12: next pair's accumulators */
    int32_t pairs;       /* 16: pairs left > 0 */
};

/* One chunk of 4 values for a pair of rows a, b and the columns A, B: one LDRD of the
 * two rows' weight words; SXTB16 / SXTB16 ROR #8 turn each word (k0, k2, k1, k3) into
 * the pairs (k0, k1), (k2, k3); one LDRD per column gives its pairs (x0, x1), (x2, x3);
 * eight SMLADs add the 16 products (each |w * x| <= 2^14, and every SMLAD result is a
 * partial sum of a bounded accumulator, so SMLAD's Q flag never matters). */
#define EC_CONV_CHUNK                                                                                                \
    "ldrd    %[wa], %[wb], [%[w]], #8\n\t"                                                                          \
    "sxtb16  %[ta], %[wa]\n\t"                                                                                      \
    "sxtb16  %[wa], %[wa], ror #8\n\t"                                                                              \
    "sxtb16  %[tb], %[wb]\n\t"                                                                                      \
    "sxtb16  %[wb], %[wb], ror #8\n\t"                                                                              \
    "ldrd    %[x0], %[x1], [%[x]], #16\n\t"                                                                         \
    "smlad   %[a00], %[ta], %[x0], %[a00]\n\t"                                                                      \
    "smlad   %[a00], %[wa], %[x1], %[a00]\n\t"                                                                      \
    "smlad   %[a10], %[tb], %[x0], %[a10]\n\t"                                                                      \
    "smlad   %[a10], %[wb], %[x1], %[a10]\n\t"                                                                      \
    "ldrd    %[x0], %[x1], [%[x], #-8]\n\t"                                                                         \
    "smlad   %[a01], %[ta], %[x0], %[a01]\n\t"                                                                      \
    "smlad   %[a01], %[wa], %[x1], %[a01]\n\t"                                                                      \
    "smlad   %[a11], %[tb], %[x0], %[a11]\n\t"                                                                      \
    "smlad   %[a11], %[wb], %[x1], %[a11]\n\t"

/*
 * For every pair of rows (c, c + 1) < 2 * pairs: acc[2c], acc[2c + 1], acc[2c + 2],
 * acc[2c + 3] = init[c] + row c . A, init[c] + row c . B, init[c + 1] + row c + 1 . A,
 * init[c + 1] + row c + 1 . B over the K4 = 4 * chunks values of the columns.  All in
 * one assembly block: 13 registers stay busy through the inner loop, so the context
 * (above) is reloaded from memory once per pair, and its pointer is kept on the stack.
 * The inner loop runs two chunks per trip (an odd count enters at the second):
 * 15 instructions per 16 MACs plus one per chunk for the loop, and ~20 per pair.
 * Returns w past the pairs' words.
 */
static const int8_t *ec_dot_pairs(const int8_t *w, struct ec_conv_dot_ctx *ctx)
{
    int32_t a00, a01, a10, a11, wa, wb, ta, tb, x0, x1, n;
    const int16_t *x = (const int16_t *)(void *)ctx; /* x starts as the context pointer */
    __asm__("str     %[x], [sp, #-8]!\n\t"  /* the context pointer, sp kept 8-byte aligned */
            "2:\n\t"                         /* next pair of rows */
            "ldr     %[ta], [sp]\n\t"
            "ldrd    %[x], %[n], [%[ta]]\n\t"
            "ldr     %[tb], [%[ta], #8]\n\t"
            "ldrd    %[a00], %[a10], [%[tb]], #8\n\t"
            "str     %[tb], [%[ta], #8]\n\t"
            "mov     %[a01], %[a00]\n\t"
            "mov     %[a11], %[a10]\n\t"
            "lsrs    %[n], %[n], #1\n\t"   /* trips of two chunks; C = odd count */
            "bcc     3f\n\t"
            "adds    %[n], %[n], #1\n\t"
            "b       4f\n\t"
            "3:\n\t" EC_CONV_CHUNK "4:\n\t" EC_CONV_CHUNK
            "subs    %[n], %[n], #1\n\t"
            "bne     3b\n\t"
            "ldr     %[ta], [sp]\n\t"
            "ldrd    %[tb], %[n], [%[ta], #12]\n\t"
            "strd    %[a00], %[a01], [%[tb]], #8\n\t"
            "strd    %[a10], %[a11], [%[tb]], #8\n\t"
            "subs    %[n], %[n], #1\n\t"
            "strd    %[tb], %[n], [%[ta], #12]\n\t"
            "bne     2b\n\t"
            "add     sp, sp, #8\n\t"
            : [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [w] "+r"(w), [x] "+r"(x),
              [n] "=&r"(n), [wa] "=&r"(wa), [wb] "=&r"(wb), [ta] "=&r"(ta), [tb] "=&r"(tb), [x0] "=&r"(x0),
              [x1] "=&r"(x1)
            :
            : "cc", "memory");
    return w;
}

/* One row (the last channel when out_c is odd), n > 0 chunks: 11 instructions per 8 MACs. */
static void ec_dot_1x2(const int8_t *w, const int16_t *x, int n, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    int32_t wa, ta, x0, x1;
    __asm__("1:\n\t"
            "ldr     %[wa], [%[w]], #4\n\t"
            "sxtb16  %[ta], %[wa]\n\t"
            "sxtb16  %[wa], %[wa], ror #8\n\t"
            "ldrd    %[x0], %[x1], [%[x]], #16\n\t"
            "smlad   %[a0], %[ta], %[x0], %[a0]\n\t"
            "smlad   %[a0], %[wa], %[x1], %[a0]\n\t"
            "ldrd    %[x0], %[x1], [%[x], #-8]\n\t"
            "smlad   %[a1], %[ta], %[x0], %[a1]\n\t"
            "smlad   %[a1], %[wa], %[x1], %[a1]\n\t"
            "subs    %[n], %[n], #1\n\t"
            "bne     1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [w] "+r"(w), [x] "+r"(x), [n] "+r"(n), [wa] "=&r"(wa), [ta] "=&r"(ta),
              [x0] "=&r"(x0), [x1] "=&r"(x1)
            :
            : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
}

/* The accumulators of both pixels for every output channel, K4 values deep:
 * acc[2c] (A) and acc[2c + 1] (B) = init[c] + row c . column. */
static EC_CONV_STEP_INLINE void ec_conv_dot(const int8_t *w, const int16_t *cols, int k4, const int32_t *init,
                                             int pairs, int out_c, int32_t *acc)
{
    int c;
    if (k4 == 0) {
        for (c = 0; c < out_c; ++c) {
            acc[2 * c] = acc[2 * c + 1] = init[c];
        }
        return;
    }
    if (pairs > 0) {
        struct ec_conv_dot_ctx ctx;
        ctx.cols = cols;
        ctx.chunks = k4 >> 2;
        ctx.init = init;
        ctx.acc = acc;
        ctx.pairs = pairs;
        w = ec_dot_pairs(w, &ctx);
    }
    if (out_c & 1) {
        int32_t *a = acc + 2 * (out_c - 1);
        a[0] = a[1] = init[out_c - 1];
        ec_dot_1x2(w, cols, k4 >> 2, a);
    }
}

/* The K % 4 tail products of every pair of rows (tail > 0; layout in ec_fast.h): w2 the pair
 * words, w1 the pair halfwords, xt the tail chunk of the columns, whose unused slots are 0.
 * Returns acc past the pairs' accumulators. */
static EC_CONV_STEP_INLINE int32_t *ec_conv_tail_pairs(const int8_t *w2, const int8_t *w1, const int16_t *xt, int tail,
                                                       int pairs, int32_t *acc)
{
    int c;
    /* x01: A's and B's pairs (x_k0, x_k1); xl: their (x_kl, 0) for the last, odd value. */
    int32_t xa01, xb01, xal, xbl;
    memcpy(&xa01, xt, 4);
    memcpy(&xb01, xt + 4, 4);
    memcpy(&xal, xt + (tail - 1), 4);
    memcpy(&xbl, xt + 4 + (tail - 1), 4);
    for (c = 0; c < pairs; ++c, acc += 4) {
        int32_t v, ta, tb;
        if (tail & 2) {
            memcpy(&v, w2, 4); /* one LDR: the word is aligned */
            w2 += 4;
            ta = __sxtb16(v); /* row a: (a_k0, a_k1) */
            tb = ec_sxtb16_ror8(v); /* row b: (b_k0, b_k1) */
            acc[0] = __smlad(ta, xa01, acc[0]);
            acc[1] = __smlad(ta, xb01, acc[1]);
            acc[2] = __smlad(tb, xa01, acc[2]);
            acc[3] = __smlad(tb, xb01, acc[3]);
        }
        if (tail & 1) {
            uint16_t h;
            memcpy(&h, w1, 2);
            w1 += 2;
            v = h; /* bytes 2 and 3 are 0: the pairs (a_kl, 0), (b_kl, 0) */
            ta = __sxtb16(v);
            tb = ec_sxtb16_ror8(v);
            acc[0] = __smlad(ta, xal, acc[0]);
            acc[1] = __smlad(ta, xbl, acc[1]);
            acc[2] = __smlad(tb, xal, acc[2]);
            acc[3] = __smlad(tb, xbl, acc[3]);
        }
    }
    return acc;
}

#endif

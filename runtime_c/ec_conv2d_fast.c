/*
 * ec_conv2d_fast.c - fast convolution (see ec_conv2d_fast.h; weight layout in ec_fast.h).
 *
 * Output pixels are taken two at a time, A and B (raster order).  Their
 * receptive fields are copied into scratch as int16 "columns" (im2col), then
 * each pair of output channels is a 2x2 block: two rows of packed weights times
 * the two columns, four accumulators.  Every weight word and every column word
 * loaded serves two products, and the inner loop has no bounds checks.  Per pair
 * of pixels: the columns, the blocks of every pair of channels (ec_conv_dot), the
 * K % 4 tail products (ec_conv_tail), then all outputs of the two pixels
 * (ec_fast_store): separate passes keep each loop's registers for itself.
 *
 * Column layout (int16): value k of a receptive field (natural order: input
 * channel, kernel row, kernel column, as the reference loops) sits at
 * cols[pos(k)] for A and cols[pos(k) + 4] for B, pos(k) = k + (k & ~3): chunks
 * of 8, four values of A then the same four of B, so one pointer walks both
 * columns in step with the weight words.  The K % 4 tail values fill the first
 * slots of one last chunk, whose other slots stay 0: a tail pair (x_kl, 0) then
 * multiplies the halfword (a_kl, b_kl) of ec_fast.h without picking up garbage.
 *
 * The offset of every tap from its window's top-left tap (ic * plane + ky * row
 * + kx) is tabulated once per call, so copying a column is one load and one store
 * per value, with no bounds checks.  When some window leaves the input (padding,
 * or a last window that overhangs), the windows read a band instead: the input
 * rows under the current output row (and the next one, when a pair of pixels
 * straddles two rows), copied with the padding around them (bytes of pad_value, the
 * input's zero point), rebuilt once per output row.
 *
 * A 1x1 convolution without padding (ec_conv2d_1x1_fast_s8) has no windows to
 * tabulate: a pixel's column is its in_c values, one plane apart, read straight
 * from the input; the blocks, tails and outputs are those of the general kernel.
 *
 * Exactness: each accumulator is bias (+ the folded rounding constant,
 * ec_fast.h) plus the same products w * x as the reference, added in another
 * order; the padding reads pad_value here as there.  Every partial sum is
 * bounded by acc_bound (+ 2^(s-1)) < 2^31, so the int32 result is the same,
 * and the same output rule is applied to it.
 */
#include "ec_conv2d_fast.h"

#include <string.h>

#include "ec_conv2d_mve.h"

/* The per-pixel-pair steps are shared by the general and the 1x1 kernel.  With the DSP
 * they are inlined into each (a call per pixel pair costs ~17 instructions there); on
 * Thumb-1 and the host the step that holds them stays out of line, so that the
 * caller's pixel loop does not spill its few registers (both measured with
 * benchmarks/bench_kernels.py). */
#if EC_FAST_DSP
#define EC_CONV_STEP_INLINE EC_FAST_INLINE
#define EC_CONV_PAIR_INLINE EC_FAST_INLINE
#else
#define EC_CONV_STEP_INLINE
#define EC_CONV_PAIR_INLINE EC_FAST_NOINLINE
#endif

/* Steps (oy, ox) to the next output pixel in raster order. */
static EC_FAST_INLINE void ec_next_pixel(int *oy, int *ox, int out_w)
{
    if (++*ox == out_w) {
        *ox = 0;
        ++*oy;
    }
}

#if !EC_FAST_MVE /* else ec_conv_mve_cols */
/* The columns of A and B: a and b point at the value under each window's top-left tap
 * (in the input, or in the band). */
static void ec_cols_interior(const int8_t *a, const int8_t *b, const int32_t *offs, int k4, int tail, int16_t *q)
{
    int j, i;
    for (j = k4 >> 2; j > 0; --j) {
        const int32_t o0 = offs[0], o1 = offs[1], o2 = offs[2], o3 = offs[3];
        q[0] = a[o0];
        q[1] = a[o1];
        q[2] = a[o2];
        q[3] = a[o3];
        q[4] = b[o0];
        q[5] = b[o1];
        q[6] = b[o2];
        q[7] = b[o3];
        q += 8;
        offs += 4;
    }
    for (i = 0; i < tail; ++i) {
        q[i] = a[offs[i]];
        q[4 + i] = b[offs[i]];
    }
}
#endif

/* The band: the input rows y0 .. y0 + rows - 1 of every channel, padded with bytes pad (rows
 * outside the input, pad_left columns on the left, and on the right up to width), as the
 * windows of one or two output rows see them. */
static void ec_band_fill(const int8_t *input, int in_c, int in_h, int in_w, int y0, int rows, int pad_left, int width,
                         int8_t pad, int8_t *band)
{
    const int left = pad_left < width ? pad_left : width;
    const int copy = in_w < width - left ? in_w : width - left; /* input columns inside the band */
    int ic, r, n;
    for (ic = 0; ic < in_c; ++ic) {
        for (r = 0; r < rows; ++r) {
            const int y = y0 + r;
            int8_t *d = band + ((long)ic * rows + r) * width, *end = d + width;
            if (y >= 0 && y < in_h) {
                const int8_t *src = input + ((long)ic * in_h + y) * in_w;
                for (n = left; n > 0; --n) {
                    *d++ = pad;
                }
                for (n = copy >> 2; n > 0; --n) { /* unrolled: one loop test per 4 bytes */
                    d[0] = src[0];
                    d[1] = src[1];
                    d[2] = src[2];
                    d[3] = src[3];
                    d += 4;
                    src += 4;
                }
                for (n = copy & 3; n > 0; --n) {
                    *d++ = *src++;
                }
            }
            while (d < end) {
                *d++ = pad;
            }
        }
    }
}

#if EC_FAST_DSP
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
#else
/* Portable: the same sums, one byte of weight at a time (no word access).  Value k of the
 * chunk: A's at x[k], B's at x[4 + k], row a's weight at w[b], row b's at w[4 + b], with
 * b = 0, 2, 1, 3 for k = 0, 1, 2, 3 (the word order (k0, k2, k1, k3)); each value and
 * weight is loaded once for its two products, which suits Thumb-1's few registers. */
#define EC_VALUE_2X2(k, b)                                                                                           \
    xa = x[k];                                                                                                       \
    xb = x[4 + (k)];                                                                                                 \
    wa = w[b];                                                                                                       \
    wb = w[4 + (b)];                                                                                                 \
    a00 += wa * xa;                                                                                                  \
    a01 += wa * xb;                                                                                                  \
    a10 += wb * xa;                                                                                                  \
    a11 += wb * xb

static const int8_t *ec_dot_2x2(const int8_t *w, const int16_t *x, int n, int32_t *acc)
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3], xa, xb, wa, wb;
    for (; n > 0; --n, w += 8, x += 8) {
        EC_VALUE_2X2(0, 0);
        EC_VALUE_2X2(1, 2);
        EC_VALUE_2X2(2, 1);
        EC_VALUE_2X2(3, 3);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
    return w;
}

static void ec_dot_1x2(const int8_t *w, const int16_t *x, int n, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (; n > 0; --n) {
        const int32_t k0 = w[0], k2 = w[1], k1 = w[2], k3 = w[3];
        a0 += k0 * x[0] + k1 * x[1] + k2 * x[2] + k3 * x[3];
        a1 += k0 * x[4] + k1 * x[5] + k2 * x[6] + k3 * x[7];
        w += 4;
        x += 8;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* The accumulators of both pixels for every output channel, K4 values deep:
 * acc[2c] (A) and acc[2c + 1] (B) = init[c] + row c . column. */
static EC_CONV_STEP_INLINE void ec_conv_dot(const int8_t *w, const int16_t *cols, int k4, const int32_t *init,
                                             int pairs, int out_c, int32_t *acc)
{
    int c;
    for (c = 0; c < out_c; ++c) {
        acc[2 * c] = acc[2 * c + 1] = init[c];
    }
    for (c = 0; c < pairs; ++c, acc += 4) {
        w = ec_dot_2x2(w, cols, k4 >> 2, acc);
    }
    if (out_c & 1) {
        ec_dot_1x2(w, cols, k4 >> 2, acc);
    }
}
#endif

/* Adds the K % 4 tail products (tail > 0): w2 the pair words, w1 the pair halfwords,
 * w_odd the odd row's values (layout in ec_fast.h); xt the tail chunk of the columns,
 * whose unused slots are 0. */
static EC_CONV_STEP_INLINE void ec_conv_tail(const int8_t *w2, const int8_t *w1, const int8_t *w_odd,
                                              const int16_t *xt, int tail, int pairs, int out_c, int32_t *acc)
{
    int c, i;
#if EC_FAST_DSP
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
#else
    for (c = 0; c < pairs; ++c, acc += 4) {
        if (tail & 2) {
            acc[0] += (int32_t)w2[0] * xt[0] + (int32_t)w2[2] * xt[1];
            acc[1] += (int32_t)w2[0] * xt[4] + (int32_t)w2[2] * xt[5];
            acc[2] += (int32_t)w2[1] * xt[0] + (int32_t)w2[3] * xt[1];
            acc[3] += (int32_t)w2[1] * xt[4] + (int32_t)w2[3] * xt[5];
            w2 += 4;
        }
        if (tail & 1) {
            acc[0] += (int32_t)w1[0] * xt[tail - 1];
            acc[1] += (int32_t)w1[0] * xt[tail + 3];
            acc[2] += (int32_t)w1[1] * xt[tail - 1];
            acc[3] += (int32_t)w1[1] * xt[tail + 3];
            w1 += 2;
        }
    }
#endif
    if (out_c & 1) {
        for (i = 0; i < tail; ++i) {
            acc[0] += (int32_t)w_odd[i] * xt[i];
            acc[1] += (int32_t)w_odd[i] * xt[4 + i];
        }
    }
}

/* What every fast convolution (general and 1x1) keeps for its whole call.  Scratch
 * layout, from its start: init (out_c int32), acc (2 * out_c int32), the columns
 * (4 * K4 + 16 bytes); the general kernel puts its tap offsets and band after them. */
struct ec_conv_plan {
    const int8_t *weight, *w_tail2, *w_tail1, *w_tail_odd;
    const int8_t *shift;
    int shift_per_channel, k4, tail, pairs, out_c, pixels, mode;
    int32_t act_min, act_max;
    int32_t *init, *acc;
    int16_t *cols;
#if EC_FAST_MVE
    struct ec_conv_mve_plan mve; /* int8 columns over acc and cols (ec_conv2d_mve.h) */
#endif
};

/* Fills the plan and each channel's accumulator start value; returns the first scratch byte
 * past the columns. */
static EC_CONV_PAIR_INLINE void *ec_conv_plan_init(struct ec_conv_plan *pl, int k_all, const int8_t *weight,
                                                   const int32_t *bias, const int8_t *shift, int shift_per_channel,
                                                   int out_c, int pixels, int32_t act_min, int32_t act_max,
                                                   int round_folded, void *scratch)
{
    int c;
    pl->k4 = k_all & ~3;
    pl->tail = k_all - pl->k4;
    pl->pairs = out_c >> 1;
    pl->out_c = out_c;
    pl->pixels = pixels;
    pl->shift = shift;
    pl->shift_per_channel = shift_per_channel;
    pl->act_min = act_min;
    pl->act_max = act_max;
    /* Tail weights (ec_fast.h): pair words, pair halfwords, then the odd row's values. */
    pl->weight = weight;
    pl->w_tail2 = weight + (long)out_c * pl->k4;
    pl->w_tail1 = pl->w_tail2 + (pl->tail >= 2 ? 4 * pl->pairs : 0);
    pl->w_tail_odd = pl->w_tail2 + 2 * pl->tail * pl->pairs;
    pl->mode = ec_fast_mode(shift, shift_per_channel, out_c, round_folded, act_min, act_max);
    pl->init = (int32_t *)scratch;
    pl->acc = pl->init + out_c; /* per channel: A's then B's accumulator */
    pl->cols = (int16_t *)(void *)(pl->acc + 2 * out_c);
    for (c = 0; c < out_c; ++c) {
        pl->init[c] = ec_fast_start(bias, c, shift[shift_per_channel ? c : 0], pl->mode);
    }
    for (c = 0; c < 8; ++c) {
        pl->cols[2 * pl->k4 + c] = 0; /* the tail chunk's unused slots stay 0 */
    }
#if EC_FAST_MVE
    /* The MVE step's int8 columns (2 * (K4 + 4) bytes) and accumulators (8 * out_c bytes)
     * fit in the 8 * out_c + 4 * K4 + 16 bytes of acc and cols (ec_conv2d_mve.h). */
    pl->mve.weight = pl->weight;
    pl->mve.w_tail2 = pl->w_tail2;
    pl->mve.w_tail1 = pl->w_tail1;
    pl->mve.w_tail_odd = pl->w_tail_odd;
    pl->mve.shift = shift;
    pl->mve.init = pl->init;
    pl->mve.shift_step = shift_per_channel ? 1 : 0;
    pl->mve.k4 = pl->k4;
    pl->mve.tail = pl->tail;
    pl->mve.pairs = pl->pairs;
    pl->mve.out_c = out_c;
    pl->mve.mode = pl->mode;
    pl->mve.act_min = act_min;
    pl->mve.act_max = act_max;
    pl->mve.out_stride = pixels;
#endif
    return pl->cols + 2 * pl->k4 + 8;
}

/* Every output channel of pixels p and p + b_step (b_step 0: p alone), from the columns. */
static EC_CONV_PAIR_INLINE void ec_conv_pixel_pair(const struct ec_conv_plan *pl, int p, int b_step, int8_t *output)
{
#if EC_FAST_MVE
    ec_conv_mve_pixel_pair(&pl->mve, (const int8_t *)(void *)pl->acc, b_step, output + p);
    return;
#endif
    ec_conv_dot(pl->weight, pl->cols, pl->k4, pl->init, pl->pairs, pl->out_c, pl->acc);
    if (pl->tail > 0) {
        ec_conv_tail(pl->w_tail2, pl->w_tail1, pl->w_tail_odd, pl->cols + 2 * pl->k4, pl->tail, pl->pairs,
                     pl->out_c, pl->acc);
    }
#if EC_FAST_DSP
    /* The common modes in line, as in ec_linear_fast.c (conv1 of LeNet: 5.07 -> 4.78
     * instructions per MAC on M4; every other measured shape equal or better). */
    if (pl->mode == EC_RQ_RELU || pl->mode == EC_RQ_S8) {
        const int32_t *acc = pl->acc;
        const int8_t *s = pl->shift;
        const int step = pl->shift_per_channel ? 1 : 0;
        const long stride = pl->pixels;
        int8_t *out = output + p;
        int c;
        if (pl->mode == EC_RQ_RELU) {
            for (c = pl->out_c; c > 0; --c, acc += 2, s += step, out += stride) {
                ec_fast_output2(acc[0], *s, acc[1], *s, EC_RQ_RELU, 0, 0, out, b_step);
            }
        } else {
            for (c = pl->out_c; c > 0; --c, acc += 2, s += step, out += stride) {
                ec_fast_output2(acc[0], *s, acc[1], *s, EC_RQ_S8, 0, 0, out, b_step);
            }
        }
        return;
    }
#endif
    ec_fast_store(pl->acc, pl->out_c, 2, pl->pixels, b_step, pl->shift, pl->shift_per_channel, pl->mode,
                  pl->act_min, pl->act_max, output + p);
}

int ec_conv2d_fast_scratch(int in_c, int in_h, int in_w, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                           int pad_top, int pad_left, int out_h, int out_w)
{
    const int k_all = in_c * k_h * k_w;
    const int fixed = ec_conv2d_1x1_fast_scratch(k_all, out_c) + 4 * k_all;
    const int width = (out_w - 1) * stride_w + k_w;
    const int rows = k_h + ((out_w & 1) && out_h > 1 ? stride_h : 0);
    if (pad_top == 0 && pad_left == 0 && (out_h - 1) * stride_h + k_h <= in_h && width <= in_w) {
        return fixed; /* every window inside the input: no band */
    }
    return fixed + ((in_c * rows * width + 3) & ~3);
}

void ec_conv2d_fast_s8(const int8_t *input, int in_c, int in_h, int in_w,
                       const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                       int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                       int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max,
                       int round_folded, void *scratch)
{
    const int k_all = in_c * k_h * k_w;
    const int pixels = out_h * out_w;
    struct ec_conv_plan pl;
    int32_t *offs = (int32_t *)ec_conv_plan_init(&pl, k_all, weight, bias, shift, shift_per_channel, out_c, pixels,
                                                 act_min, act_max, round_folded, scratch);
    /* Windows that leave the input read a padded band of rows instead (see
     * ec_conv2d_fast_scratch): then a window's top-left tap is at band row 0 (A) or
     * stride_h (B in the next output row), column ox * stride_w. */
    const int width = (out_w - 1) * stride_w + k_w;
    const int band_rows = k_h + ((out_w & 1) && out_h > 1 ? stride_h : 0);
    int8_t *band = (int8_t *)(void *)(offs + k_all);
    const int use_band = !(pad_top == 0 && pad_left == 0 && (out_h - 1) * stride_h + k_h <= in_h && width <= in_w);
    const int row_step = use_band ? width : in_w;
    const long plane = use_band ? (long)band_rows * width : (long)in_h * in_w;
    int ic, ky, kx, k = 0, p, oy = 0, ox = 0, band_oy = -1;

    for (ic = 0; ic < in_c; ++ic) {
        for (ky = 0; ky < k_h; ++ky) {
            for (kx = 0; kx < k_w; ++kx) {
                offs[k++] = (int32_t)(ic * plane + (long)ky * row_step + kx);
            }
        }
    }
#if EC_FAST_MVE
    ec_conv_mve_order_offsets(offs, pl.k4);
#endif
    for (p = 0; p < pixels; p += 2) {
        /* A is pixel p, B pixel p + 1; without a B (odd pixel count, last pair) B repeats
         * A, and its outputs are stored over A's own (the same values). */
        const int oy_a = oy, ox_a = ox;
        int b_step = 0;
        const int8_t *a, *b;
        ec_next_pixel(&oy, &ox, out_w);
        if (use_band) {
            if (band_oy != oy_a) {
                ec_band_fill(input, in_c, in_h, in_w, oy_a * stride_h - pad_top, band_rows, pad_left, width,
                             (int8_t)pad_value, band);
                band_oy = oy_a;
            }
            a = band + ox_a * stride_w;
        } else {
            a = input + (long)oy_a * stride_h * in_w + ox_a * stride_w;
        }
        b = a;
        if (p + 1 < pixels) {
            b = use_band ? band + (long)(oy - oy_a) * stride_h * width + ox * stride_w
                         : input + (long)oy * stride_h * in_w + ox * stride_w;
            b_step = 1;
            ec_next_pixel(&oy, &ox, out_w);
        }
#if EC_FAST_MVE
        ec_conv_mve_cols(a, b, offs, pl.k4, pl.tail, (int8_t *)(void *)pl.acc);
#else
        ec_cols_interior(a, b, offs, pl.k4, pl.tail, pl.cols);
#endif
        ec_conv_pixel_pair(&pl, p, b_step, output);
    }
}

int ec_conv2d_1x1_fast_scratch(int in_c, int out_c)
{
    return 12 * out_c + 4 * (in_c & ~3) + 16;
}

#if !EC_FAST_MVE /* else ec_conv_mve_cols_pointwise */
/* The columns of a 1x1 convolution: the in_c values of pixel A (a[0], a[plane], ...) and
 * of pixel B (d bytes further), in the chunk layout above; no offsets table. */
static void ec_cols_pointwise(const int8_t *a, long d, long plane, int k4, int tail, int16_t *q)
{
    int j, i;
    for (j = k4 >> 2; j > 0; --j) {
        q[0] = a[0];
        q[4] = a[d];
        a += plane;
        q[1] = a[0];
        q[5] = a[d];
        a += plane;
        q[2] = a[0];
        q[6] = a[d];
        a += plane;
        q[3] = a[0];
        q[7] = a[d];
        a += plane;
        q += 8;
    }
    for (i = 0; i < tail; ++i) {
        q[i] = a[0];
        q[4 + i] = a[d];
        a += plane;
    }
}
#endif

void ec_conv2d_1x1_fast_s8(const int8_t *input, int in_c, int in_h, int in_w,
                           const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                           int out_c, int stride_h, int stride_w, int8_t *output, int out_h, int out_w,
                           int32_t act_min, int32_t act_max, int round_folded, void *scratch)
{
    const int pixels = out_h * out_w;
    const long plane = (long)in_h * in_w;
    struct ec_conv_plan pl;
    int p, oy = 0, ox = 0;
    (void)ec_conv_plan_init(&pl, in_c, weight, bias, shift, shift_per_channel, out_c, pixels, act_min, act_max,
                            round_folded, scratch);
    for (p = 0; p < pixels; p += 2) {
        /* A is pixel p, B pixel p + 1 (or A again when p is the last pixel, as above). */
        const int8_t *a = input + (long)oy * stride_h * in_w + (long)ox * stride_w;
        long d = 0;
        int b_step = 0;
        ec_next_pixel(&oy, &ox, out_w);
        if (p + 1 < pixels) {
            d = input + (long)oy * stride_h * in_w + (long)ox * stride_w - a;
            b_step = 1;
            ec_next_pixel(&oy, &ox, out_w);
        }
#if EC_FAST_MVE
        ec_conv_mve_cols_pointwise(a, d, plane, pl.k4, pl.tail, (int8_t *)(void *)pl.acc);
#else
        ec_cols_pointwise(a, d, plane, pl.k4, pl.tail, pl.cols);
#endif
        ec_conv_pixel_pair(&pl, p, b_step, output);
    }
}

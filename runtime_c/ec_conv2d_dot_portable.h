/*
 * ec_conv2d_dot_portable.h - the inner products of the fast convolution in portable C
 * (Cortex-M0+, M3, the host): the sums of ec_conv2d_dot_dsp.h, one byte of weight at a
 * time.  Included by ec_conv2d_fast.c, whose driver calls ec_conv_dot and
 * ec_conv_tail_pairs.
 */
#ifndef EC_CONV2D_DOT_PORTABLE_H
#define EC_CONV2D_DOT_PORTABLE_H

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

/* The K % 4 tail products of every pair of rows (tail > 0; layout in ec_fast.h): w2 the pair
 * words, w1 the pair halfwords, xt the tail chunk of the columns, whose unused slots are 0.
 * Returns acc past the pairs' accumulators. */
static EC_CONV_STEP_INLINE int32_t *ec_conv_tail_pairs(const int8_t *w2, const int8_t *w1, const int16_t *xt, int tail,
                                                       int pairs, int32_t *acc)
{
    int c;
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
    return acc;
}

#endif

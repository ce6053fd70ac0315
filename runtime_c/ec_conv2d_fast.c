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
#include "ec_conv2d_dot_dsp.h"
#else
#include "ec_conv2d_dot_portable.h"
#endif

/* Adds the K % 4 tail products (tail > 0): w2 the pair words, w1 the pair halfwords,
 * w_odd the odd row's values (layout in ec_fast.h); xt the tail chunk of the columns,
 * whose unused slots are 0. */
static EC_CONV_STEP_INLINE void ec_conv_tail(const int8_t *w2, const int8_t *w1, const int8_t *w_odd,
                                              const int16_t *xt, int tail, int pairs, int out_c, int32_t *acc)
{
    int i;
    acc = ec_conv_tail_pairs(w2, w1, xt, tail, pairs, acc);
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

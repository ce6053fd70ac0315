/*
 * ec_pool2d_fast.c - fast pooling (see ec_pool2d_fast.h and the reference ec_pool2d.c).
 *
 * The reference clips every window on both axes and recomputes each element's
 * address.  Here each output row clips its window rows once, and the output
 * columns split into a left border, an interior whose windows lie inside the
 * input horizontally (fixed width, one pointer stepping by the stride, no
 * checks; 2x2 windows fully unrolled, and for max on DSP cores two SSUB8/SEL
 * pairs on halfword loads) and a right border.  Pooling is one walk for both
 * kinds; forcing it inline into each kernel drops the branches on is_max.  The
 * values reduced are the same, so the results are: the max of the same set, and
 * the same int32 sum (|sum| <= 128 * k_h * k_w, far from overflow) through the
 * same rounding rule.  For an average over n = 2^m elements, rule 5 is a rounding
 * shift: floor((2S + n) / (2n)) == floor((S + 2^(m-1)) / 2^m) for m >= 1 (and
 * S for m = 0), where S + 2^(m-1) < 2^31 because 2S + n < 2^31 (ec_pool2d.h);
 * other n use ec_div_round itself.
 *
 * Global average pooling (one window covering each whole plane, no padding) sums each
 * plane as one run of in_h * in_w values; on DSP cores four per word (SXTAB16), on cores with
 * Helium 16 per vector (ec_pool2d_mve.c).
 */
#include "ec_pool2d_fast.h"

#include "ec_fast.h"

#include <string.h>

#include "ec_pool2d_mve.h"

/* Max or sum of the 2x2 window at p (row stride in_w). */
static EC_FAST_INLINE int32_t ec_pool_2x2(const int8_t *p, int in_w, int is_max)
{
    const int32_t a = p[0], b = p[1], c = p[in_w], d = p[in_w + 1];
    int32_t r;
    if (!is_max) {
        return a + b + c + d;
    }
    r = a > b ? a : b;
    r = c > r ? c : r;
    return d > r ? d : r;
}

#if EC_FAST_DSP
/* Max of the 2x2 window at p, p and in_w even (halfword loads are aligned): SSUB8 sets
 * each byte lane's GE flag where the first operand is >= the second (signed), SEL then
 * picks the larger byte of each lane; once across the rows, once across the columns. */
static EC_FAST_INLINE int8_t ec_pool_max_2x2_simd(const int8_t *p, int in_w)
{
    uint16_t top, bottom;
    uint32_t m, right;
    memcpy(&top, p, 2);
    memcpy(&bottom, p + in_w, 2);
    (void)__ssub8(top, bottom);
    m = __sel(top, bottom); /* bytes 0, 1: the column maxima */
    right = m >> 8;
    (void)__ssub8(m, right);
    return (int8_t)__sel(m, right); /* byte 0: the larger of them */
}
#endif

/* Max or sum (from r) of n >= 0 values at p, four per loop trip. */
static EC_FAST_INLINE int32_t ec_pool_run(const int8_t *p, int n, int32_t r, int is_max)
{
    for (; n >= 4; n -= 4, p += 4) {
        if (is_max) {
            r = p[0] > r ? p[0] : r;
            r = p[1] > r ? p[1] : r;
            r = p[2] > r ? p[2] : r;
            r = p[3] > r ? p[3] : r;
        } else {
            r += (int32_t)p[0] + p[1] + p[2] + p[3];
        }
    }
    for (; n > 0; --n, ++p) {
        r = is_max ? (*p > r ? *p : r) : r + *p;
    }
    return r;
}

/* Max or sum of a window of rows x cols values at p (row stride in_w), rows, cols >= 1. */
static EC_FAST_INLINE int32_t ec_pool_window(const int8_t *p, int rows, int cols, int in_w, int is_max)
{
    int32_t r = is_max ? INT8_MIN : 0;
#if EC_FAST_MVE
    if (cols == in_w && rows * cols >= 16) { /* whole rows (global pooling): one run, 16 values per vector */
        return ec_pool_mve_run(p, rows * cols, r, is_max);
    }
    if (cols >= 16) { /* long rows */
        for (; rows > 0; --rows, p += in_w) {
            r = ec_pool_mve_run(p, cols, r, is_max);
        }
        return r;
    }
#endif
    for (; rows > 0; --rows, p += in_w) {
        r = ec_pool_run(p, cols, r, is_max);
    }
    return r;
}

/* log2(n) for a power of two n >= 1, else -1. */
static int ec_pool_log2(int32_t n)
{
    int m = 0;
    if ((n & (n - 1)) != 0) {
        return -1;
    }
    while (n > 1) {
        n >>= 1;
        ++m;
    }
    return m;
}

/* Rule 5, the offset and saturation for the sum of a window of n values; m = ec_pool_log2(n).
 * scale_shift k >= 0 multiplies the sum by 2^k; k < 0 (a coarser output: the signed mean of unsigned
 * codes) divides by n * 2^-k instead, as the simulator does. */
static EC_FAST_INLINE int8_t ec_pool_average(int32_t sum, int32_t n, int m, int scale_shift, int32_t offset)
{
    int32_t q;
    if (scale_shift >= 0) {
        sum *= (int32_t)1 << scale_shift; /* bounded: see ec_pool2d.h */
    } else {
        n *= (int32_t)1 << -scale_shift; /* -k <= 7 and n <= 2^16: no overflow (ec_pool2d.h) */
        m = m >= 0 ? m - scale_shift : m;
    }
    if (m > 0) {
        q = ec_asr32(sum + ((int32_t)1 << (m - 1)), m);
    } else if (m == 0) {
        q = sum;
    } else {
        q = ec_div_round(sum, n);
    }
    return (int8_t)ec_clamp32(q + offset, INT8_MIN, INT8_MAX); /* |q + offset| < 2^31: ec_pool2d.h */
}

/* Sum of n >= 0 int8 values at p (no alignment needed).  |sum| <= 128 * n, which the pooling
 * contract keeps far below 2^31 (ec_pool2d.h). */
static int32_t ec_pool_sum_run(const int8_t *p, long n)
{
    int32_t sum = 0;
#if EC_FAST_MVE
    if (n >= 16) { /* Helium: 16 values per vector (ec_pool2d_mve.c) */
        return ec_pool_mve_run(p, (int)n, 0, 0);
    }
#endif
#if EC_FAST_DSP
    while (n >= 4) {
        const int32_t ones = 0x00010001;
        /* SXTAB16 adds bytes 0, 2 (and, rotated, 1, 3) of a word to two int16 lanes: each lane
         * gains at most 128 in magnitude per word, so 255 words keep it within int16 */
        long words = n >> 2 < 255 ? n >> 2 : 255;
        int32_t even = 0, odd = 0;
        n -= words * 4;
        for (; words > 0; --words, p += 4) {
            int32_t v;
            memcpy(&v, p, 4); /* an unaligned LDR: Armv7-M and later allow it */
            even = __sxtab16(even, v);
            __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(odd) : "r"(v));
        }
        sum = __smlad(even, ones, sum); /* + both lanes */
        sum = __smlad(odd, ones, sum);
    }
#endif
    for (; n >= 4; n -= 4, p += 4) {
        sum += (int32_t)p[0] + p[1] + p[2] + p[3];
    }
    for (; n > 0; --n, ++p) {
        sum += *p;
    }
    return sum;
}

/* The geometry of one call, shared by the helpers below. */
struct ec_pool_geo {
    int in_w, k_w, stride_w, pad_left, out_w, is_max, count_include_pad, scale_shift;
    int32_t offset;
};

/* Output columns [ox, ox_end) of one output row whose windows may cross the left or right
 * border: rows input rows from row, clipped column by column. */
static int8_t *ec_pool_border(const struct ec_pool_geo *g, const int8_t *row, int rows, int k_h, int ox, int ox_end,
                              int8_t *out)
{
    for (; ox < ox_end; ++ox) {
        const int x0 = ox * g->stride_w - g->pad_left;
        const int x_lo = x0 > 0 ? x0 : 0, x_hi = x0 + g->k_w < g->in_w ? x0 + g->k_w : g->in_w;
        const int32_t n = g->count_include_pad ? k_h * g->k_w : rows * (x_hi - x_lo);
        const int32_t r = ec_pool_window(row + x_lo, rows, x_hi - x_lo, g->in_w, g->is_max);
        *out++ = g->is_max ? (int8_t)r : ec_pool_average(r, n, ec_pool_log2(n), g->scale_shift, g->offset);
    }
    return out;
}

static EC_FAST_INLINE void ec_pool(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                                   int stride_h, int stride_w, int pad_top, int pad_left, int8_t *output, int out_h,
                                   int out_w, int is_max, int count_include_pad, int scale_shift, int32_t offset)
{
    /* Output columns [ox_lo, ox_hi) have their window inside the input horizontally:
     * ox * stride_w - pad_left >= 0 and ox * stride_w - pad_left + k_w <= in_w. */
    int ox_lo = (pad_left + stride_w - 1) / stride_w;
    int ox_hi = in_w - k_w + pad_left >= 0 ? (in_w - k_w + pad_left) / stride_w + 1 : 0;
    const int m_full = ec_pool_log2(k_h * k_w);
    struct ec_pool_geo g;
    int c, oy;
    g.in_w = in_w;
    g.k_w = k_w;
    g.stride_w = stride_w;
    g.pad_left = pad_left;
    g.out_w = out_w;
    g.is_max = is_max;
    g.count_include_pad = count_include_pad;
    g.scale_shift = scale_shift;
    g.offset = offset;
    if (!is_max && out_h == 1 && out_w == 1 && k_h == in_h && k_w == in_w && pad_top == 0 && pad_left == 0) {
        /* global average: the window is the plane, n = in_h * in_w whether padding counts or not */
        for (c = 0; c < channels; ++c) {
            output[c] = ec_pool_average(ec_pool_sum_run(input + (long)c * in_h * in_w, (long)in_h * in_w), k_h * k_w,
                                        m_full, scale_shift, offset);
        }
        return;
    }
    ox_lo = ox_lo < out_w ? ox_lo : out_w;
    ox_hi = ox_hi < out_w ? ox_hi : out_w;
    ox_hi = ox_hi > ox_lo ? ox_hi : ox_lo;
    for (c = 0; c < channels; ++c) {
        const int8_t *plane = input + (long)c * in_h * in_w;
        for (oy = 0; oy < out_h; ++oy) {
            const int y0 = oy * stride_h - pad_top;
            const int y_lo = y0 > 0 ? y0 : 0, y_hi = y0 + k_h < in_h ? y0 + k_h : in_h;
            const int rows = y_hi - y_lo;
            const int8_t *row = plane + (long)y_lo * in_w;
            const int8_t *p = row + ox_lo * stride_w - pad_left;
            const int32_t n_inner = count_include_pad ? k_h * k_w : rows * k_w;
            const int m_inner = rows == k_h || count_include_pad ? m_full : ec_pool_log2(n_inner);
            int n = ox_hi - ox_lo;
            if (ox_lo > 0) {
                output = ec_pool_border(&g, row, rows, k_h, 0, ox_lo, output);
            }
            /* Interior: full-width windows, one pointer, no clipping. */
            if (rows == 2 && k_w == 2) { /* the common 2x2 window, unrolled */
#if EC_FAST_MVE
                if (is_max && stride_w == 2 && n > 0) { /* 16 windows per vector */
                    output = ec_pool_mve_max_2x2_s2(p, in_w, n, output);
                    n = 0;
                }
#endif
#if EC_FAST_DSP
                if (is_max && ((in_w | stride_w | (int)((uintptr_t)p & 1u)) & 1) == 0) {
                    for (; n > 0; --n, p += stride_w) {
                        *output++ = ec_pool_max_2x2_simd(p, in_w);
                    }
                }
#endif
                for (; n > 0; --n, p += stride_w) {
                    const int32_t r = ec_pool_2x2(p, in_w, is_max);
                    *output++ = is_max ? (int8_t)r : ec_pool_average(r, n_inner, m_inner, scale_shift, offset);
                }
            } else {
                for (; n > 0; --n, p += stride_w) {
                    const int32_t r = ec_pool_window(p, rows, k_w, in_w, is_max);
                    *output++ = is_max ? (int8_t)r : ec_pool_average(r, n_inner, m_inner, scale_shift, offset);
                }
            }
            if (ox_hi < out_w) {
                output = ec_pool_border(&g, row, rows, k_h, ox_hi, out_w, output);
            }
        }
    }
}

void ec_maxpool2d_fast_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                          int stride_h, int stride_w, int pad_top, int pad_left,
                          int8_t *output, int out_h, int out_w)
{
    ec_pool(input, channels, in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left, output, out_h, out_w, 1, 0,
            0, 0);
}

void ec_avgpool2d_fast_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                          int stride_h, int stride_w, int pad_top, int pad_left,
                          int8_t *output, int out_h, int out_w, int count_include_pad, int scale_shift,
                          int32_t offset)
{
    ec_pool(input, channels, in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left, output, out_h, out_w, 0,
            count_include_pad, scale_shift, offset);
}

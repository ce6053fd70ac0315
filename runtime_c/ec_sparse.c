/* ec_sparse.c - sparse-weight kernels (formats and exactness: see ec_sparse.h). */
#include "ec_sparse.h"

#include <string.h>

#include "ec_fast.h"
#include "ec_fixed.h"

void ec_linear_bitmap_s8(const int8_t *input, int in_features, const uint8_t *mask, const int8_t *values,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel, int out_features,
                         int8_t *output, int32_t act_min, int32_t act_max)
{
    const int mask_bytes = (in_features + 7) / 8;
    int o, j, b;
    for (o = 0; o < out_features; ++o) {
        int32_t acc = bias != 0 ? bias[o] : 0;
        for (j = 0; j < mask_bytes; ++j) {
            unsigned bits = *mask++;
            const int8_t *x = input + 8 * j;
            for (b = 0; bits != 0u; ++b, bits >>= 1) {
                if (bits & 1u) {
                    acc += (int32_t)x[b] * (int32_t)*values++;
                }
            }
        }
        output[o] = (int8_t)ec_requantize(acc, shift[shift_per_channel ? o : 0], act_min, act_max);
    }
}

void ec_linear_delta_s8(const int8_t *input, int in_features, const uint16_t *counts, const uint8_t *gaps,
                        const int8_t *values, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                        int out_features, int8_t *output, int32_t act_min, int32_t act_max)
{
    int o;
    unsigned i;
    (void)in_features; /* the encoder never points past it */
    for (o = 0; o < out_features; ++o) {
        int32_t acc = bias != 0 ? bias[o] : 0;
        const int8_t *x = input - 1; /* each entry advances by gap + 1 */
        for (i = 0; i < counts[o]; ++i) {
            x += *gaps++ + 1;
            acc += (int32_t)*x * (int32_t)*values++;
        }
        output[o] = (int8_t)ec_requantize(acc, shift[shift_per_channel ? o : 0], act_min, act_max);
    }
}

/* Range of output coordinates o with 0 <= o*stride + k - pad < size, as [lo, hi). */
static void ec_sparse_valid(int k, int pad, int stride, int size, int out_size, int *lo, int *hi)
{
    int first = pad - k; /* smallest o*stride allowed */
    int l = first <= 0 ? 0 : (first + stride - 1) / stride;
    int last = size - 1 + pad - k; /* largest o*stride allowed */
    int h = last < 0 ? 0 : last / stride + 1;
    *lo = l;
    *hi = h < out_size ? h : out_size;
}

/* Add w * input[ic][oy*s + ky - p][ox*s + kx - p] to acc[oy][ox] wherever that is in bounds,
 * and w * pad_value wherever it is not (the padding reads pad_value, the input's zero point). */
static void ec_sparse_scatter(const int8_t *input, int in_h, int in_w, int32_t w, int ic, int ky, int kx,
                              int stride_h, int stride_w, int pad_top, int pad_left, int32_t pad_value,
                              int out_h, int out_w, int32_t *acc)
{
    int oy_lo, oy_hi, ox_lo, ox_hi, oy, ox;
    ec_sparse_valid(ky, pad_top, stride_h, in_h, out_h, &oy_lo, &oy_hi);
    ec_sparse_valid(kx, pad_left, stride_w, in_w, out_w, &ox_lo, &ox_hi);
    for (oy = oy_lo; oy < oy_hi; ++oy) {
        const int8_t *row = input + ((long)ic * in_h + oy * stride_h + ky - pad_top) * in_w + kx - pad_left;
        int32_t *a = acc + (long)oy * out_w;
        for (ox = ox_lo; ox < ox_hi; ++ox) {
            a[ox] += w * (int32_t)row[(long)ox * stride_w];
        }
    }
    if (pad_value != 0) { /* the outputs whose tap lies in the padding: outside [lo, hi) */
        const int32_t p = w * pad_value;
        oy_lo = oy_lo < out_h ? oy_lo : out_h;
        oy_hi = oy_hi > oy_lo ? oy_hi : oy_lo;
        ox_lo = ox_lo < out_w ? ox_lo : out_w;
        ox_hi = ox_hi > ox_lo ? ox_hi : ox_lo;
        for (oy = 0; oy < out_h; ++oy) {
            int32_t *a = acc + (long)oy * out_w;
            const int inside = oy >= oy_lo && oy < oy_hi;
            for (ox = 0; ox < (inside ? ox_lo : out_w); ++ox) {
                a[ox] += p;
            }
            for (ox = inside ? ox_hi : out_w; ox < out_w; ++ox) {
                a[ox] += p;
            }
        }
    }
}

static void ec_sparse_finish(const int32_t *acc, int n, int32_t bias, int s, int32_t lo, int32_t hi, int8_t *out)
{
    int i;
    for (i = 0; i < n; ++i) {
        out[i] = (int8_t)ec_requantize(acc[i] + bias, s, lo, hi);
    }
}

static void ec_sparse_clear(int32_t *acc, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        acc[i] = 0;
    }
}

void ec_conv2d_bitmap_s8(const int8_t *input, int in_c, int in_h, int in_w, const uint8_t *mask,
                         const int8_t *values, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                         int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                         int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max,
                         int32_t *acc)
{
    const int k = in_c * k_h * k_w;
    const int mask_bytes = (k + 7) / 8;
    const int plane = out_h * out_w;
    int oc, col;
    for (oc = 0; oc < out_c; ++oc) {
        const uint8_t *m = mask + (long)oc * mask_bytes;
        int ic = 0, ky = 0, kx = 0;
        ec_sparse_clear(acc, plane);
        for (col = 0; col < k; ++col) {
            if (m[col >> 3] & (1u << (col & 7))) {
                ec_sparse_scatter(input, in_h, in_w, *values++, ic, ky, kx, stride_h, stride_w,
                                  pad_top, pad_left, pad_value, out_h, out_w, acc);
            }
            if (++kx == k_w) { /* columns run (ic, ky, kx), kx fastest */
                kx = 0;
                if (++ky == k_h) {
                    ky = 0;
                    ++ic;
                }
            }
        }
        ec_sparse_finish(acc, plane, bias != 0 ? bias[oc] : 0, shift[shift_per_channel ? oc : 0],
                         act_min, act_max, output + (long)oc * plane);
    }
}

void ec_conv2d_delta_s8(const int8_t *input, int in_c, int in_h, int in_w, const uint16_t *counts,
                        const uint8_t *gaps, const int8_t *values, const int32_t *bias, const int8_t *shift,
                        int shift_per_channel, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                        int pad_top, int pad_left, int32_t pad_value, int8_t *output, int out_h, int out_w,
                        int32_t act_min, int32_t act_max, int32_t *acc)
{
    const int plane = out_h * out_w;
    const int taps = k_h * k_w;
    int oc;
    unsigned i;
    (void)in_c;
    for (oc = 0; oc < out_c; ++oc) {
        long col = -1;
        ec_sparse_clear(acc, plane);
        for (i = 0; i < counts[oc]; ++i) {
            int rest;
            col += *gaps++ + 1;
            rest = (int)(col % taps); /* 32-bit division: decoded once per weight, not per MAC */
            ec_sparse_scatter(input, in_h, in_w, *values++, (int)(col / taps), rest / k_w, rest % k_w,
                              stride_h, stride_w, pad_top, pad_left, pad_value, out_h, out_w, acc);
        }
        ec_sparse_finish(acc, plane, bias != 0 ? bias[oc] : 0, shift[shift_per_channel ? oc : 0],
                         act_min, act_max, output + (long)oc * plane);
    }
}

/* The int32 whose two's complement bits are u (no implementation-defined conversion). */
static int32_t ec_int32_of_bits(uint32_t u)
{
    return u <= 0x7FFFFFFFu ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* Sum of x[0 .. n-1] modulo 2^32 (ec_packed_row_dot needs only its low 32 bits). */
static uint32_t ec_sum_s8(const int8_t *x, int n)
{
    uint32_t sum = 0;
    int i;
    for (i = 0; i < n; ++i) {
        sum += (uint32_t)x[i];
    }
    return sum;
}

#if EC_FAST_DSP
/* (bottom halfword of lo, bottom of hi) and (top of lo, top of hi): PKHBT, PKHTB (GCC 12 builds them
 * from masks and shifts in three instructions). */
static EC_FAST_INLINE int32_t ec_pack_bottoms(int32_t lo, int32_t hi)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

static EC_FAST_INLINE int32_t ec_pack_tops(int32_t lo, int32_t hi)
{
    int32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

/* UXTB16 of x rotated right by 8 bits: bytes 1 and 3 of x as two uint16. */
static EC_FAST_INLINE int32_t ec_uxtb16_ror8(uint32_t x)
{
    int32_t r;
    __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* 8 inputs at x (any alignment: LDR reads them on these cores) paired as 4-bit packed words need
 * them: the low nibbles of a word are u0 u2 u4 u6, the high ones u1 u3 u5 u7, and UXTB16 pairs bytes
 * 0 and 2, so p = (x0, x4), (x2, x6), (x1, x5), (x3, x7).  Paired once, they serve two rows. */
static EC_FAST_INLINE void ec_pair_inputs8(const int8_t *x, int32_t p[4])
{
    uint32_t x0, x1;
    int32_t e0, e1, o0, o1;
    memcpy(&x0, x, 4);
    memcpy(&x1, x + 4, 4);
    e0 = __sxtb16((int32_t)x0);       /* (x0, x2) */
    e1 = __sxtb16((int32_t)x1);       /* (x4, x6) */
    o0 = ec_sxtb16_ror8((int32_t)x0); /* (x1, x3) */
    o1 = ec_sxtb16_ror8((int32_t)x1); /* (x5, x7) */
    p[0] = ec_pack_bottoms(e0, e1);
    p[1] = ec_pack_tops(e0, e1);
    p[2] = ec_pack_bottoms(o0, o1);
    p[3] = ec_pack_tops(o0, o1);
}

/* acc + dot(u, x) over 8 weights: one word of 4-bit fields at w (any alignment) with every sign bit
 * flipped (u = w + 8, 0 .. 15), against the inputs paired by ec_pair_inputs8.  SMLAD wraps as the
 * uint32_t sums do (see ec_packed_row_rest), and GCC (which EC_FAST_DSP requires) converts between
 * uint32_t and int32_t modulo 2^32. */
static EC_FAST_INLINE uint32_t ec_packed4_dot8(const uint8_t *w, const int32_t p[4], uint32_t acc)
{
    uint32_t wv, lo, hi;
    int32_t a = (int32_t)acc;
    memcpy(&wv, w, 4);
    wv ^= 0x88888888u;
    lo = wv & 0x0F0F0F0Fu;
    hi = (wv >> 4) & 0x0F0F0F0Fu;
    a = __smlad((int32_t)__uxtb16(lo), p[0], a);
    a = __smlad(ec_uxtb16_ror8(lo), p[1], a);
    a = __smlad((int32_t)__uxtb16(hi), p[2], a);
    a = __smlad(ec_uxtb16_ror8(hi), p[3], a);
    return (uint32_t)a;
}
#endif

/* dot(row, x) of a packed row from column i on (i a multiple of 8: row points at its byte), added
 * to acc, less 2^(f-1) x_sum, x_sum = x[0] + ... + x[cols - 1].  A field v read unsigned with its
 * sign bit flipped is u = v ^ 2^(f-1) = w + 2^(f-1), 0 .. 2^f - 1 (one XOR per byte flips every
 * field's, 0x88 or 0xAA), so dot(w, x) = dot(u, x) - 2^(f-1) x_sum: no per-weight sign extension.
 * The sums run in uint32_t, which wraps: dot(u, x) may exceed the proven bound (|u| up to 15 where
 * |w| is 8 or less), but the final value is dot(w, x), inside it, so its 32 bits are exact whatever
 * wrapped on the way.  The last byte's padding fields are never read. */
static int32_t ec_packed_row_rest(const uint8_t *row, const int8_t *x, int i, int cols, int field_bits,
                                  uint32_t x_sum, uint32_t acc)
{
    int j;
    if (field_bits == 4) {
        for (; i + 2 <= cols; i += 2) {
            const unsigned u = *row++ ^ 0x88u;
            acc += (uint32_t)(x[i] * (int32_t)(u & 15u));
            acc += (uint32_t)(x[i + 1] * (int32_t)(u >> 4));
        }
    } else {
        for (; i + 4 <= cols; i += 4) {
            const unsigned u = *row++ ^ 0xAAu;
            acc += (uint32_t)(x[i] * (int32_t)(u & 3u));
            acc += (uint32_t)(x[i + 1] * (int32_t)((u >> 2) & 3u));
            acc += (uint32_t)(x[i + 2] * (int32_t)((u >> 4) & 3u));
            acc += (uint32_t)(x[i + 3] * (int32_t)(u >> 6));
        }
    }
    for (j = 0; i < cols; ++i, ++j) { /* the last byte's fields up to cols */
        const unsigned u = ((unsigned)*row >> (field_bits * j) ^ (1u << (field_bits - 1))) & ((1u << field_bits) - 1u);
        acc += (uint32_t)(x[i] * (int32_t)u);
    }
    return ec_int32_of_bits(acc - (x_sum << (field_bits - 1)));
}

/* dot(row, x) over cols values of a packed row (words of 8 4-bit weights first on DSP cores). */
static int32_t ec_packed_row_dot(const uint8_t *row, const int8_t *x, int cols, int field_bits, uint32_t x_sum)
{
    uint32_t acc = 0;
    int i = 0;
#if EC_FAST_DSP
    if (field_bits == 4) {
        int32_t p[4];
        for (; i + 8 <= cols; i += 8) {
            ec_pair_inputs8(x + i, p);
            acc = ec_packed4_dot8(row + i / 2, p, acc);
        }
    }
#endif
    return ec_packed_row_rest(row + i * field_bits / 8, x, i, cols, field_bits, x_sum, acc);
}

#if EC_FAST_DSP
/* dot(row 0, x) and dot(row 1, x) of two 4-bit packed rows: each 8 inputs paired once for both. */
static void ec_packed4_rows2(const uint8_t *r0, const uint8_t *r1, const int8_t *x, int cols, uint32_t x_sum,
                             int32_t acc[2])
{
    uint32_t a0 = 0, a1 = 0;
    int32_t p[4];
    int i;
    for (i = 0; i + 8 <= cols; i += 8) {
        ec_pair_inputs8(x + i, p);
        a0 = ec_packed4_dot8(r0 + i / 2, p, a0);
        a1 = ec_packed4_dot8(r1 + i / 2, p, a1);
    }
    acc[0] = ec_packed_row_rest(r0 + i / 2, x, i, cols, 4, x_sum, a0);
    acc[1] = ec_packed_row_rest(r1 + i / 2, x, i, cols, 4, x_sum, a1);
}
#endif

/* u . (x0, x1, x2, x3) for the four 2-bit fields of a byte with flipped sign bits, u = byte ^ 0xAA
 * (|sum| <= 4 * 128 * 3, an int). */
static EC_FAST_INLINE int32_t ec_packed2_dot4(unsigned u, int32_t x0, int32_t x1, int32_t x2, int32_t x3)
{
    return x0 * (int32_t)(u & 3u) + x1 * (int32_t)((u >> 2) & 3u) + x2 * (int32_t)((u >> 4) & 3u) +
           x3 * (int32_t)(u >> 6);
}

/* dot(row 0, x) and dot(row 1, x) of two 2-bit packed rows: each 4 inputs loaded once for both. */
static void ec_packed2_rows2(const uint8_t *r0, const uint8_t *r1, const int8_t *x, int cols, uint32_t x_sum,
                             int32_t acc[2])
{
    uint32_t a0 = 0, a1 = 0;
    int i;
    for (i = 0; i + 4 <= cols; i += 4) {
        const int32_t x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
        a0 += (uint32_t)ec_packed2_dot4(*r0++ ^ 0xAAu, x0, x1, x2, x3); /* wraps: see ec_packed_row_rest */
        a1 += (uint32_t)ec_packed2_dot4(*r1++ ^ 0xAAu, x0, x1, x2, x3);
    }
    acc[0] = ec_packed_row_rest(r0, x, i, cols, 2, x_sum, a0);
    acc[1] = ec_packed_row_rest(r1, x, i, cols, 2, x_sum, a1);
}

/* Reads a matrix's rows in order: dot(row r, x) for r = 0, 1, ... (the cursor keeps its place). */
typedef struct {
    const ec_weights_s8 *w;
    long row;
    const int8_t *values;
    const uint8_t *gaps;
    uint32_t x_sum;         /* EC_PACKED: the sum of x, once per call */
    const uint8_t *packed;  /* EC_PACKED: the next row */
    long packed_row_bytes;  /* EC_PACKED */
} ec_row_cursor;

static void ec_cursor_start(ec_row_cursor *c, const ec_weights_s8 *w, const int8_t *x, int cols)
{
    c->w = w;
    c->row = 0;
    c->values = w->values;
    c->gaps = w->gaps;
    c->x_sum = 0;
    c->packed = w->packed;
    c->packed_row_bytes = 0;
    if (w->format == EC_PACKED) {
        c->x_sum = ec_sum_s8(x, cols);
        c->packed_row_bytes = (cols * (long)w->field_bits + 7) / 8;
    }
}

static int32_t ec_next_row_dot(ec_row_cursor *c, const int8_t *x, int cols)
{
    int32_t acc = 0;
    int i, j, bit;
    const ec_weights_s8 *w = c->w;
    if (w->format == EC_DENSE) {
        const int8_t *row = w->dense + c->row * cols;
        for (i = 0; i < cols; ++i) {
            acc += (int32_t)x[i] * (int32_t)row[i];
        }
    } else if (w->format == EC_PACKED) {
        acc = ec_packed_row_dot(c->packed, x, cols, w->field_bits, c->x_sum);
        c->packed += c->packed_row_bytes;
    } else if (w->format == EC_BITMAP) {
        const int mask_bytes = (cols + 7) / 8;
        const uint8_t *m = w->mask + c->row * mask_bytes;
        for (j = 0; j < mask_bytes; ++j) {
            for (bit = 0; bit < 8; ++bit) {
                if (m[j] & (1u << bit)) {
                    acc += (int32_t)x[8 * j + bit] * (int32_t)*c->values++;
                }
            }
        }
    } else {
        const int8_t *p = x - 1;
        unsigned k;
        for (k = 0; k < w->counts[c->row]; ++k) {
            p += *c->gaps++ + 1;
            acc += (int32_t)*p * (int32_t)*c->values++;
        }
    }
    c->row += 1;
    return acc; /* a subset of the dense products: inside the proven bound */
}

/* The cursor's next two rows: dot(row r, x) in acc[0], dot(row r + 1, x) in acc[1] (2-bit packed rows
 * together, 4-bit ones too on DSP cores, the others one by one). */
static EC_FAST_INLINE void ec_next_rows_dot2(ec_row_cursor *c, const int8_t *x, int cols, int32_t acc[2])
{
    const uint8_t *r0, *r1;
    if (c->w->format != EC_PACKED || (c->w->field_bits == 4 && !EC_FAST_DSP)) {
        acc[0] = ec_next_row_dot(c, x, cols);
        acc[1] = ec_next_row_dot(c, x, cols);
        return;
    }
    r0 = c->packed;
    r1 = c->packed + c->packed_row_bytes;
#if EC_FAST_DSP
    if (c->w->field_bits == 4) {
        ec_packed4_rows2(r0, r1, x, cols, c->x_sum, acc);
    } else {
        ec_packed2_rows2(r0, r1, x, cols, c->x_sum, acc);
    }
#else
    ec_packed2_rows2(r0, r1, x, cols, c->x_sum, acc);
#endif
    c->packed += 2 * c->packed_row_bytes;
    c->row += 2;
}

/* The next n (1 or 2) rows of both matrices. */
static EC_FAST_INLINE void ec_next_rows(ec_row_cursor *ca, const int8_t *a, int na, ec_row_cursor *cb,
                                        const int8_t *b, int nb, int n, int32_t acc_a[2], int32_t acc_b[2])
{
    if (n == 2) {
        ec_next_rows_dot2(ca, a, na, acc_a);
        ec_next_rows_dot2(cb, b, nb, acc_b);
    } else {
        acc_a[0] = ec_next_row_dot(ca, a, na);
        acc_b[0] = ec_next_row_dot(cb, b, nb);
    }
}

void ec_dual_linear_sparse_s8(const int8_t *a, int na, const ec_weights_s8 *wa, int down_a, const int8_t *b, int nb,
                              const ec_weights_s8 *wb, int down_b, const int32_t *bias, int out, int shift_out,
                              int8_t *output, int32_t act_min, int32_t act_max)
{
    ec_row_cursor ca, cb;
    int o;
    ec_cursor_start(&ca, wa, a, na);
    ec_cursor_start(&cb, wb, b, nb);
    for (o = 0; o < out; o += 2) {
        const int n = out - o < 2 ? 1 : 2;
        int32_t acc_a[2], acc_b[2];
        int r;
        ec_next_rows(&ca, a, na, &cb, b, nb, n, acc_a, acc_b);
        for (r = 0; r < n; ++r) {
            const int32_t acc = ec_align32(acc_a[r], -down_a) + ec_align32(acc_b[r], -down_b) + bias[o + r];
            output[o + r] = (int8_t)ec_requantize(acc, shift_out, act_min, act_max);
        }
    }
}

void ec_gated_linear_sparse_s8(const int8_t *a, int na, const ec_weights_s8 *wa, int down_a, const int32_t *bias_a,
                               const int8_t *b, int nb, const ec_weights_s8 *wb, const int32_t *bias_b, int shift_b,
                               const int8_t *g, int down_p, int out, int shift_out, int8_t *output, int32_t act_min,
                               int32_t act_max)
{
    ec_row_cursor ca, cb;
    int o;
    ec_cursor_start(&ca, wa, a, na);
    ec_cursor_start(&cb, wb, b, nb);
    for (o = 0; o < out; o += 2) {
        const int n = out - o < 2 ? 1 : 2;
        int32_t acc_a[2], acc_b[2];
        int r;
        ec_next_rows(&ca, a, na, &cb, b, nb, n, acc_a, acc_b);
        for (r = 0; r < n; ++r) {
            /* as ec_gated_linear_s8: |Wb.b + bias_b| <= 2^31 - 1, rounded by shift_b |v| <= 2^23, |g v| <= 2^30 */
            const int32_t v = ec_align32(acc_b[r] + bias_b[o + r], -shift_b);
            const int32_t acc = ec_align32(acc_a[r], -down_a) + ec_align32((int32_t)g[o + r] * v, -down_p) +
                                bias_a[o + r];
            output[o + r] = (int8_t)ec_requantize(acc, shift_out, act_min, act_max);
        }
    }
}

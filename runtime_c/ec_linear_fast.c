/*
 * ec_linear_fast.c - fast fully connected layer (see ec_linear_fast.h; weight layout in ec_fast.h).
 *
 * Rows are taken four at a time: one load of four input values serves four rows,
 * whose weight words are interleaved so that one pointer walks them all.
 * Leftover rows (out % 4) go one at a time, then every row adds its K % 4 tail
 * products.  No scratch: the int8 input is read a word at a time and widened in
 * registers, SXTB16 giving the pairs (x0, x2) and, rotated by 8, (x1, x3); the
 * weight words (k0, k1, k2, k3) give (k0, k2) and (k1, k3) the same way, and SMLAD
 * multiplies matching pairs.  An input that is not 4-byte aligned (possible only
 * for the model's input, the caller's buffer) goes row by row, read a byte at a
 * time: exact, but about twice as slow.
 *
 * Exactness: each accumulator is bias (+ the folded rounding constant, ec_fast.h)
 * plus the reference's products in another order; every partial sum is bounded by
 * acc_bound (+ 2^(s-1)) < 2^31, so the int32 result and the output are the same.
 */
#include "ec_linear_fast.h"

#include <string.h>

#include "ec_linear_mve.h"

#if EC_FAST_DSP
/* One chunk of 4 values for 4 interleaved rows: the input word gives the pairs (x0, x2),
 * (x1, x3) by SXTB16 and SXTB16 ROR #8; two LDRDs of the rows' words (k0, k1, k2, k3),
 * each turned into (k0, k2), (k1, k3) the same way; eight SMLADs, each a partial sum of
 * a bounded accumulator (so SMLAD's Q flag never matters). */
#define EC_LINEAR_ROWS(a, b)                                                                                         \
    "ldrd    %[wa], %[wb], [%[w]], #8\n\t"                                                                          \
    "sxtb16  %[t], %[wa]\n\t"                                                                                       \
    "sxtb16  %[wa], %[wa], ror #8\n\t"                                                                              \
    "smlad   %[" a "], %[t], %[xe], %[" a "]\n\t"                                                                   \
    "smlad   %[" a "], %[wa], %[xo], %[" a "]\n\t"                                                                  \
    "sxtb16  %[t], %[wb]\n\t"                                                                                       \
    "sxtb16  %[wb], %[wb], ror #8\n\t"                                                                              \
    "smlad   %[" b "], %[t], %[xe], %[" b "]\n\t"                                                                   \
    "smlad   %[" b "], %[wb], %[xo], %[" b "]\n\t"
#define EC_LINEAR_CHUNK                                                                                              \
    "ldr     %[t], [%[x]], #4\n\t"                                                                                  \
    "sxtb16  %[xe], %[t]\n\t"                                                                                       \
    "sxtb16  %[xo], %[t], ror #8\n\t" EC_LINEAR_ROWS("a0", "a1") EC_LINEAR_ROWS("a2", "a3")

/*
 * acc[r] += row r . x over n > 0 chunks of 4 values, for the 4 interleaved rows at w and
 * a 4-byte aligned x: two chunks per trip of the loop (an odd count enters at the second),
 * 21 instructions per 16 MACs plus one per chunk for the loop.  Returns w past the bytes
 * read.
 */
static EC_FAST_INLINE const int8_t *ec_dot_4x1(const int8_t *w, const int8_t *x, int n, int32_t *acc)
{
    int32_t a0, a1, a2, a3, wa, wb, t, xe, xo;
    /* volatile: the block's effect is the accumulators it stores; GCC may drop a plain asm whose
       register outputs are unused (a caller that never reads the returned w) */
    __asm__ volatile("ldrd    %[a0], %[a1], [%[acc]]\n\t"
                     "ldrd    %[a2], %[a3], [%[acc], #8]\n\t"
                     "lsrs    %[n], %[n], #1\n\t" /* trips of two chunks; C = odd count */
                     "bcc     1f\n\t"
                     "adds    %[n], %[n], #1\n\t"
                     "b       2f\n\t"
                     "1:\n\t" EC_LINEAR_CHUNK "2:\n\t" EC_LINEAR_CHUNK
                     "subs    %[n], %[n], #1\n\t"
                     "bne     1b\n\t"
                     "strd    %[a0], %[a1], [%[acc]]\n\t"
                     "strd    %[a2], %[a3], [%[acc], #8]\n\t"
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [w] "+r"(w), [x] "+r"(x),
                       [n] "+r"(n), [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t), [xe] "=&r"(xe), [xo] "=&r"(xo)
                     : [acc] "r"(acc)
                     : "cc", "memory");
    return w;
}

/* One row at a time (rows left over after the groups of 4, or any row when x is not
 * 4-byte aligned): the same pairs, in C; x read a word at a time when `words` (x is
 * 4-byte aligned), else a byte at a time.  w: the row's words, w_step bytes apart (4 for
 * a lone row, 16 within a group of 4). */
static void ec_dot_1x1(const int8_t *w, int w_step, const int8_t *x, int n, int words, int32_t *acc)
{
    int32_t a = *acc, wv, xv;
    if (words) { /* a classifier's last rows (out % 4, e.g. 256 -> 2): as fast as the groups */
        for (; n > 0; --n, w += w_step, x += 4) {
            memcpy(&wv, w, 4); /* one LDR each: both words are aligned */
            memcpy(&xv, x, 4);
            a = __smlad(__sxtb16(wv), __sxtb16(xv), a);
            a = __smlad(ec_sxtb16_ror8(wv), ec_sxtb16_ror8(xv), a);
        }
    }
    for (; n > 0; --n, w += w_step, x += 4) {
        const int32_t xe = (int32_t)(((uint32_t)x[0] & 0xFFFFu) | ((uint32_t)x[2] << 16));
        const int32_t xo = (int32_t)(((uint32_t)x[1] & 0xFFFFu) | ((uint32_t)x[3] << 16));
        memcpy(&wv, w, 4); /* one LDR: the word is aligned */
        a = __smlad(__sxtb16(wv), xe, a);
        a = __smlad(ec_sxtb16_ror8(wv), xo, a);
    }
    *acc = a;
}
#else
/* Portable: the same sums, one byte at a time (no word access): each input value is
 * loaded once for the four rows, which suits Thumb-1's few registers. */
/* Value i of the chunk times row r's weight at w[4r + i], for the four rows. */
#define EC_VALUE_X4(i)                                                                                               \
    v = x[i];                                                                                                        \
    a0 += w[i] * v;                                                                                                  \
    a1 += w[4 + (i)] * v;                                                                                            \
    a2 += w[8 + (i)] * v;                                                                                            \
    a3 += w[12 + (i)] * v

static const int8_t *ec_dot_4x1(const int8_t *w, const int8_t *x, int n, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], v;
    const int8_t *end = x + 4 * n;
    for (; x != end; w += 16, x += 4) {
        EC_VALUE_X4(0);
        EC_VALUE_X4(1);
        EC_VALUE_X4(2);
        EC_VALUE_X4(3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return w;
}

static void ec_dot_1x1(const int8_t *w, int w_step, const int8_t *x, int n, int words, int32_t *acc)
{
    int32_t a0 = *acc;
    (void)words; /* bytes anyway */
    for (; n > 0; --n, w += w_step, x += 4) {
        a0 += (int32_t)w[0] * x[0] + (int32_t)w[1] * x[1] + (int32_t)w[2] * x[2] + (int32_t)w[3] * x[3];
    }
    *acc = a0;
}
#endif

/* acc[r] += the tail products of rows r < rows (tail values row by row at w). */
static void ec_linear_tail(const int8_t *w, const int8_t *x, int tail, int rows, int32_t *acc)
{
    int r, i;
    for (r = 0; r < rows; ++r) {
        for (i = 0; i < tail; ++i) {
            acc[r] += (int32_t)*w++ * x[i];
        }
    }
}

/* acc[r] += row r . x over the first 4n values (n >= 0 chunks) of `rows` rows (a group of 4
 * whose words are interleaved, or 1 row): Helium, the DSP 4-row loop (x 4-byte aligned:
 * `words`), or row by row.  Returns w past the rows' words. */
static EC_FAST_INLINE const int8_t *ec_linear_dot_rows(const int8_t *w, const int8_t *x, int n, int rows, int words,
                                                       int32_t *acc)
{
    int r;
    if (n <= 0) {
        return w;
    }
    if (EC_FAST_MVE) {
#if EC_FAST_MVE
        return ec_linear_mve_dot(w, x, n, rows, acc); /* any alignment */
#endif
    }
    if (rows == 4 && (words || !EC_FAST_DSP)) {
        return ec_dot_4x1(w, x, n, acc);
    }
    for (r = 0; r < rows; ++r) { /* row r's words at w + 4r, 4 * rows bytes apart */
        ec_dot_1x1(w + 4 * r, 4 * rows, x, n, words, acc + r);
    }
    return w + 4L * rows * n;
}

#if EC_FAST_DSP
/* The accumulators of 4 rows, in registers. */
typedef struct {
    int32_t r0, r1, r2, r3;
} ec_acc4;

/* acc += the 4 interleaved rows at w . x over n > 0 chunks (x 4-byte aligned): ec_dot_4x1's loop
 * on accumulators kept in registers (no load and store around it).  Returns w past the words. */
static EC_FAST_INLINE const int8_t *ec_dot_4x1_regs(const int8_t *w, const int8_t *x, int n, ec_acc4 *acc)
{
    int32_t a0 = acc->r0, a1 = acc->r1, a2 = acc->r2, a3 = acc->r3, wa, wb, t, xe, xo;
    __asm__("lsrs    %[n], %[n], #1\n\t" /* trips of two chunks; C = odd count */
            "bcc     1f\n\t"
            "adds    %[n], %[n], #1\n\t"
            "b       2f\n\t"
            "1:\n\t" EC_LINEAR_CHUNK "2:\n\t" EC_LINEAR_CHUNK
            "subs    %[n], %[n], #1\n\t"
            "bne     1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x] "+r"(x), [n] "+r"(n),
              [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t), [xe] "=&r"(xe), [xo] "=&r"(xo)
            :
            : "cc", "memory");
    acc->r0 = a0;
    acc->r1 = a1;
    acc->r2 = a2;
    acc->r3 = a3;
    return w;
}

/* acc += the 4 rows . x over k values: the rows' words at *w (Helium, or the DSP loop with x 4-byte
 * aligned), their k % 4 tail values row by row at *w_tail (each input value loaded once for the four
 * rows); both pointers advance past them. */
static EC_FAST_INLINE void ec_dot4(const int8_t **w, const int8_t **w_tail, const int8_t *x, int k, ec_acc4 *acc)
{
    const int n = k >> 2, tail = k & 3;
    const int8_t *t = *w_tail;
    int i;
    if (n > 0 && EC_FAST_MVE) {
#if EC_FAST_MVE
        int32_t a[4];
        a[0] = acc->r0;
        a[1] = acc->r1;
        a[2] = acc->r2;
        a[3] = acc->r3;
        *w = ec_linear_mve_dot(*w, x, n, 4, a); /* any alignment */
        acc->r0 = a[0];
        acc->r1 = a[1];
        acc->r2 = a[2];
        acc->r3 = a[3];
#endif
    } else if (n > 0) {
        *w = ec_dot_4x1_regs(*w, x, n, acc);
    }
    x += 4 * n;
    for (i = 0; i < tail; ++i) { /* |w * v| <= 2^14, inside the row's bound */
        const int32_t v = x[i];
        acc->r0 += t[i] * v;
        acc->r1 += t[tail + i] * v;
        acc->r2 += t[2 * tail + i] * v;
        acc->r3 += t[3 * tail + i] * v;
    }
    *w_tail = t + 4 * tail;
}

#endif

/* DSP path: a group of four rows in a folded mode starts at its biases plus each row's
 * rounding constant (ec_fast_start without the mode test), and in the two common modes
 * stores its outputs in line.  For short rows (a factorized layer's U has rank-long rows)
 * the calls and tests this saves cost as much as the products: 16->120 on M4 went from
 * 6.02 to 4.26 instructions per MAC.  On Thumb-1 the in-line store took registers from the
 * 4-row loop and cost 3 % on long rows, so the portable path keeps the calls. */
static EC_FAST_INLINE void ec_linear_start4(const int32_t *bias, const int8_t *s, int step, int32_t *acc)
{
    int r;
    for (r = 0; r < 4; ++r, s += step) {
        const int32_t b = bias != 0 ? bias[r] : 0;
        acc[r] = *s > 0 ? b + ((int32_t)1 << (*s - 1)) : b;
    }
}

static EC_FAST_INLINE void ec_linear_out4(const int32_t *acc, const int8_t *s, int step, int mode, int8_t *out)
{
    ec_fast_output2(acc[0], s[0], acc[1], s[step], mode, 0, 0, out, 1);
    ec_fast_output2(acc[2], s[2 * step], acc[3], s[3 * step], mode, 0, 0, out + 2, 1);
}

#if EC_FAST_DSP
static const int32_t ec_linear_no_bias[4] = {0, 0, 0, 0};

/* The common case of a layer on DSP cores, its first `groups` groups of 4 rows: the input 4-byte
 * aligned (any alignment with Helium), int8 outputs, a folded mode with the int8 or ReLU clamp (MODE,
 * a constant in each inlined copy).  The accumulators stay in registers through the products, the
 * tail and the output (a cell's 10->64 input projection took 7 instructions per MAC through the
 * general loop, its 64->64 one 2.0).  Exact: the same start values and products as that loop. */
static EC_FAST_INLINE void ec_linear_groups(const int8_t *input, int k, const int8_t *w, const int8_t *w_tail,
                                            const int32_t *bias, const int8_t *shift, int step, int groups,
                                            const int mode, int8_t *out)
{
    int g;
    for (g = 0; g < groups; ++g, shift += 4 * step, out += 4) {
        /* bias + the rounding constant (1 << s) >> 1 = 2^(s-1) for s > 0, 0 for s = 0 (folded modes have
           no negative shift): within acc_bound + 2^(s-1) <= 2^31 - 1 (round_folded) */
        const int32_t *b = bias != 0 ? bias + 4 * g : ec_linear_no_bias;
        ec_acc4 a4;
        a4.r0 = b[0] + (int32_t)(((uint32_t)1 << shift[0]) >> 1);
        a4.r1 = b[1] + (int32_t)(((uint32_t)1 << shift[step]) >> 1);
        a4.r2 = b[2] + (int32_t)(((uint32_t)1 << shift[2 * step]) >> 1);
        a4.r3 = b[3] + (int32_t)(((uint32_t)1 << shift[3 * step]) >> 1);
        ec_dot4(&w, &w_tail, input, k, &a4);
        ec_fast_output2(a4.r0, shift[0], a4.r1, shift[step], mode, 0, 0, out, 1);
        ec_fast_output2(a4.r2, shift[2 * step], a4.r3, shift[3 * step], mode, 0, 0, out + 2, 1);
    }
}

static EC_FAST_NOINLINE void ec_linear_groups_s8(const int8_t *input, int k, const int8_t *w, const int8_t *w_tail,
                                                 const int32_t *bias, const int8_t *shift, int step, int groups,
                                                 int8_t *out)
{
    ec_linear_groups(input, k, w, w_tail, bias, shift, step, groups, EC_RQ_S8, out);
}

static EC_FAST_NOINLINE void ec_linear_groups_relu(const int8_t *input, int k, const int8_t *w,
                                                   const int8_t *w_tail, const int32_t *bias, const int8_t *shift,
                                                   int step, int groups, int8_t *out)
{
    ec_linear_groups(input, k, w, w_tail, bias, shift, step, groups, EC_RQ_RELU, out);
}
#endif

/* The layer for both output widths: out_bytes 1 (int8_t, the stores above) or 2 (int16_t,
 * one requantized value per row: a model's few logits, so no folded stores).  Not inlined into
 * the two entry points: on Cortex-M0+ two copies cost the int8 layers 1 % (measured on LeNet-5). */
static void ec_linear_fast(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                           const int8_t *shift, int shift_per_channel, int out_features, void *output,
                           int out_bytes, int32_t act_min, int32_t act_max, int round_folded)
{
    const int k4 = in_features & ~3, tail = in_features - k4, n = k4 >> 2;
    const int mode = ec_fast_mode(shift, shift_per_channel, out_features, round_folded, act_min, act_max);
    const int step = shift_per_channel ? 1 : 0;
    const int8_t *w = weight, *w_tail = weight + (long)out_features * k4;
    int8_t *out8 = (int8_t *)output;
#if EC_FAST_DSP
    const int words = ((uintptr_t)input & 3u) == 0; /* else row by row, bytes */
#else
    const int words = 0; /* the portable 4-row loop reads bytes anyway */
#endif
    int o = 0, r, rows;

#if EC_FAST_DSP
    if ((words || EC_FAST_MVE) && out_bytes == 1 && (mode == EC_RQ_S8 || mode == EC_RQ_RELU) && out_features >= 4) {
        const int groups = out_features >> 2;
        if (mode == EC_RQ_S8) {
            ec_linear_groups_s8(input, in_features, w, w_tail, bias, shift, step, groups, out8);
        } else {
            ec_linear_groups_relu(input, in_features, w, w_tail, bias, shift, step, groups, out8);
        }
        o = 4 * groups; /* the leftover rows below, past the groups' words and tails */
        w += (long)o * k4;
        w_tail += o * tail;
    }
#endif
    for (; o < out_features; o += rows) {
        rows = out_features - o >= 4 ? 4 : 1;
        int32_t acc[4];
        if (EC_FAST_DSP && rows == 4 && mode != EC_RQ_EXACT) {
            ec_linear_start4(bias != 0 ? bias + o : 0, shift + step * o, step, acc);
        } else {
            for (r = 0; r < rows; ++r) {
                acc[r] = ec_fast_start(bias, o + r, shift[step * (o + r)], mode);
            }
        }
        w = ec_linear_dot_rows(w, input, n, rows, words, acc);
        if (tail > 0) {
            ec_linear_tail(w_tail, input + k4, tail, rows, acc);
            w_tail += rows * tail;
        }
        if (out_bytes == 2) {
            for (r = 0; r < rows; ++r) { /* the int16 range holds the clamped value: act_min, act_max are in it */
                const int16_t v = (int16_t)ec_fast_value(acc[r], shift[step * (o + r)], mode, act_min, act_max);
                memcpy(out8 + 2L * (o + r), &v, 2); /* the caller's buffer: any alignment */
            }
        } else if (EC_FAST_DSP && rows == 4 && mode == EC_RQ_RELU) {
            ec_linear_out4(acc, shift + step * o, step, EC_RQ_RELU, out8 + o);
        } else if (EC_FAST_DSP && rows == 4 && mode == EC_RQ_S8) {
            ec_linear_out4(acc, shift + step * o, step, EC_RQ_S8, out8 + o);
        } else {
            ec_fast_store(acc, rows, 1, 1, 0, shift + step * o, shift_per_channel, mode, act_min, act_max, out8 + o);
        }
    }
}

void ec_linear_fast_s8(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                       const int8_t *shift, int shift_per_channel, int out_features, int8_t *output,
                       int32_t act_min, int32_t act_max, int round_folded)
{
    ec_linear_fast(input, in_features, weight, bias, shift, shift_per_channel, out_features, output, 1, act_min,
                   act_max, round_folded);
}

void ec_linear_fast_s8_s16(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                           const int8_t *shift, int shift_per_channel, int out_features, void *output,
                           int32_t act_min, int32_t act_max, int round_folded)
{
    ec_linear_fast(input, in_features, weight, bias, shift, shift_per_channel, out_features, output, 2, act_min,
                   act_max, round_folded);
}

/*
 * The gates of a recurrent cell: y = sat(rshift(align(Wa.a, -down_a) + align(Wb.b, -down_b) + bias,
 * shift_out)), bit-exact with ec_dual_linear_s8 (ec_recurrent.c).  Each group of rows runs the same
 * dot products as a linear layer, once over a with Wa and once over b with Wb, into two accumulators
 * per row; the one whose down shift is 0 (the code generator always has one: the products are
 * rounded to the coarser of their two formats) starts at the bias plus the folded rounding
 * constant, the other at 0 and is rounded down (rule 2) before the two are added.
 *
 * Exactness and overflow: the compiler proves |Wa.a| + |Wb.b| + |bias| <= acc_bound <= 2^31 - 1
 * per row (DualLinear's acc_bound), and with round_folded also acc_bound + 2^(shift_out - 1) <=
 * 2^31 - 1.  Every partial sum of either accumulator, in any order, is bounded by those sums; a
 * rounded term is no larger in magnitude than the term (rule 2 moves towards 0 or by at most 1/2,
 * and |x| >= 1 whenever rounding moves it outward), so their sum obeys the same bound.
 *
 * Two paths: ec_dual_groups_dsp (the gates' case on DSP and Helium cores: groups of 4 rows, folded
 * int8 or ReLU clamp, accumulators in registers) and ec_dual_rows (everything else: any mode, the
 * portable path, unaligned inputs without Helium, the rows left over after the groups).
 */

/* Rule 2 by 0 <= down <= 31 (ec_align32(x, -down) without its left-shift branch). */
static EC_FAST_INLINE int32_t ec_round_down32(int32_t x, int down)
{
    return down > 0 ? ec_asr32(x, down) + (ec_asr32(x, down - 1) & 1) : x;
}

#if EC_FAST_DSP
/* Rule 2 by down_p on each of 4 accumulators: a floor shift when the rounding constant half_p
 * started them (round_folded proved it fits), else the full rounding (down_p 0: unchanged). */
static EC_FAST_INLINE void ec_acc4_round_down(ec_acc4 *acc, int down_p, int32_t half_p)
{
    if (half_p != 0) {
        acc->r0 = ec_asr32(acc->r0, down_p);
        acc->r1 = ec_asr32(acc->r1, down_p);
        acc->r2 = ec_asr32(acc->r2, down_p);
        acc->r3 = ec_asr32(acc->r3, down_p);
    } else if (down_p > 0) { /* rounded |P| <= |P| */
        acc->r0 = ec_round_down32(acc->r0, down_p);
        acc->r1 = ec_round_down32(acc->r1, down_p);
        acc->r2 = ec_round_down32(acc->r2, down_p);
        acc->r3 = ec_round_down32(acc->r3, down_p);
    }
}

/* acc[r] += bias[r] + rnd (the output's rounding constant, or 0). */
static EC_FAST_INLINE void ec_acc4_add_bias(ec_acc4 *acc, const int32_t *bias, int32_t rnd)
{
    acc->r0 += bias[0] + rnd;
    acc->r1 += bias[1] + rnd;
    acc->r2 += bias[2] + rnd;
    acc->r3 += bias[3] + rnd;
}

/* The 4 outputs requantized by shift_out in `mode`, and through the gate's activation table when
 * there is one (codes -128 .. 127 index table[0 .. 255]). */
static EC_FAST_INLINE void ec_acc4_output(const ec_acc4 *acc, int shift_out, const int mode, const int8_t *table,
                                          int8_t *output)
{
    if (table == 0) {
        ec_fast_output2(acc->r0, shift_out, acc->r1, shift_out, mode, 0, 0, output, 1);
        ec_fast_output2(acc->r2, shift_out, acc->r3, shift_out, mode, 0, 0, output + 2, 1);
    } else {
        int8_t v[4];
        ec_fast_output2(acc->r0, shift_out, acc->r1, shift_out, mode, 0, 0, v, 1);
        ec_fast_output2(acc->r2, shift_out, acc->r3, shift_out, mode, 0, 0, v + 2, 1);
        output[0] = table[v[0] + 128];
        output[1] = table[v[1] + 128];
        output[2] = table[v[2] + 128];
        output[3] = table[v[3] + 128];
    }
}
#endif

/* acc[r] += rows r < ROWS . x over k values: the words of the rows' group at *w (advanced past
 * them), their k % 4 tail values row by row at *w_tail (advanced too). */
static EC_FAST_INLINE void ec_dual_dot(const int8_t **w, const int8_t **w_tail, const int8_t *x, int k, int rows,
                                       int words, int32_t *acc)
{
    const int k4 = k & ~3, tail = k - k4;
    int r, i;
    *w = ec_linear_dot_rows(*w, x, k4 >> 2, rows, words, acc);
    for (r = 0; r < rows; ++r) {
        for (i = 0; i < tail; ++i) {
            acc[r] += (int32_t)(*w_tail)[i] * x[k4 + i]; /* |w * x| <= 2^14, inside the row's bound */
        }
        *w_tail += tail;
    }
}

/* Rows o .. o + rows - 1 (rows = 4, a group, or 1): q is the product whose down shift is 0 (its
 * accumulator starts at bias + the rounding constant `rnd`), p the other, rounded down by down_p
 * before the two are added; `late` (both downs > 0, which the code generator never emits) adds the
 * start after rounding q down by `late` (= down_q), as the reference does. */
static EC_FAST_INLINE void ec_dual_rows(const int8_t *xq, int nq, const int8_t **wq, const int8_t **wq_tail,
                                        int words_q, const int8_t *xp, int np, const int8_t **wp,
                                        const int8_t **wp_tail, int words_p, int down_p, int late,
                                        const int32_t *bias, int32_t rnd, int rows, int32_t *acc)
{
    int32_t acc_p[4];
    int r;
    for (r = 0; r < rows; ++r) { /* |bias| + rnd <= acc_bound + 2^(s-1) <= 2^31 - 1 when rnd != 0 */
        acc[r] = late ? 0 : bias[r] + rnd;
        acc_p[r] = 0;
    }
    ec_dual_dot(wq, wq_tail, xq, nq, rows, words_q, acc);
    ec_dual_dot(wp, wp_tail, xp, np, rows, words_p, acc_p);
    for (r = 0; r < rows; ++r) { /* rounded |acc_p| <= |acc_p|: the sum keeps the row's bound */
        acc[r] = (late ? ec_round_down32(acc[r], late) + bias[r] + rnd : acc[r]) +
                 ec_round_down32(acc_p[r], down_p);
    }
}

#if EC_FAST_DSP
/* The common case on DSP cores, for the first `groups` groups of 4 rows: both inputs 4-byte aligned
 * (any alignment with Helium), q's down shift 0, a folded mode with the int8 or ReLU clamp (MODE:
 * EC_RQ_S8 or EC_RQ_RELU, a constant in each inlined copy).  One set of 4 accumulators in registers
 * per group: first p's products, rounded down by down_p, then the bias with the rounding constant,
 * then q's products on top.  Each partial sum is bounded by |round(P)| + |bias| + rnd + |Q| <= acc_bound + rnd <=
 * 2^31 - 1 (round_folded), so this order is as exact as the reference's.  With half_p = 2^(down_p-1)
 * (round_folded's bit 1: the code generator proved max |P| + half_p <= 2^31 - 1) p's accumulator
 * starts at half_p and its rounding is one shift: floor((P + 2^(d-1)) / 2^d) is rule 2. */
static EC_FAST_INLINE void ec_dual_groups_dsp(const int8_t *xq, int nq, const int8_t *wq, const int8_t *wq_tail,
                                              const int8_t *xp, int np, const int8_t *wp, const int8_t *wp_tail,
                                              int down_p, int32_t half_p, const int32_t *bias, int32_t rnd,
                                              int groups, int shift_out, const int mode, const int8_t *table,
                                              int8_t *output)
{
    int g;
    for (g = 0; g < groups; ++g, bias += 4, output += 4) {
        ec_acc4 acc = {half_p, half_p, half_p, half_p};
        ec_dot4(&wp, &wp_tail, xp, np, &acc);
        ec_acc4_round_down(&acc, down_p, half_p);
        ec_acc4_add_bias(&acc, bias, rnd);
        ec_dot4(&wq, &wq_tail, xq, nq, &acc);
        ec_acc4_output(&acc, shift_out, mode, table, output);
    }
}

/* ec_dual_groups_dsp for the int8 clamp (the cells' gates) and for ReLU. */
static EC_FAST_NOINLINE void ec_dual_groups_s8(const int8_t *xq, int nq, const int8_t *wq, const int8_t *wq_tail,
                                               const int8_t *xp, int np, const int8_t *wp, const int8_t *wp_tail,
                                               int down_p, int32_t half_p, const int32_t *bias, int32_t rnd,
                                               int groups, int shift_out, const int8_t *table, int8_t *output)
{
    ec_dual_groups_dsp(xq, nq, wq, wq_tail, xp, np, wp, wp_tail, down_p, half_p, bias, rnd, groups, shift_out,
                       EC_RQ_S8, table, output);
}

static EC_FAST_NOINLINE void ec_dual_groups_relu(const int8_t *xq, int nq, const int8_t *wq, const int8_t *wq_tail,
                                                 const int8_t *xp, int np, const int8_t *wp, const int8_t *wp_tail,
                                                 int down_p, int32_t half_p, const int32_t *bias,
                                                 int32_t rnd, int groups, int shift_out, const int8_t *table,
                                                 int8_t *output)
{
    ec_dual_groups_dsp(xq, nq, wq, wq_tail, xp, np, wp, wp_tail, down_p, half_p, bias, rnd, groups, shift_out,
                       EC_RQ_RELU, table, output);
}
#endif

/* One output of the general path: the requantized value, through the table if there is one. */
static int8_t ec_dual_output(int32_t acc, int s, int mode, int32_t act_min, int32_t act_max, const int8_t *table)
{
    const int32_t v = ec_fast_value(acc, s, mode, act_min, act_max); /* within [act_min, act_max], int8 */
    return table != 0 ? table[v + 128] : (int8_t)v;
}

void ec_dual_linear_fast_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int8_t *b, int nb,
                            const int8_t *wb, int down_b, const int32_t *bias, int out, int shift_out,
                            int8_t *output, int32_t act_min, int32_t act_max, int round_folded,
                            const int8_t *table)
{
    /* ec_fast_mode for one shift (-23 <= shift_out <= 31, ec_requantize's range), without its call */
    const int mode = shift_out < 0 || !(round_folded & 1)            ? EC_RQ_EXACT
                     : act_min == INT8_MIN && act_max == INT8_MAX ? EC_RQ_S8
                     : act_min == 0 && act_max == INT8_MAX        ? EC_RQ_RELU
                                                                  : EC_RQ_CLAMP;
    const int32_t rnd = mode != EC_RQ_EXACT && shift_out > 0 ? (int32_t)1 << (shift_out - 1) : 0;
    /* q: the product with no down shift (a unless only b has none) */
    const int swap = down_a != 0 && down_b == 0, late = down_a != 0 && down_b != 0 ? down_a : 0;
    const int8_t *xq = swap ? b : a, *xp = swap ? a : b, *wq = swap ? wb : wa, *wp = swap ? wa : wb;
    const int nq = swap ? nb : na, np = swap ? na : nb, down_p = swap ? down_a : down_b;
    const int8_t *wq_tail = wq + (long)out * (nq & ~3), *wp_tail = wp + (long)out * (np & ~3);
#if EC_FAST_DSP
    const int words_q = ((uintptr_t)xq & 3u) == 0, words_p = ((uintptr_t)xp & 3u) == 0;
#else
    const int words_q = 0, words_p = 0;
#endif
    int32_t acc[4];
    int o = 0, r;
#if EC_FAST_DSP
    if ((EC_FAST_MVE || (words_q && words_p)) && !late && (mode == EC_RQ_S8 || mode == EC_RQ_RELU) && out >= 4) {
        const int groups = out >> 2;
        const int32_t half_p = (round_folded & 2) && down_p > 0 ? (int32_t)1 << (down_p - 1) : 0;
        if (mode == EC_RQ_S8) {
            ec_dual_groups_s8(xq, nq, wq, wq_tail, xp, np, wp, wp_tail, down_p, half_p, bias, rnd, groups, shift_out,
                              table, output);
        } else {
            ec_dual_groups_relu(xq, nq, wq, wq_tail, xp, np, wp, wp_tail, down_p, half_p, bias, rnd, groups,
                                shift_out, table, output);
        }
        o = 4 * groups; /* the leftover rows below, past the groups' words and tails */
        wq += (long)o * (nq & ~3);
        wp += (long)o * (np & ~3);
        wq_tail += o * (nq & 3);
        wp_tail += o * (np & 3);
    }
#endif
    for (; o + 4 <= out; o += 4) {
        ec_dual_rows(xq, nq, &wq, &wq_tail, words_q, xp, np, &wp, &wp_tail, words_p, down_p, late, bias + o, rnd, 4,
                     acc);
        for (r = 0; r < 4; ++r) {
            output[o + r] = ec_dual_output(acc[r], shift_out, mode, act_min, act_max, table);
        }
    }
    for (; o < out; ++o) {
        ec_dual_rows(xq, nq, &wq, &wq_tail, words_q, xp, np, &wp, &wp_tail, words_p, down_p, late, bias + o, rnd, 1,
                     acc);
        output[o] = ec_dual_output(acc[0], shift_out, mode, act_min, act_max, table);
    }
}

/*
 * A GRU's n gate, W_n x + b_in + r (U_n h + b_hn): bit-exact with ec_gated_linear_s8 (ec_recurrent.c),
 *   y = sat(rshift(align(Wa.a, -down_a) + align(g * v, -down_p) + bias_a, shift_out)),
 *   v = rshift(Wb.b + bias_b, shift_b).
 * Each group of 4 rows runs b's products first (the accumulators start at bias_b + 2^(shift_b - 1),
 * so rule 2 is one floor shift: the compiler proves |Wb.b| + |bias_b| + 2^(shift_b - 1) <= 2^31 - 1),
 * scales them by the gate, rounds them to the common format, adds bias_a (+ the folded output
 * rounding constant) and a's products on top, in the same registers, then requantizes, through the
 * tanh table when there is one.
 *
 * Overflow: |v| <= 2^23, so |g v| <= 2^30 (|g| <= 128); with round_folded bit 1 the code generator
 * proved max |g v| + 2^(down_p - 1) <= 2^31 - 1 (its constant starts the rounding: one shift).  The
 * rounded term is no larger than g v, and |round(g v)| + |bias_a| + rnd + any partial sum of Wa.a is
 * within acc_bound + 2^(shift_out - 1) <= 2^31 - 1 (round_folded bit 0), so every sum is exact.
 * The fast path needs down_a = 0 (a's products at the common format, the code generator's usual
 * case); anything else goes row group by row group through the reference's order of operations.
 */
#if EC_FAST_DSP
static EC_FAST_INLINE void ec_gated_groups_dsp(const int8_t *xa, int na, const int8_t *wa, const int8_t *wa_tail,
                                               const int32_t *bias_a, const int8_t *xb, int nb, const int8_t *wb,
                                               const int8_t *wb_tail, const int32_t *bias_b, int shift_b,
                                               const int8_t *gate, int down_p, int32_t half_p, int32_t rnd,
                                               int groups, int shift_out, const int mode, const int8_t *table,
                                               int8_t *output)
{
    const int32_t half_b = (int32_t)(((uint32_t)1 << shift_b) >> 1);
    int g;
    for (g = 0; g < groups; ++g, bias_a += 4, bias_b += 4, gate += 4, output += 4) {
        ec_acc4 acc = {bias_b[0] + half_b, bias_b[1] + half_b, bias_b[2] + half_b, bias_b[3] + half_b};
        ec_dot4(&wb, &wb_tail, xb, nb, &acc);
        acc.r0 = ec_asr32(acc.r0, shift_b) * gate[0]; /* |v| <= 2^23: |g v| <= 2^30 */
        acc.r1 = ec_asr32(acc.r1, shift_b) * gate[1];
        acc.r2 = ec_asr32(acc.r2, shift_b) * gate[2];
        acc.r3 = ec_asr32(acc.r3, shift_b) * gate[3];
        if (half_p != 0) { /* the rounding constant folded: a floor shift (|g v| + half_p <= 2^31 - 1) */
            acc.r0 += half_p;
            acc.r1 += half_p;
            acc.r2 += half_p;
            acc.r3 += half_p;
        }
        ec_acc4_round_down(&acc, down_p, half_p);
        ec_acc4_add_bias(&acc, bias_a, rnd);
        ec_dot4(&wa, &wa_tail, xa, na, &acc);
        ec_acc4_output(&acc, shift_out, mode, table, output);
    }
}

static EC_FAST_NOINLINE void ec_gated_groups_s8(const int8_t *xa, int na, const int8_t *wa, const int8_t *wa_tail,
                                                const int32_t *bias_a, const int8_t *xb, int nb, const int8_t *wb,
                                                const int8_t *wb_tail, const int32_t *bias_b, int shift_b,
                                                const int8_t *gate, int down_p, int32_t half_p, int32_t rnd,
                                                int groups, int shift_out, const int8_t *table, int8_t *output)
{
    ec_gated_groups_dsp(xa, na, wa, wa_tail, bias_a, xb, nb, wb, wb_tail, bias_b, shift_b, gate, down_p, half_p, rnd,
                        groups, shift_out, EC_RQ_S8, table, output);
}
#endif

void ec_gated_linear_fast_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int32_t *bias_a,
                             const int8_t *b, int nb, const int8_t *wb, const int32_t *bias_b, int shift_b,
                             const int8_t *g, int down_p, int out, int shift_out, int8_t *output, int32_t act_min,
                             int32_t act_max, int round_folded, const int8_t *table)
{
    const int mode = shift_out < 0 || !(round_folded & 1)            ? EC_RQ_EXACT
                     : act_min == INT8_MIN && act_max == INT8_MAX ? EC_RQ_S8
                     : act_min == 0 && act_max == INT8_MAX        ? EC_RQ_RELU
                                                                  : EC_RQ_CLAMP;
    const int32_t rnd = mode != EC_RQ_EXACT && shift_out > 0 ? (int32_t)1 << (shift_out - 1) : 0;
    const int32_t half_b = (int32_t)(((uint32_t)1 << shift_b) >> 1); /* |Wb.b| + |bias_b| + half_b: int32 */
    const int8_t *wa_tail = wa + (long)out * (na & ~3), *wb_tail = wb + (long)out * (nb & ~3);
#if EC_FAST_DSP
    const int words_a = ((uintptr_t)a & 3u) == 0, words_b = ((uintptr_t)b & 3u) == 0;
#else
    const int words_a = 0, words_b = 0;
#endif
    int32_t acc_a[4], acc_b[4];
    int o = 0, r, rows;
#if EC_FAST_DSP
    if ((EC_FAST_MVE || (words_a && words_b)) && down_a == 0 && mode == EC_RQ_S8 && out >= 4) {
        const int groups = out >> 2;
        const int32_t half_p = (round_folded & 2) && down_p > 0 ? (int32_t)1 << (down_p - 1) : 0;
        ec_gated_groups_s8(a, na, wa, wa_tail, bias_a, b, nb, wb, wb_tail, bias_b, shift_b, g, down_p, half_p, rnd,
                           groups, shift_out, table, output);
        o = 4 * groups; /* the leftover rows below, past the groups' words and tails */
        wa += (long)o * (na & ~3);
        wb += (long)o * (nb & ~3);
        wa_tail += o * (na & 3);
        wb_tail += o * (nb & 3);
    }
#endif
    for (; o < out; o += rows) {
        rows = out - o >= 4 ? 4 : 1;
        for (r = 0; r < rows; ++r) {
            acc_b[r] = bias_b[o + r] + half_b;
            acc_a[r] = 0;
        }
        ec_dual_dot(&wb, &wb_tail, b, nb, rows, words_b, acc_b);
        ec_dual_dot(&wa, &wa_tail, a, na, rows, words_a, acc_a);
        for (r = 0; r < rows; ++r) { /* the reference's sum: each rounded term no larger than the term */
            const int32_t p = ec_asr32(acc_b[r], shift_b) * g[o + r];
            const int32_t acc = ec_round_down32(acc_a[r], down_a) + ec_round_down32(p, down_p) + bias_a[o + r] + rnd;
            output[o + r] = ec_dual_output(acc, shift_out, mode, act_min, act_max, table);
        }
    }
}

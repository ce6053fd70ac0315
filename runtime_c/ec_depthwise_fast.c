/*
 * ec_depthwise_fast.c - fast grouped and depthwise convolution (see ec_depthwise_fast.h).
 *
 * Depthwise (one input plane per output channel).  Activations are channel planes, so each
 * output channel is a 2-D convolution of one plane.  The plane is copied once into scratch
 * with its padding around it (the borders are filled with pad_value, the input's zero point,
 * once per call; only the inside is rewritten per input channel, and only when the channel
 * changes, so a channel multiplier > 1 copies each plane once).  Every window then lies inside
 * the padded plane: the loops have no bounds checks and no border cases.  Outputs are computed
 * two at a time (A, B, stride_w apart in the padded row): every weight loaded serves two
 * products, and for a 3x3 kernel the 9 weights stay in registers for the whole plane.  The
 * padded rows are wide enough for an even number of outputs, so the C loops compute a row's
 * odd last output as a pair too and store only A (the DSP assembly computes it alone).  A row
 * is copied as unaligned words where the core allows them (a short row's last word overlapping
 * the one before), else bytes.
 *
 * DSP path (EC_FAST_DSP), 3x3, stride_w 1: one (unaligned) word of the padded row, bytes
 * x0..x3, serves both outputs of that kernel row: SXTB16 gives (x0, x2), SXTB16 ROR #8 gives
 * (x1, x3); with the weight pair (w0, w2) and w1,
 *     A += (x0, x2) . (w0, w2) + x1 * w1     SMLAD, SMLABB
 *     B += (x1, x3) . (w0, w2) + x2 * w1     SMLAD, SMLATB
 * Stride_w 2 (B's window starts at x2): a second word at x1 gives (x2, x4) by SXTB16 ROR #8,
 *     A += (x0, x2) . (w0, w2) + x1 * w1     B += (x2, x4) . (w0, w2) + x3 * w1
 * The words read lie inside the two windows (x0..x3, resp. x0..x4), hence in the padded row;
 * a lone last output reads x0..x3 of its window, x3 being in the row's even-count padding.
 * Portable path: the same products in C, each input byte loaded once per kernel row.
 *
 * Grouped layers with in_c / groups > 1 (rare in the nets we target) sum over the group's
 * planes per output with bounds checks, as the reference does, without its element-width tests:
 * a padding row adds pad_value times its weights' sum, a padding tap pad_value times its weight.
 *
 * Cores with Helium (EC_FAST_MVE): a depthwise layer with one output channel per input channel
 * and no dilation goes to ec_depthwise_mve_s8 (runtime_c/ec_depthwise_mve.c, no scratch); other
 * layers take the paths above.
 *
 * Exactness: each accumulator is bias (+ the folded rounding constant, ec_fast.h) plus the
 * same products w * x as the reference, in another order (the padding reads pad_value in
 * both).  Every partial sum is bounded by acc_bound (+ 2^(s-1)) < 2^31, so the int32 result
 * is the same, and the same output rule is applied to it.
 */
#include "ec_depthwise_fast.h"

#include <string.h>

#if EC_FAST_MVE
#include "ec_depthwise_mve.h"
#endif

/* The layer, as the channel loops need it. */
struct ec_grouped_layer {
    long plane; /* in_h * in_w */
    int in_h, in_w, c_per_group;
    int k_h, k_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
    int32_t pad_value; /* the code every tap outside the input reads */
    int out_h, out_w;
    int pad_h, pad_w; /* the padded plane (depthwise only) */
    int mode;
    int32_t act_min, act_max;
};

static int ec_padded_width(int out_w, int k_w, int stride_w, int dilation_w)
{
    return (out_w + (out_w & 1) - 1) * stride_w + (k_w - 1) * dilation_w + 1;
}

int ec_conv2d_grouped_fast_scratch(int in_c, int groups, int out_h, int out_w, int k_h, int k_w, int stride_h,
                                   int stride_w, int dilation_h, int dilation_w)
{
    const long rows = (long)(out_h - 1) * stride_h + (long)(k_h - 1) * dilation_h + 1;
    if (in_c != groups) {
        return 0;
    }
    return (int)((rows * ec_padded_width(out_w, k_w, stride_w, dilation_w) + 3) & ~3L);
}

/* Copies plane x (in_h x in_w) into the padded plane at (pad_top, pad_left), keeping only the
 * rows and columns that lie inside it (the ones some window reads).  The padding around was
 * written by the caller once. */
static EC_FAST_NOINLINE void ec_pad_plane_fill(const struct ec_grouped_layer *L, const int8_t *x, int8_t *pad)
{
    const int y_end = L->pad_h - L->pad_top < L->in_h ? L->pad_h - L->pad_top : L->in_h;
    const int copy = L->pad_w - L->pad_left < L->in_w ? L->pad_w - L->pad_left : L->in_w;
    const int words = copy >> 2, tail = copy & 3;
    const long in_w = L->in_w, pad_w = L->pad_w;
    int8_t *row = pad + (long)L->pad_top * pad_w + L->pad_left;
    int y, n;
    if (copy <= 0) {
        return;
    }
#if defined(__ARM_FEATURE_UNALIGNED) || defined(__i386__) || defined(__x86_64__)
    /* unaligned words where the core allows them; a row's last word may overlap the one before */
    if (copy >= 4 && copy <= 8) { /* short rows (small feature maps): two words, no inner loop */
        const int last = copy - 4;
        for (y = y_end; y > 0; --y) {
            memcpy(row, x, 4);
            memcpy(row + last, x + last, 4);
            x += in_w;
            row += pad_w;
        }
        return;
    }
    if (copy > 8) {
        for (y = y_end; y > 0; --y) {
            int k;
            for (k = 0; k < copy - 4; k += 4) {
                memcpy(row + k, x + k, 4);
            }
            memcpy(row + copy - 4, x + copy - 4, 4);
            x += in_w;
            row += pad_w;
        }
        return;
    }
#endif
    for (y = y_end; y > 0; --y) {
        const int8_t *src = x;
        int8_t *d = row;
        for (n = words; n > 0; --n) {
            d[0] = src[0];
            d[1] = src[1];
            d[2] = src[2];
            d[3] = src[3];
            d += 4;
            src += 4;
        }
        if (tail & 2) {
            d[0] = src[0];
            d[1] = src[1];
            d += 2;
            src += 2;
        }
        if (tail & 1) {
            d[0] = src[0];
        }
        x += in_w;
        row += pad_w;
    }
}

#if EC_FAST_DSP
/* The int8 bytes p[0..3] as one word (an unaligned LDR: Armv7-M and later allow it). */
static EC_FAST_INLINE int32_t ec_load_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The int16 pair (lo, hi) of two weights. */
static EC_FAST_INLINE int32_t ec_pair16(int8_t lo, int8_t hi)
{
    return (int32_t)(((uint32_t)(uint16_t)(int16_t)lo) | ((uint32_t)(uint16_t)(int16_t)hi << 16));
}

/* One kernel row of A and B (file comment): w02 = (w0, w2), w1 in the low half.  Each
 * product |w * x| <= 2^14 and each result is a partial sum of a bounded accumulator, so
 * SMLAD's Q flag never matters. */
static EC_FAST_INLINE void ec_dw3_row_pair(const int8_t *p, int stride_w, int32_t w02, int32_t w1, int32_t *acc0,
                                           int32_t *acc1)
{
    const int32_t v = ec_load_s8x4(p);
    const int32_t even = __sxtb16(v);        /* (x0, x2) */
    const int32_t odd = ec_sxtb16_ror8(v);   /* (x1, x3) */
    *acc0 = __smlabb(odd, w1, __smlad(even, w02, *acc0));
    if (stride_w == 1) {
        *acc1 = __smlatb(even, w1, __smlad(odd, w02, *acc1));
    } else {
        const int32_t b = ec_sxtb16_ror8(ec_load_s8x4(p + 1)); /* (x2, x4) */
        *acc1 = __smlatb(odd, w1, __smlad(b, w02, *acc1));
    }
}
#else
/* One kernel row of A and B: w0, w1, w2 times the row at p and at p + stride_w.  Each product
 * |w * x| <= 2^14; the sums are partial sums of bounded accumulators. */
static EC_FAST_INLINE void ec_dw3_row_pair(const int8_t *p, int stride_w, int32_t w0, int32_t w1, int32_t w2,
                                           int32_t *acc0, int32_t *acc1)
{
    *acc0 += p[0] * w0 + p[1] * w1 + p[2] * w2;
    *acc1 += p[stride_w] * w0 + p[stride_w + 1] * w1 + p[stride_w + 2] * w2;
}
#endif

/* One depthwise 3x3 output channel (no dilation) from its padded plane, for one constant
 * stride_w (1 or 2) and output mode: the nine weights in registers, two outputs per step. */
static EC_FAST_INLINE void ec_dw3x3_channel_mode(const struct ec_grouped_layer *L, const int8_t *pad,
                                                 const int8_t *w, int32_t start, int s, int8_t *out,
                                                 const int stride_w, const int mode)
{
    const long row_step = (long)L->stride_h * L->pad_w, pw = L->pad_w;
    const int32_t lo = L->act_min, hi = L->act_max;
    int oy, n;
#if EC_FAST_DSP
    const int32_t w02a = ec_pair16(w[0], w[2]), w1a = w[1];
    const int32_t w02b = ec_pair16(w[3], w[5]), w1b = w[4];
    const int32_t w02c = ec_pair16(w[6], w[8]), w1c = w[7];
#define EC_DW3_PAIR(p)                                                                                               \
    do {                                                                                                             \
        ec_dw3_row_pair((p), stride_w, w02a, w1a, &acc0, &acc1);                                                     \
        ec_dw3_row_pair((p) + pw, stride_w, w02b, w1b, &acc0, &acc1);                                                \
        ec_dw3_row_pair((p) + 2 * pw, stride_w, w02c, w1c, &acc0, &acc1);                                            \
    } while (0)
#else
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7],
                  w8 = w[8];
#define EC_DW3_PAIR(p)                                                                                               \
    do {                                                                                                             \
        ec_dw3_row_pair((p), stride_w, w0, w1, w2, &acc0, &acc1);                                                    \
        ec_dw3_row_pair((p) + pw, stride_w, w3, w4, w5, &acc0, &acc1);                                               \
        ec_dw3_row_pair((p) + 2 * pw, stride_w, w6, w7, w8, &acc0, &acc1);                                           \
    } while (0)
#endif
    for (oy = 0; oy < L->out_h; ++oy) {
        const int8_t *p = pad + oy * row_step;
        for (n = L->out_w >> 1; n > 0; --n) {
            int32_t acc0 = start, acc1 = start;
            EC_DW3_PAIR(p);
            ec_fast_output2(acc0, s, acc1, s, mode, lo, hi, out, 1);
            out += 2;
            p += 2 * stride_w;
        }
        if (L->out_w & 1) { /* the row's odd last output: B lies in the padding, unused */
            int32_t acc0 = start, acc1 = start;
            EC_DW3_PAIR(p);
            ec_fast_output2(acc0, s, acc0, s, mode, lo, hi, out, 0);
            out += 1;
        }
    }
#undef EC_DW3_PAIR
}

#if EC_FAST_DSP
/* One kernel row of the two outputs A and B in the assembly below (file comment), stride_w 1:
 * P walks the padded row 2 bytes per pair; W02 = (w0, w2); w1 is the Y half ("b" low, "t"
 * high) of W1.  Each |w * x| <= 2^14 and each result is a partial sum of a bounded accumulator,
 * so SMLAD's Q flag never matters. */
#define EC_DW3_ROW_S1(P, W02, W1, Y)                                                                                 \
    "ldr     %[t0], [%[" #P "]], #2\n\t"                                                                            \
    "sxtb16  %[t1], %[t0]\n\t"                                                                                      \
    "sxtb16  %[t0], %[t0], ror #8\n\t"                                                                              \
    "smlad   %[a0], %[t1], %[" #W02 "], %[a0]\n\t"                                                                  \
    "smlab" #Y " %[a0], %[t0], %[" #W1 "], %[a0]\n\t"                                                               \
    "smlad   %[a1], %[t0], %[" #W02 "], %[a1]\n\t"                                                                  \
    "smlat" #Y " %[a1], %[t1], %[" #W1 "], %[a1]\n\t"
/* The same for stride_w 2: P walks 4 bytes per pair; B's window starts at x2, its pair
 * (x2, x4) comes from the word at x1. */
#define EC_DW3_ROW_S2(P, W02, W1, Y)                                                                                 \
    "ldr     %[t0], [%[" #P "]], #4\n\t"                                                                            \
    "sxtb16  %[t1], %[t0]\n\t"                                                                                      \
    "sxtb16  %[t0], %[t0], ror #8\n\t"                                                                              \
    "smlad   %[a0], %[t1], %[" #W02 "], %[a0]\n\t"                                                                  \
    "smlab" #Y " %[a0], %[t0], %[" #W1 "], %[a0]\n\t"                                                               \
    "ldr     %[t1], [%[" #P "], #-3]\n\t"                                                                           \
    "sxtb16  %[t1], %[t1], ror #8\n\t"                                                                              \
    "smlad   %[a1], %[t1], %[" #W02 "], %[a1]\n\t"                                                                  \
    "smlat" #Y " %[a1], %[t0], %[" #W1 "], %[a1]\n\t"

/* One kernel row of a single output A (a row's odd last output): the word at P holds its x0..x2
 * (and x3, which lies in the padded row and is multiplied by nothing). */
#define EC_DW3_ROW_ONE(P, W02, W1, Y)                                                                                \
    "ldr     %[t0], [%[" #P "]]\n\t"                                                                                \
    "sxtb16  %[t1], %[t0]\n\t"                                                                                      \
    "sxtb16  %[t0], %[t0], ror #8\n\t"                                                                              \
    "smlad   %[a0], %[t1], %[" #W02 "], %[a0]\n\t"                                                                  \
    "smlab" #Y " %[a0], %[t0], %[" #W1 "], %[a0]\n\t"

/*
 * All rows of one depthwise 3x3 channel in one assembly block (13 registers, so that it
 * also compiles where r7 is kept as the frame pointer: 5 of weights, 3 row pointers, the
 * output, 2 accumulators, 2 temporaries), for the output modes EC_RQ_S8 and EC_RQ_RELU (SAT,
 * SAT1 are their SSAT / USAT for two and for one value).  ctx, copied to the stack on entry:
 * start, start, (unused), the output bytes of a row's pairs (out_w & ~1), rows, the row
 * pointers' advance after a row, out_w odd (then one more output per row, alone), and a slot
 * for the current row's end in the output, which ends the pair loop.  The shift s shares a
 * register with w7.  Per pair (18 MACs): 31 instructions at stride_w 1, 37 at stride_w 2; per
 * odd output 19.
 */
#define EC_DW3_ASM(ROW, SAT, SAT1)                                                                                   \
    __asm__ volatile("sub     sp, sp, #32\n\t"                                                                      \
                     "ldrd    %[t0], %[t1], [%[a0]]\n\t"                                                            \
                     "strd    %[t0], %[t1], [sp]\n\t"                                                               \
                     "ldrd    %[t0], %[t1], [%[a0], #8]\n\t"                                                        \
                     "strd    %[t0], %[t1], [sp, #8]\n\t"                                                           \
                     "ldrd    %[t0], %[t1], [%[a0], #16]\n\t"                                                       \
                     "strd    %[t0], %[t1], [sp, #16]\n\t"                                                          \
                     "ldrd    %[t0], %[t1], [%[a0], #24]\n\t"                                                       \
                     "strd    %[t0], %[t1], [sp, #24]\n\t"                                                          \
                     "1:\n\t" /* next row */                                                                         \
                     "ldr     %[t0], [sp, #12]\n\t"                                                                 \
                     "cmp     %[t0], #0\n\t"                                                                        \
                     "beq     3f\n\t"                                                                               \
                     "add     %[t0], %[out], %[t0]\n\t"                                                             \
                     "str     %[t0], [sp, #28]\n\t" /* the row's end in the output */                               \
                     "2:\n\t" /* next pair */                                                                        \
                     "ldrd    %[a0], %[a1], [sp]\n\t" ROW(p0, w02a, w1ab, b) ROW(p1, w02b, w1ab, t)                 \
                         ROW(p2, w02c, w1cs, t)                                                                       \
                     "asr     %[a0], %[a0], %[w1cs]\n\t"                                                            \
                     "asr     %[a1], %[a1], %[w1cs]\n\t" SAT                                                        \
                     "strb    %[a1], [%[out], #1]\n\t"                                                              \
                     "strb    %[a0], [%[out]], #2\n\t"                                                              \
                     "ldr     %[t0], [sp, #28]\n\t"                                                                 \
                     "cmp     %[out], %[t0]\n\t"                                                                    \
                     "bne     2b\n\t"                                                                               \
                     "3:\n\t" /* the odd last output */                                                              \
                     "ldr     %[t0], [sp, #24]\n\t"                                                                 \
                     "cmp     %[t0], #0\n\t"                                                                        \
                     "beq     4f\n\t"                                                                               \
                     "ldr     %[a0], [sp]\n\t" EC_DW3_ROW_ONE(p0, w02a, w1ab, b)                                    \
                         EC_DW3_ROW_ONE(p1, w02b, w1ab, t) EC_DW3_ROW_ONE(p2, w02c, w1cs, t)                          \
                     "asr     %[a0], %[a0], %[w1cs]\n\t" SAT1                                                       \
                     "strb    %[a0], [%[out]], #1\n\t"                                                              \
                     "4:\n\t" /* next row */                                                                         \
                     "ldr     %[t0], [sp, #20]\n\t"                                                                 \
                     "add     %[p0], %[p0], %[t0]\n\t"                                                              \
                     "add     %[p1], %[p1], %[t0]\n\t"                                                              \
                     "add     %[p2], %[p2], %[t0]\n\t"                                                              \
                     "ldr     %[t0], [sp, #16]\n\t"                                                                 \
                     "subs    %[t0], %[t0], #1\n\t"                                                                 \
                     "str     %[t0], [sp, #16]\n\t"                                                                 \
                     "bne     1b\n\t"                                                                               \
                     "add     sp, sp, #32\n\t"                                                                      \
                     : [a0] "+r"(a0), [a1] "=&r"(a1), [t0] "=&r"(t0), [t1] "=&r"(t1), [p0] "+r"(p0), [p1] "+r"(p1), \
                       [p2] "+r"(p2), [out] "+r"(out)                                                                 \
                     : [w02a] "r"(w02a), [w02b] "r"(w02b), [w02c] "r"(w02c), [w1ab] "r"(w1ab), [w1cs] "r"(w1cs)        \
                     : "cc", "memory")
#define EC_SAT_S8 "ssat    %[a0], #8, %[a0]\n\tssat    %[a1], #8, %[a1]\n\t"
#define EC_SAT_RELU "usat    %[a0], #7, %[a0]\n\tusat    %[a1], #7, %[a1]\n\t"
#define EC_SAT1_S8 "ssat    %[a0], #8, %[a0]\n\t"
#define EC_SAT1_RELU "usat    %[a0], #7, %[a0]\n\t"

/* One depthwise 3x3 channel in mode EC_RQ_S8 or EC_RQ_RELU (out_h >= 1). */
static EC_FAST_NOINLINE void ec_dw3x3_rows_asm(const struct ec_grouped_layer *L, const int8_t *pad,
                                               const int8_t *w, int32_t start, int s, int8_t *out)
{
    const int pairs = L->out_w >> 1;
    const int32_t ctx[8] = {start, start, 0, 2 * pairs, L->out_h, L->stride_h * L->pad_w - 2 * L->stride_w * pairs,
                            L->out_w & 1, 0};
    const int32_t w02a = ec_pair16(w[0], w[2]), w02b = ec_pair16(w[3], w[5]), w02c = ec_pair16(w[6], w[8]);
    /* w7 in the top half beside the shift: ASR by a register uses its bottom byte only (s <= 31) */
    const int32_t w1ab = ec_pair16(w[1], w[4]), w1cs = ec_pair16((int8_t)s, w[7]);
    const int8_t *p0 = pad, *p1 = pad + L->pad_w, *p2 = pad + 2 * L->pad_w;
    int32_t a0 = (int32_t)(uintptr_t)ctx, a1, t0, t1;
    if (L->stride_w == 1) {
        if (L->mode == EC_RQ_RELU) {
            EC_DW3_ASM(EC_DW3_ROW_S1, EC_SAT_RELU, EC_SAT1_RELU);
        } else {
            EC_DW3_ASM(EC_DW3_ROW_S1, EC_SAT_S8, EC_SAT1_S8);
        }
    } else {
        if (L->mode == EC_RQ_RELU) {
            EC_DW3_ASM(EC_DW3_ROW_S2, EC_SAT_RELU, EC_SAT1_RELU);
        } else {
            EC_DW3_ASM(EC_DW3_ROW_S2, EC_SAT_S8, EC_SAT1_S8);
        }
    }
    (void)a0;
}
#endif

/* One depthwise 3x3 channel (no dilation, stride_w 1 or 2) from its padded plane. */
static EC_FAST_NOINLINE void ec_dw3x3_channel(const struct ec_grouped_layer *L, const int8_t *pad, const int8_t *w,
                                              int32_t start, int s, int8_t *out)
{
#if EC_FAST_DSP
    if (L->mode == EC_RQ_S8 || L->mode == EC_RQ_RELU) {
        ec_dw3x3_rows_asm(L, pad, w, start, s, out);
        return;
    }
    /* the rare modes: one copy of the C loop, stride and mode tested in it */
    ec_dw3x3_channel_mode(L, pad, w, start, s, out, L->stride_w, L->mode);
#else /* each stride and common mode its own loop */
    if (L->stride_w == 1) {
        if (L->mode == EC_RQ_RELU) {
            ec_dw3x3_channel_mode(L, pad, w, start, s, out, 1, EC_RQ_RELU);
        } else if (L->mode == EC_RQ_S8) {
            ec_dw3x3_channel_mode(L, pad, w, start, s, out, 1, EC_RQ_S8);
        } else {
            ec_dw3x3_channel_mode(L, pad, w, start, s, out, 1, L->mode);
        }
    } else {
        if (L->mode == EC_RQ_RELU) {
            ec_dw3x3_channel_mode(L, pad, w, start, s, out, 2, EC_RQ_RELU);
        } else if (L->mode == EC_RQ_S8) {
            ec_dw3x3_channel_mode(L, pad, w, start, s, out, 2, EC_RQ_S8);
        } else {
            ec_dw3x3_channel_mode(L, pad, w, start, s, out, 2, L->mode);
        }
    }
#endif
}

/* One depthwise output channel of any kernel, stride and dilation from its padded plane: two
 * outputs per step, each weight loaded once for both. */
static EC_FAST_NOINLINE void ec_dw_channel(const struct ec_grouped_layer *L, const int8_t *pad, const int8_t *w, int32_t start, int s,
                          int8_t *out)
{
    const long pw = L->pad_w, row_step = (long)L->stride_h * pw, tap_row = (long)L->dilation_h * pw;
    const int sw = L->stride_w, dw = L->dilation_w;
    int oy, ox, ky, kx;
    for (oy = 0; oy < L->out_h; ++oy) {
        const int8_t *row = pad + oy * row_step;
        for (ox = 0; ox < L->out_w; ox += 2) {
            int32_t acc0 = start, acc1 = start;
            const int8_t *p = row + (long)ox * sw;
            const int8_t *wk = w;
            for (ky = 0; ky < L->k_h; ++ky) {
                const int8_t *q = p;
                for (kx = 0; kx < L->k_w; ++kx) {
                    const int32_t wv = wk[kx];
                    acc0 += q[0] * wv; /* |w * x| <= 2^14; partial sums of bounded accumulators */
                    acc1 += q[sw] * wv;
                    q += dw;
                }
                p += tap_row;
                wk += L->k_w;
            }
            if (ox + 1 < L->out_w) {
                ec_fast_output2(acc0, s, acc1, s, L->mode, L->act_min, L->act_max, out, 1);
                out += 2;
            } else { /* odd last output: B lies in the padding, unused */
                *out++ = ec_fast_output_any(acc0, s, L->mode, L->act_min, L->act_max);
            }
        }
    }
}

#if EC_FAST_DSP
#define EC_DW_MAX_QUADS 32 /* groups of 4 taps a kernel may have for the DSP loop (7x7: 7, 11x11: 22) */

/* One depthwise output channel of a kernel with k_w >= 4, no horizontal dilation and stride_w
 * 1 or 2 (a constant here), on DSP cores: each kernel row's taps in groups of 4 as the pairs
 * W02 = (w0, w2), W13 = (w1, w3), so that one word of the row, x0..x3, gives A's products by
 * two SMLADs, (x0, x2) . W02 + (x1, x3) . W13; B's window starts stride_w bytes later:
 *   stride_w 1: (x1, x3) . W02 + (x2, x4) . W13, (x2, x4) from the word at x1 (SXTB16 ROR #8);
 *   stride_w 2: the word at x2 gives (x2, x4) and (x3, x5).
 * Words read lie inside A's or B's window.  The k_w % 4 last taps of a row go one by one.
 * Each |w * x| <= 2^14; every result is a partial sum of a bounded accumulator. */
static EC_FAST_INLINE void ec_dw_channel_quads(const struct ec_grouped_layer *L, const int8_t *pad,
                                               const int8_t *w, int32_t start, int s, int8_t *out,
                                               const int stride_w)
{
    int32_t wq[2 * EC_DW_MAX_QUADS];
    const int k_w = L->k_w, quads = k_w >> 2, k4 = k_w & ~3;
    const long pw = L->pad_w, row_step = (long)L->stride_h * pw, tap_row = (long)L->dilation_h * pw;
    int oy, ox, ky, j, i = 0;
    for (ky = 0; ky < L->k_h; ++ky) {
        for (j = 0; j < k4; j += 4, i += 2) {
            const int8_t *t = w + ky * k_w + j;
            wq[i] = ec_pair16(t[0], t[2]);
            wq[i + 1] = ec_pair16(t[1], t[3]);
        }
    }
    for (oy = 0; oy < L->out_h; ++oy) {
        const int8_t *row = pad + oy * row_step;
        for (ox = 0; ox < L->out_w; ox += 2) {
            int32_t acc0 = start, acc1 = start;
            const int8_t *p = row + (long)ox * stride_w;
            const int32_t *q = wq;
            const int8_t *wk = w;
            for (ky = L->k_h; ky > 0; --ky) {
                const int8_t *x = p;
                for (j = quads; j > 0; --j) {
                    const int32_t v = ec_load_s8x4(x);
                    const int32_t even = __sxtb16(v), odd = ec_sxtb16_ror8(v);
                    acc0 = __smlad(odd, q[1], __smlad(even, q[0], acc0));
                    if (stride_w == 1) {
                        acc1 = __smlad(ec_sxtb16_ror8(ec_load_s8x4(x + 1)), q[1], __smlad(odd, q[0], acc1));
                    } else {
                        const int32_t v2 = ec_load_s8x4(x + 2);
                        acc1 = __smlad(ec_sxtb16_ror8(v2), q[1], __smlad(__sxtb16(v2), q[0], acc1));
                    }
                    x += 4;
                    q += 2;
                }
                for (j = k4; j < k_w; ++j) {
                    const int32_t wv = wk[j];
                    acc0 += p[j] * wv;
                    acc1 += p[j + stride_w] * wv;
                }
                p += tap_row;
                wk += k_w;
            }
            if (ox + 1 < L->out_w) {
                ec_fast_output2(acc0, s, acc1, s, L->mode, L->act_min, L->act_max, out, 1);
                out += 2;
            } else { /* odd last output: B lies in the padding, unused */
                *out++ = ec_fast_output_any(acc0, s, L->mode, L->act_min, L->act_max);
            }
        }
    }
}

static EC_FAST_NOINLINE void ec_dw_channel_quads_s1(const struct ec_grouped_layer *L, const int8_t *pad,
                                                    const int8_t *w, int32_t start, int s, int8_t *out)
{
    ec_dw_channel_quads(L, pad, w, start, s, out, 1);
}

static EC_FAST_NOINLINE void ec_dw_channel_quads_s2(const struct ec_grouped_layer *L, const int8_t *pad,
                                                    const int8_t *w, int32_t start, int s, int8_t *out)
{
    ec_dw_channel_quads(L, pad, w, start, s, out, 2);
}
#endif

/* One output channel of a grouped layer with in_c / groups > 1: x is its group's first plane.
 * Bounds checked per tap, as the reference. */
static EC_FAST_NOINLINE void ec_grouped_channel(const struct ec_grouped_layer *L, const int8_t *x, const int8_t *w, int32_t start,
                               int s, int8_t *out)
{
    int oy, ox, ic, ky, kx;
    for (oy = 0; oy < L->out_h; ++oy) {
        for (ox = 0; ox < L->out_w; ++ox) {
            const int iy0 = oy * L->stride_h - L->pad_top, ix0 = ox * L->stride_w - L->pad_left;
            int32_t acc = start;
            for (ic = 0; ic < L->c_per_group; ++ic) {
                const int8_t *xp = x + ic * L->plane;
                const int8_t *wp = w + (long)ic * L->k_h * L->k_w;
                for (ky = 0; ky < L->k_h; ++ky) {
                    const int iy = iy0 + ky * L->dilation_h;
                    if (iy < 0 || iy >= L->in_h) { /* a padding row: every tap reads pad_value */
                        for (kx = 0; L->pad_value != 0 && kx < L->k_w; ++kx) {
                            acc += L->pad_value * (int32_t)wp[ky * L->k_w + kx]; /* bounded */
                        }
                        continue;
                    }
                    for (kx = 0; kx < L->k_w; ++kx) {
                        const int ix = ix0 + kx * L->dilation_w;
                        const int32_t x = ix >= 0 && ix < L->in_w ? xp[(long)iy * L->in_w + ix] : L->pad_value;
                        acc += x * (int32_t)wp[ky * L->k_w + kx]; /* bounded */
                    }
                }
            }
            *out++ = ec_fast_output_any(acc, s, L->mode, L->act_min, L->act_max);
        }
    }
}

void ec_conv2d_grouped_fast_s8(const int8_t *input, int in_c, int in_h, int in_w,
                               const int8_t *weight, const int32_t *bias, const int8_t *shift,
                               int shift_per_channel, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                               int pad_top, int pad_left, int32_t pad_value, int dilation_h, int dilation_w,
                               int groups, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max,
                               int round_folded, void *scratch)
{
    struct ec_grouped_layer L;
    const int oc_per_group = out_c / groups;
    const int taps = k_h * k_w * (in_c / groups);
    const int depthwise = in_c == groups;
    const int dw3x3 = depthwise && k_h == 3 && k_w == 3 && dilation_h == 1 && dilation_w == 1 &&
                      (stride_w == 1 || stride_w == 2);
#if EC_FAST_DSP
    const int quads = depthwise && k_w >= 4 && dilation_w == 1 && (stride_w == 1 || stride_w == 2) &&
                      k_h * (k_w >> 2) <= EC_DW_MAX_QUADS;
#endif
    int8_t *pad = (int8_t *)scratch;
    int oc, copied = -1;
#if EC_FAST_MVE
    if (depthwise && out_c == in_c && dilation_h == 1 && dilation_w == 1) {
        (void)round_folded; /* the Helium kernel requantizes with VQRSHL, no folding needed */
        ec_depthwise_mve_s8(input, in_c, in_h, in_w, weight, bias, shift, shift_per_channel, k_h, k_w, stride_h,
                            stride_w, pad_top, pad_left, pad_value, output, out_h, out_w, act_min, act_max);
        return;
    }
#endif
    L.plane = (long)in_h * in_w;
    L.in_h = in_h;
    L.in_w = in_w;
    L.c_per_group = in_c / groups;
    L.k_h = k_h;
    L.k_w = k_w;
    L.stride_h = stride_h;
    L.stride_w = stride_w;
    L.pad_top = pad_top;
    L.pad_left = pad_left;
    L.pad_value = pad_value;
    L.dilation_h = dilation_h;
    L.dilation_w = dilation_w;
    L.out_h = out_h;
    L.out_w = out_w;
    L.pad_h = (out_h - 1) * stride_h + (k_h - 1) * dilation_h + 1;
    L.pad_w = ec_padded_width(out_w, k_w, stride_w, dilation_w);
    L.mode = ec_fast_mode(shift, shift_per_channel, out_c, round_folded, act_min, act_max);
    L.act_min = act_min;
    L.act_max = act_max;
    if (depthwise) {
        /* the padding (pad_value: the code of real zero), once per call */
        memset(pad, (int)(uint8_t)(int8_t)pad_value, (size_t)L.pad_h * (size_t)L.pad_w);
    }
    for (oc = 0; oc < out_c; ++oc) {
        const int s = shift[shift_per_channel ? oc : 0];
        const int32_t start = ec_fast_start(bias, oc, s, L.mode);
        const int group = oc / oc_per_group;
        const int8_t *w = weight + (long)oc * taps;
        int8_t *out = output + (long)oc * out_h * out_w;
        if (!depthwise) {
            ec_grouped_channel(&L, input + group * L.c_per_group * L.plane, w, start, s, out);
            continue;
        }
        if (group != copied) { /* a channel multiplier > 1 reuses the plane */
            ec_pad_plane_fill(&L, input + group * L.plane, pad);
            copied = group;
        }
        if (dw3x3) {
            ec_dw3x3_channel(&L, pad, w, start, s, out);
#if EC_FAST_DSP
        } else if (quads && stride_w == 1) {
            ec_dw_channel_quads_s1(&L, pad, w, start, s, out);
        } else if (quads) {
            ec_dw_channel_quads_s2(&L, pad, w, start, s, out);
#endif
        } else {
            ec_dw_channel(&L, pad, w, start, s, out);
        }
    }
}

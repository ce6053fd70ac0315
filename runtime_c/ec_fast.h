/*
 * ec_fast.h - what the fast kernels (ec_conv2d_fast, ec_linear_fast) share:
 * the packed weight layout, aligned arrays, the choice of code path, and
 * requantization with the rounding folded into the accumulator.
 *
 * The fast kernels compute exactly what the reference kernels compute (same
 * int32 sums, same rounding and saturation from ec_fixed.h); only the order of
 * the additions and the storage order of the weights differ.  Reordering is
 * exact: the compiler proves sum(|w| * 128) + |bias| <= 2^31 - 1 for every
 * output channel (manifest field acc_bound), and that bound holds for every
 * partial sum too, whatever the order, so no ordering can overflow int32.
 *
 * Packed weights ("rows" are output channels; K values per row, K4 = K - K % 4):
 *   1. The first K4 values of each row as 32-bit words of four values.  Conv2d
 *      stores them in the order (k0, k2, k1, k3): on a little-endian core SXTB16
 *      of such a word gives the int16 pair (k0, k1) and SXTB16 of the word rotated
 *      by 8 bits gives (k2, k3), the pairs SMLAD multiplies with the int16 column
 *      pairs (x0, x1) and (x2, x3).  Linear keeps the natural order (k0, k1, k2,
 *      k3), whose SXTB16 pairs (k0, k2), (k1, k3) match those of the int8 input
 *      words it reads directly.  Rows come in groups of G (2 for conv2d, 4 for
 *      linear) whose words are interleaved: word j of row 0, word j of row 1, ...,
 *      then word j + 1; the rows left over (rows % G) follow one after the other.
 *   2. The K % 4 tail values.  Linear: row by row, natural order.  Conv2d, by
 *      pairs of rows (a, b): for each pair the word (a_k0, b_k0, a_k1, b_k1)
 *      when K % 4 >= 2, then for each pair the halfword (a_kl, b_kl) of the
 *      last tail value kl when K % 4 is odd, then the odd last row's values.
 *      SXTB16 of such a word gives row a's pair (a_k0, a_k1), SXTB16 ROR #8 row
 *      b's; of a halfword, (a_kl, 0) and (b_kl, 0).
 *   The array has exactly rows * K bytes, and every word (halfword) starts on a
 *   4-byte (2-byte) boundary when the array does: the generated code declares it
 *   EC_ALIGNED(4).  edgecompile/ops/fast_kernels.py (pack_rows) writes it.
 *
 * Code paths:
 *   EC_FAST_DSP    Arm cores with the DSP extension (Cortex-M4, M7, M33, M55),
 *                  little-endian, GCC or Clang, optimizing: SMLAD/SXTB16 inner
 *                  loops in inline assembly (13 registers: -O0 keeps r7 as the
 *                  frame pointer and could not allocate them).
 *   EC_FAST_MVE    cores with Helium (Cortex-M55): the DSP path, with the dot products
 *                  of convolution and linear layers in MVE vectors (ec_conv2d_mve.c,
 *                  ec_linear_mve.c), 16 products per VMLADAVA.
 *   otherwise      portable C99 that reads the packed weights one byte at a
 *                  time (Cortex-M0+, M3, the host): no word access at all, so
 *                  alignment never matters there.
 * Define EC_FAST_NO_DSP to force the portable path (the tests do, to check it
 * on DSP cores too).
 */
#ifndef EC_FAST_H
#define EC_FAST_H

#include <stdint.h>

#include "ec_fixed.h"

/* Alignment of the generated weight arrays.  Only the DSP path reads words, and
 * it needs GCC or Clang anyway, so other compilers may ignore it. */
#if defined(__GNUC__)
#define EC_ALIGNED(n) __attribute__((aligned(n)))
#define EC_FAST_INLINE inline __attribute__((always_inline))
#define EC_FAST_NOINLINE __attribute__((noinline))
#else
#define EC_ALIGNED(n)
#define EC_FAST_INLINE inline
#define EC_FAST_NOINLINE
#endif

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__) && !defined(__ARM_BIG_ENDIAN) && \
    !defined(EC_FAST_NO_DSP)
#define EC_FAST_DSP 1
#else
#define EC_FAST_DSP 0
#endif
/* Helium (MVE, Cortex-M55): the integer vector extension, on top of the DSP path (a
 * core with MVE has the DSP extension).  The MVE kernels (ec_*_mve.c) read the same
 * packed weights as the DSP ones.  Define EC_FAST_NO_MVE to force the DSP path on such a
 * core (the tests do, to check that path on the M55 too). */
#if EC_FAST_DSP && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(EC_FAST_NO_MVE)
#define EC_FAST_MVE 1
#include <arm_mve.h>
#else
#define EC_FAST_MVE 0
#endif
#if defined(__ARM_FEATURE_SAT) && defined(__GNUC__)
#include <arm_acle.h>
#define EC_FAST_SAT 1 /* SSAT / USAT: Armv7-M and later */
#else
#define EC_FAST_SAT 0
#endif

#if EC_FAST_DSP
/* SXTB16 of x rotated right by 8 bits: bytes 1 and 3 of x as two int16 (GCC 12 has no __ror
 * to fold into __sxtb16, and a separate rotate would cost an instruction). */
static EC_FAST_INLINE int32_t ec_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#endif

/* Output modes, fixed per layer (ec_fast_mode):
 *   EC_RQ_EXACT   ec_requantize on the plain accumulator: any shift, any clamp.
 *   EC_RQ_S8      rounding folded (below), clamp [-128, 127]
 *   EC_RQ_RELU    rounding folded, clamp [0, 127]
 *   EC_RQ_CLAMP   rounding folded, clamp [act_min, act_max]
 * Folded rounding: for s > 0, floor(acc / 2^s + 1/2) == floor((acc + 2^(s-1)) / 2^s)
 * is one arithmetic shift when the accumulator starts at bias + 2^(s-1) instead of
 * bias.  Legal only when no accumulator can pass INT32_MAX by the extra 2^(s-1):
 * the code generator checks acc_bound + 2^(s-1) <= 2^31 - 1 and says so with
 * round_folded = 1.  A shift s = 0 folds trivially (nothing added); a negative
 * shift never folds, so any negative shift selects EC_RQ_EXACT. */
enum { EC_RQ_EXACT = 0, EC_RQ_S8 = 1, EC_RQ_RELU = 2, EC_RQ_CLAMP = 3 };

/* The output mode of a layer (all its shifts, rows 0 .. rows-1). */
int ec_fast_mode(const int8_t *shift, int shift_per_channel, int rows, int round_folded, int32_t act_min,
                 int32_t act_max);

/* The accumulator start value of a row with shift s in a layer of this mode: its bias,
 * plus the rounding constant 2^(s-1) when folding.  No overflow: |bias| <= acc_bound and
 * acc_bound + 2^(s-1) <= INT32_MAX (checked by the code generator before it sets
 * round_folded, without which the mode is EC_RQ_EXACT). */
static EC_FAST_INLINE int32_t ec_fast_start(const int32_t *bias, int row, int s, int mode)
{
    const int32_t b = bias != 0 ? bias[row] : 0;
    return mode != EC_RQ_EXACT && s > 0 ? b + ((int32_t)1 << (s - 1)) : b;
}

/* Requantizes rows 0 .. rows-1 with per_row (1 or 2) accumulators each, using row r's
 * shift (shift[r], or shift[0] for all): acc[per_row * r] to out[r * row_stride] and,
 * when per_row is 2, acc[2r + 1] to out[r * row_stride + second]. */
void ec_fast_store(const int32_t *acc, int rows, int per_row, long row_stride, int second, const int8_t *shift,
                   int shift_per_channel, int mode, int32_t act_min, int32_t act_max, int8_t *out);

/* One output of mode EC_RQ_CLAMP or EC_RQ_EXACT (out of line: the rare modes). */
int8_t ec_fast_output_any(int32_t acc, int s, int mode, int32_t act_min, int32_t act_max);

/* One requantized value in any mode, clamped to [act_min, act_max] (an int16 output's too). */
int32_t ec_fast_value(int32_t acc, int s, int mode, int32_t act_min, int32_t act_max);

/* Two outputs: out[0] from a (shift sa), out[second] from b (shift sb).  The common modes
 * are a shift and one SSAT / USAT each. */
static EC_FAST_INLINE void ec_fast_output2(int32_t a, int sa, int32_t b, int sb, int mode, int32_t act_min,
                                           int32_t act_max, int8_t *out, int second)
{
    if (mode == EC_RQ_S8) {
#if EC_FAST_SAT
        out[0] = (int8_t)__ssat(ec_asr32(a, sa), 8);
        out[second] = (int8_t)__ssat(ec_asr32(b, sb), 8);
#else
        out[0] = (int8_t)ec_clamp32(ec_asr32(a, sa), INT8_MIN, INT8_MAX);
        out[second] = (int8_t)ec_clamp32(ec_asr32(b, sb), INT8_MIN, INT8_MAX);
#endif
    } else if (mode == EC_RQ_RELU) {
#if EC_FAST_SAT
        out[0] = (int8_t)__usat(ec_asr32(a, sa), 7);
        out[second] = (int8_t)__usat(ec_asr32(b, sb), 7);
#else
        out[0] = (int8_t)ec_clamp32(ec_asr32(a, sa), 0, INT8_MAX);
        out[second] = (int8_t)ec_clamp32(ec_asr32(b, sb), 0, INT8_MAX);
#endif
    } else {
        out[0] = ec_fast_output_any(a, sa, mode, act_min, act_max);
        out[second] = ec_fast_output_any(b, sb, mode, act_min, act_max);
    }
}

#endif /* EC_FAST_H */

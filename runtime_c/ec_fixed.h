/*
 * ec_fixed.h - edgecompile's fixed-point arithmetic, the C half of the numerics contract.
 *
 * Notation: a tensor with frac bits f stores integers q; its real value is
 *     value = q * 2^-f
 * A layer's accumulator holds bias + sum(w * x) with frac bits f_in + f_w, and
 * is moved to the output's frac bits f_out by a shift of s = f_in + f_w - f_out.
 * Every shift amount in the generated code comes from that one formula, chosen
 * at compile time by edgecompile/passes/quantize.py and checked in range there.
 *
 * The rules (identical to edgecompile/numerics.py, which is the golden model):
 *   1. Accumulators are int32.  The compiler proves |acc| <= 2^31 - 1 for each
 *      layer from its quantized weights (sum |w| * max|x| + |b|) before emitting it.
 *   2. Rounding shift by s, round half up (ties towards +infinity):
 *        s > 0:  (acc >> s) + ((acc >> (s - 1)) & 1)   == floor(acc / 2^s + 1/2)
 *        s = 0:  acc
 *        s < 0:  acc * 2^-s
 *   3. Saturation to [lo, hi] (the output type's range; a fused ReLU sets lo = 0).
 *   4. Float inputs: q = sat(floor(x * 2^f + 1/2)) (ec_quantize_float below).
 *   5. Division by n > 0 that is not a power of two: floor((2*sum + n) / (2*n)).
 *
 * Portability: C99 leaves >> of a negative signed value implementation-defined.
 * ec_asr32 only ever shifts non-negative values: for x < 0 it uses
 * floor(x / 2^s) = -1 - floor((-1 - x) / 2^s), where -1 - x >= 0 cannot overflow.
 * gcc and clang turn the whole expression into one arithmetic shift instruction.
 */
#ifndef EC_FIXED_H
#define EC_FIXED_H

#include <stdint.h>

#define EC_ACC_MAX INT32_MAX
#define EC_ACC_MIN INT32_MIN

/* Arithmetic (floor) right shift of an int32 by 0 <= s <= 31, portable C99. */
static inline int32_t ec_asr32(int32_t x, int s)
{
    return x >= 0 ? (x >> s) : (int32_t)(-1 - ((-1 - x) >> s));
}

/* Rule 3. */
static inline int32_t ec_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Rules 2 and 3 together: acc * 2^-s, rounded half up, saturated to [lo, hi].
 * Ranges: -(31 - b) <= s <= 31 for a b-bit output (so s >= -23 for int8, -15 for int16)
 * and |lo|, |hi| < 2^(31 + s) when s < 0 (the quantizer, ops/weighted.py, guarantees
 * both), so no intermediate overflows:
 *   s > 0: acc >> s and the rounding bit add up to at most 2^(31-s) + 1.
 *   s < 0: sat(acc * 2^k) == sat(sat'(acc) * 2^k) for k >= 0 with sat' to [min(lo, 0), max(hi, 0)]:
 *          that range holds 0, which a left shift keeps in place (a fused activation with a zero
 *          point can give [lo, hi] = [-128, -32], and clamping to that first would be wrong),
 *          and |sat'(acc)| * 2^k < 2^31. */
static inline int32_t ec_requantize(int32_t acc, int s, int32_t lo, int32_t hi)
{
    int32_t v;
    if (s > 0) {
        v = ec_asr32(acc, s) + (ec_asr32(acc, s - 1) & 1);
    } else if (s == 0) {
        v = acc;
    } else {
        v = ec_clamp32(acc, lo < 0 ? lo : 0, hi > 0 ? hi : 0) * ((int32_t)1 << (-s));
    }
    return ec_clamp32(v, lo, hi);
}

/* Format alignment (residual adds, concatenation): x with frac bits f moved to frac bits
 * f + k.  k >= 0 is exact, x * 2^k (the compiler keeps |x| * 2^k < 2^30); k < 0 is a
 * rule-2 rounding right shift by -k (-k <= 31). */
static inline int32_t ec_align32(int32_t x, int k)
{
    if (k >= 0) {
        return x * ((int32_t)1 << k);
    }
    return ec_asr32(x, -k) + (ec_asr32(x, -k - 1) & 1);
}

/* Rule 5 for n > 0 (any n; a power of two gives the same result as rule 2).
 * C division truncates towards zero, so a negative numerator is floored by hand.
 * |2*sum + n| stays far below 2^31 for the pooling windows the compiler emits. */
static inline int32_t ec_div_round(int32_t sum, int32_t n)
{
    int32_t num = 2 * sum + n;
    int32_t den = 2 * n;
    int32_t q = num / den;
    if ((num % den != 0) && (num < 0)) {
        q -= 1;
    }
    return q;
}

/* Rule 4: quantize one float to frac bits f (given as scale = 2^f, exact in float),
 * round half up, saturate to [lo, hi].  Only used by the input helper, never by
 * the integer inference path.  Casting to int32 truncates towards zero, so the
 * floor of a negative value is corrected by hand; the fraction v - floor(v) is
 * exact in float for |v| < 2^22, and larger values saturate anyway. */
static inline int32_t ec_quantize_float(float x, float scale, int32_t lo, int32_t hi)
{
    float v = x * scale;
    int32_t fl;
    if (!(v == v)) {
        return 0; /* NaN: no meaningful value; the Python side refuses NaN inputs */
    }
    if (v >= 4194304.0f) {
        return hi;
    }
    if (v <= -4194304.0f) {
        return lo;
    }
    fl = (int32_t)v;
    if ((float)fl > v) {
        fl -= 1;
    }
    if (v - (float)fl >= 0.5f) {
        fl += 1;
    }
    return ec_clamp32(fl, lo, hi);
}

#endif /* EC_FIXED_H */

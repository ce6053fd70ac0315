/*
 * ec_elementwise_mve.c - elementwise kernels with Helium (MVE) (see ec_elementwise_mve.h).
 *
 * The weighted add, four int8 elements per vector widened to int32 lanes (VLDRB.S32), the last
 * size % 4 predicated.  Exactness, lane by lane against ec_add_s8:
 *   - (x - zero) * mult as x * mult + offset, offset = -zero * mult (VMLAS: lanes times the
 *     multiplier vector plus a scalar, one instruction like the VMUL of the signed path):
 *     |x * mult + offset| <= 255 * 2^15 < 2^23, exact in int32, the same integer as the C's.
 *   - ec_align32(v, k) is VRSHL by k (the shift in a general register): for k >= 0 a left shift,
 *     exact because the compiler keeps |v| * 2^k < 2^30; for k < 0 a rounding right shift by -k,
 *     (v + 2^(-k-1)) >> -k computed without overflow, which is rule 2's floor(v / 2^-k + 1/2),
 *     ties and negatives included.
 *   - the sum of the two aligned terms is below 2^31 in magnitude (each < 2^30).
 *   - ec_requantize(acc, s, lo', hi') is VQRSHL by -s then the clamp: for s > 0 the same rounding
 *     right shift; s = 0 leaves acc; for s < 0 a left shift saturated to int32, and clamping
 *     that to [lo', hi'] (within int32) equals rule 2's clamp-then-shift followed by rule 3.
 *     lo' = lo - zero_y, hi' = hi - zero_y, and zero_y is added after the clamp (VADD of a
 *     scalar), as in ec_add_s8; the result lies in [lo, hi], so the byte store keeps it whole.
 */
#include "ec_elementwise_mve.h"

#include "ec_elementwise.h"
#include "ec_fast.h"

void ec_add_mve_s8(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t mult_a, int shift_a,
                   int32_t zero_a, int32_t mult_b, int shift_b, int32_t zero_b, int shift_out, int32_t zero_y,
                   int32_t lo, int32_t hi)
{
#if EC_FAST_MVE
    const int32x4_t m_a = vdupq_n_s32(mult_a), m_b = vdupq_n_s32(mult_b);
    const int32x4_t v_lo = vdupq_n_s32(lo - zero_y), v_hi = vdupq_n_s32(hi - zero_y);
    const int32_t offset_a = -zero_a * mult_a, offset_b = -zero_b * mult_b;
    int n;
    for (n = size; n > 0; n -= 4, a += 4, b += 4, output += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)n);
        const int32x4_t x = vrshlq_n_s32(vmlasq_n_s32(vldrbq_z_s32(a, p), m_a, offset_a), shift_a);
        const int32x4_t y = vrshlq_n_s32(vmlasq_n_s32(vldrbq_z_s32(b, p), m_b, offset_b), shift_b);
        const int32x4_t r = vminq_s32(vmaxq_s32(vqrshlq_n_s32(vaddq_s32(x, y), -shift_out), v_lo), v_hi);
        vstrbq_p_s32(output, vaddq_n_s32(r, zero_y), p);
    }
#else
    ec_add_s8(a, b, output, size, mult_a, shift_a, zero_a, mult_b, shift_b, zero_b, shift_out, zero_y, lo, hi);
#endif
}

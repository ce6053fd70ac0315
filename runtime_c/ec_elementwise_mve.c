/*
 * ec_elementwise_mve.c - elementwise kernels with Helium (MVE) (see ec_elementwise_mve.h).
 *
 * The weighted add, four int8 elements per vector widened to int32 lanes (VLDRB.S32), the last
 * size % 4 predicated.  Exactness, lane by lane against ec_add_s8:
 *   - x * mult: |x| <= 128, |mult| <= 2^15, exact in int32.
 *   - ec_align32(v, k) is VRSHL by k: for k >= 0 a left shift, exact because the compiler keeps
 *     |v| * 2^k < 2^30; for k < 0 a rounding right shift by -k, (v + 2^(-k-1)) >> -k computed
 *     without overflow, which is rule 2's floor(v / 2^-k + 1/2), ties and negatives included.
 *   - the sum of the two aligned terms is below 2^31 in magnitude (each < 2^30).
 *   - ec_requantize(acc, s, lo, hi) is VQRSHL by -s then the clamp: for s > 0 the same rounding
 *     right shift; s = 0 leaves acc; for s < 0 a left shift saturated to int32, and clamping
 *     that to [lo, hi] (within int32) equals rule 2's clamp-then-shift followed by rule 3.
 */
#include "ec_elementwise_mve.h"

#include "ec_elementwise.h"
#include "ec_fast.h"

void ec_add_mve_s8(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t mult_a, int shift_a,
                   int32_t mult_b, int shift_b, int shift_out, int32_t lo, int32_t hi)
{
#if EC_FAST_MVE
    const int32x4_t k_a = vdupq_n_s32(shift_a), k_b = vdupq_n_s32(shift_b), k_out = vdupq_n_s32(-shift_out);
    const int32x4_t v_lo = vdupq_n_s32(lo), v_hi = vdupq_n_s32(hi);
    int n;
    for (n = size; n > 0; n -= 4, a += 4, b += 4, output += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)n);
        const int32x4_t x = vrshlq_s32(vmulq_n_s32(vldrbq_z_s32(a, p), mult_a), k_a);
        const int32x4_t y = vrshlq_s32(vmulq_n_s32(vldrbq_z_s32(b, p), mult_b), k_b);
        const int32x4_t r = vminq_s32(vmaxq_s32(vqrshlq_s32(vaddq_s32(x, y), k_out), v_lo), v_hi);
        vstrbq_p_s32(output, r, p);
    }
#else
    ec_add_s8(a, b, output, size, mult_a, shift_a, mult_b, shift_b, shift_out, lo, hi);
#endif
}

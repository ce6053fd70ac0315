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
#include <string.h>

#include "ec_fast.h"

#if !EC_FAST_MVE
/* ec_add_s8 for signed operands and output (zero points 0), exact left alignments (shift_a, shift_b
 * >= 0, folded into the multipliers as m * 2^k, and the compiler's headroom keeps |x * m| *
 * 2^k < 2^30) and an output shift 0 <= shift_out <= 31 (a recurrent cell's c' = f c + i g, its
 * h - n and n + z (h - n)): one multiply-accumulate per element, then rule 2 as two shifts (no
 * addition that could overflow: |acc| < 2^31) and rule 3, without ec_align32's and
 * ec_requantize's branches.  Measured on an LSTM 49x10->64 on the M4: 37 instructions per element
 * before, through ec_add_s8. */
static inline void ec_add_signed_impl(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t ma,
                                      int32_t mb, int shift_out, int32_t lo, int32_t hi, const int int8_range)
{
    int i;
    for (i = 0; i < size; ++i) {
        const int32_t acc = a[i] * ma + b[i] * mb; /* each term < 2^30 in magnitude */
        const int32_t v = shift_out > 0 ? ec_asr32(acc, shift_out) + (ec_asr32(acc, shift_out - 1) & 1) : acc;
#if EC_FAST_SAT
        output[i] = (int8_t)(int8_range ? __ssat(v, 8) : ec_clamp32(v, lo, hi));
#else
        output[i] = (int8_t)(int8_range ? ec_clamp32(v, INT8_MIN, INT8_MAX) : ec_clamp32(v, lo, hi));
#endif
    }
}

static void ec_add_signed_s8(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t ma, int32_t mb,
                             int shift_out, int32_t lo, int32_t hi)
{
    if (lo == INT8_MIN && hi == INT8_MAX) { /* the plain int8 clamp: one SSAT */
        ec_add_signed_impl(a, b, output, size, ma, mb, shift_out, lo, hi, 1);
    } else {
        ec_add_signed_impl(a, b, output, size, ma, mb, shift_out, lo, hi, 0);
    }
}
#endif

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
    if (zero_a == 0 && zero_b == 0 && zero_y == 0 && shift_a >= 0 && shift_b >= 0 && shift_out >= 0) {
        ec_add_signed_s8(a, b, output, size, mult_a * ((int32_t)1 << shift_a), mult_b * ((int32_t)1 << shift_b),
                         shift_out, lo, hi);
    } else {
        ec_add_s8(a, b, output, size, mult_a, shift_a, zero_a, mult_b, shift_b, zero_b, shift_out, zero_y, lo, hi);
    }
#endif
}

/*
 * ec_mul_s8's common case, y = sat(rounding_shift(a * b, shift)) elementwise over two vectors of the
 * same shape (outer 1, b_inner_stride 1) with signed codes (zero points 0) and 0 <= shift <= 14 (a
 * recurrent cell's gate products f c, i g, o tanh(c')); anything else goes to ec_mul_s8.
 * |a * b| <= 2^14 (int8 codes), so the product is exact in an int16 lane too.
 *   Helium: eight elements per vector (VLDRB.S16), VMUL.S16, VRSHL by -shift (a rounding right shift,
 *   (p + 2^(shift-1)) >> shift computed without overflow: rule 2; by 0, p itself), VMAX/VMIN to
 *   [lo, hi], a byte store of the int16 lanes (the values lie in [lo, hi], within int8).
 *   Elsewhere: p + 2^(shift-1) < 2^15 cannot overflow, and its floor shift is rule 2.
 */
void ec_mul_mve_s8(const int8_t *a, int32_t zero_a, const int8_t *b, int32_t zero_b, int8_t *output, int outer,
                   int inner, int b_outer_stride, int b_inner_stride, int shift, int32_t lo, int32_t hi)
{
    if (outer != 1 || b_inner_stride != 1 || zero_a != 0 || zero_b != 0 || shift < 0 || shift > 14) {
        ec_mul_s8(a, zero_a, b, zero_b, output, outer, inner, b_outer_stride, b_inner_stride, shift, lo, hi);
        return;
    }
#if EC_FAST_MVE
    {
        const int16x8_t v_lo = vdupq_n_s16((int16_t)lo), v_hi = vdupq_n_s16((int16_t)hi);
        int n;
        for (n = inner; n > 0; n -= 8, a += 8, b += 8, output += 8) {
            const mve_pred16_t p = vctp16q((uint32_t)n);
            const int16x8_t prod = vmulq_s16(vldrbq_z_s16(a, p), vldrbq_z_s16(b, p));
            const int16x8_t r = vminq_s16(vmaxq_s16(vrshlq_n_s16(prod, -shift), v_lo), v_hi);
            vstrbq_p_s16(output, r, p);
        }
    }
#else
    {
        const int32_t half = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
        int i = 0;
#if EC_FAST_DSP && EC_FAST_SAT
        if (lo == INT8_MIN && hi == INT8_MAX && (((uintptr_t)a | (uintptr_t)b | (uintptr_t)output) & 3u) == 0) {
            /* four elements per word: SXTB16 pairs (a0, a2), (a1, a3) and b's; SMLABB / SMLATT give each
               lane's product plus the rounding constant (|p| + half < 2^15), then the shift, SSAT (the
               int8 clamp) and one word store */
            for (; i + 4 <= inner; i += 4) {
                int32_t va, vb, ae, ao, be, bo;
                uint32_t y;
                memcpy(&va, a + i, 4); /* one LDR each: aligned */
                memcpy(&vb, b + i, 4);
                ae = __sxtb16(va);
                ao = ec_sxtb16_ror8(va);
                be = __sxtb16(vb);
                bo = ec_sxtb16_ror8(vb);
                y = (uint32_t)__ssat(ec_asr32(__smlabb(ae, be, half), shift), 8) & 0xFFu;
                y |= ((uint32_t)__ssat(ec_asr32(__smlabb(ao, bo, half), shift), 8) & 0xFFu) << 8;
                y |= ((uint32_t)__ssat(ec_asr32(__smlatt(ae, be, half), shift), 8) & 0xFFu) << 16;
                y |= ((uint32_t)__ssat(ec_asr32(__smlatt(ao, bo, half), shift), 8) & 0xFFu) << 24;
                memcpy(output + i, &y, 4);
            }
        }
#endif
        for (; i < inner; ++i) {
            output[i] = (int8_t)ec_clamp32(ec_asr32(a[i] * b[i] + half, shift), lo, hi);
        }
    }
#endif
    (void)b_outer_stride;
}

/*
 * ec_lerp_s8's arithmetic, element for element:
 *   Helium: VRSHL by shift_a, shift_b is ec_align32 (exact left shifts; a negative shift is rule 2's
 *   rounding right shift, without overflow), the products and sums are the reference's int32 values
 *   (bounded by the compiler's proof), and VQRSHL by -shift_out then the clamp is ec_requantize (as
 *   in ec_add_mve_s8 above).
 *   Elsewhere, with exact alignments (shift_a, shift_b >= 0) and round_folded: x * 2^shift_g + g (y - x)
 *   is a * mg + g * (b * mb - a * ma) with ma = 2^shift_a, mb = 2^shift_b, mg = 2^(shift_a + shift_g), the
 *   same integer, computed as two multiply-accumulates (the first starting at the folded 2^(shift_out - 1);
 *   every partial sum within the proof's bound plus it), then one floor shift: rule 2, and one SSAT for
 *   the int8 clamp.  a and b in one format (shift_a = shift_b = 0, a GRU's n and h as calibrated) take
 *   b - a for the difference.
 */
#if !EC_FAST_MVE
static EC_FAST_INLINE void ec_lerp_folded(const int8_t *a, const int8_t *b, const int8_t *g, int8_t *output, int size,
                                          int32_t ma, int32_t mb, int32_t mg, int32_t half, int shift_out, int32_t lo,
                                          int32_t hi, const int same, const int int8_range)
{
    int i;
    for (i = 0; i < size; ++i) {
        const int32_t x = a[i], d = same ? b[i] - x : b[i] * mb - x * ma;
        const int32_t v = ec_asr32(x * mg + half + g[i] * d, shift_out);
#if EC_FAST_SAT
        output[i] = (int8_t)(int8_range ? __ssat(v, 8) : ec_clamp32(v, lo, hi));
#else
        output[i] = (int8_t)(int8_range ? ec_clamp32(v, INT8_MIN, INT8_MAX) : ec_clamp32(v, lo, hi));
#endif
    }
}
#endif

void ec_lerp_mve_s8(const int8_t *a, const int8_t *b, const int8_t *g, int8_t *output, int size, int shift_a,
                    int shift_b, int shift_g, int shift_out, int32_t lo, int32_t hi, int round_folded)
{
#if EC_FAST_MVE
    const int32x4_t v_lo = vdupq_n_s32(lo), v_hi = vdupq_n_s32(hi);
    const int32_t mg = (int32_t)1 << shift_g;
    int n;
    (void)round_folded;
    for (n = size; n > 0; n -= 4, a += 4, b += 4, g += 4, output += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)n);
        const int32x4_t x = vrshlq_n_s32(vldrbq_z_s32(a, p), shift_a);
        const int32x4_t y = vrshlq_n_s32(vldrbq_z_s32(b, p), shift_b);
        const int32x4_t acc = vaddq_s32(vmulq_n_s32(x, mg), vmulq_s32(vldrbq_z_s32(g, p), vsubq_s32(y, x)));
        vstrbq_p_s32(output, vminq_s32(vmaxq_s32(vqrshlq_n_s32(acc, -shift_out), v_lo), v_hi), p);
    }
#else
    if (shift_a >= 0 && shift_b >= 0 && shift_out >= 0 && (round_folded & 1)) {
        const int32_t ma = (int32_t)1 << shift_a, mb = (int32_t)1 << shift_b, mg = (int32_t)1 << (shift_a + shift_g);
        const int32_t half = (int32_t)(((uint32_t)1 << shift_out) >> 1);
        if (lo != INT8_MIN || hi != INT8_MAX) {
            ec_lerp_folded(a, b, g, output, size, ma, mb, mg, half, shift_out, lo, hi, 0, 0);
        } else if (shift_a == 0 && shift_b == 0) {
            ec_lerp_folded(a, b, g, output, size, 1, 1, mg, half, shift_out, lo, hi, 1, 1);
        } else {
            ec_lerp_folded(a, b, g, output, size, ma, mb, mg, half, shift_out, lo, hi, 0, 1);
        }
        return;
    }
    ec_lerp_s8(a, b, g, output, size, shift_a, shift_b, shift_g, shift_out, lo, hi);
#endif
}

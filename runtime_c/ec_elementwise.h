/*
 * ec_elementwise.h - elementwise int8 kernels.  All of them work in place (output == input)
 * because each reads element i before writing element i.
 */
#ifndef EC_ELEMENTWISE_H
#define EC_ELEMENTWISE_H

#include <stdint.h>

/* y = max(x, 0); keeps the input's frac bits. */
void ec_relu_s8(const int8_t *input, int8_t *output, int size);

/* y = clamp(x, lo, hi) (ReLU6, hardtanh); keeps the input's frac bits. */
void ec_clamp_s8(const int8_t *input, int8_t *output, int size, int32_t lo, int32_t hi);

/* y = table[x + 128]: any function of an int8 input, tabulated at compile time. */
void ec_lut_s8(const int8_t *input, int8_t *output, int size, const int8_t *table);

/*
 * Weighted add of codes with zero points (0, or -128 for unsigned codes, see numerics.py):
 *   y = sat(rounding_shift(align((a - zero_a) * mult_a, shift_a) + align((b - zero_b) * mult_b, shift_b),
 *                          shift_out) + zero_y, lo, hi)
 * where mult_x is +-1 or a constant with 14 frac bits (|mult_x| <= 2^15), align (ec_align32)
 * moves both products to a common format F (shift_x = F - f_x - frac(mult_x); the compiler
 * keeps |(x - zero_x) * mult_x| * 2^shift_x < 2^30, with |x - zero_x| <= 255 for an unsigned
 * operand, so the sum fits int32) and shift_out = F - f_out as in ec_requantize.  lo/hi are
 * code-space bounds (zero_y included) and include a fused ReLU; the zero point enters after the
 * rounding shift as ec_requantize(acc, shift_out, lo - zero_y, hi - zero_y) + zero_y, so the
 * value-space bounds obey ec_requantize's contract: lo - zero_y <= 0 <= hi - zero_y (every fused
 * activation's clamp holds real zero; an unsigned output's ReLU has lo = zero_y).  A plain
 * residual add of signed codes has mult_a = mult_b = 1 and every zero point 0.
 */
void ec_add_s8(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t mult_a, int shift_a,
               int32_t zero_a, int32_t mult_b, int shift_b, int32_t zero_b, int shift_out, int32_t zero_y,
               int32_t lo, int32_t hi);

/*
 * Product of codes with zero points (0, or -128 for unsigned codes), b broadcast over the inner
 * axis (squeeze-excite's channel gate):
 *   y[o][i] = sat(rounding_shift((a[o][i] - zero_a) * (b[o * b_outer_stride + i * b_inner_stride] - zero_b),
 *                                shift), lo, hi)
 * for o < outer, i < inner; shift = f_a + f_b - f_out.  |x - zero_x| <= 255, so the product is
 * below 2^16.  The output is signed (no zero point).
 */
void ec_mul_s8(const int8_t *a, int32_t zero_a, const int8_t *b, int32_t zero_b, int8_t *output, int outer,
               int inner, int b_outer_stride, int b_inner_stride, int shift, int32_t lo, int32_t hi);

/*
 * Affine map by constants: y = sat(rounding_shift(x * mult + offset, shift), lo, hi), mult is +-1
 * or a constant with 14 frac bits, offset has the product's format.  |x * mult| <= 2^22 and the
 * compiler keeps |offset| < 2^30.
 */
void ec_affine_s8(const int8_t *input, int8_t *output, int size, int32_t mult, int32_t offset, int shift,
                  int32_t lo, int32_t hi);

/*
 * The same kernels with int8 or int16 operands and results (x_bytes = 1 or 2, see ec_tensor.h).
 * ReLU is ec_clamp_any with lo = 0.  The bounds above hold with 2^15 for int16 operands: the
 * compiler picks shifts and multipliers from the operands' widths.
 */
void ec_clamp_any(const void *input, int in_bytes, void *output, int out_bytes, int size, int32_t lo, int32_t hi);
void ec_add_any(const void *a, int a_bytes, const void *b, int b_bytes, void *output, int out_bytes, int size,
                int32_t mult_a, int shift_a, int32_t zero_a, int32_t mult_b, int shift_b, int32_t zero_b,
                int shift_out, int32_t zero_y, int32_t lo, int32_t hi);
void ec_mul_any(const void *a, int a_bytes, int32_t zero_a, const void *b, int b_bytes, int32_t zero_b, void *output,
                int out_bytes, int outer, int inner, int b_outer_stride, int b_inner_stride, int shift, int32_t lo,
                int32_t hi);
void ec_affine_any(const void *input, int in_bytes, void *output, int out_bytes, int size, int32_t mult,
                   int32_t offset, int shift, int32_t lo, int32_t hi);

/*
 * A GRU's update h' = n + z (h - n), elementwise: with x = align(a[i], shift_a), y = align(b[i], shift_b)
 * (a, b in one format, F frac bits: exact left shifts, or rule 2 for the one capped finer),
 *   output[i] = sat(rounding_shift(x * 2^shift_g + g[i] * (y - x), shift_out), lo, hi)
 * shift_g (g's frac bits) in [0, 15].  Signed codes (no zero points).  The compiler (ops/lerp.py)
 * proves max|x| * 2^shift_g + 128 (max|x| + max|y|) <= 2^31 - 1, so no sum overflows.
 */
void ec_lerp_s8(const int8_t *a, const int8_t *b, const int8_t *g, int8_t *output, int size, int shift_a, int shift_b,
                int shift_g, int shift_out, int32_t lo, int32_t hi);

#endif /* EC_ELEMENTWISE_H */

/*
 * ec_leaky_relu.h - LeakyReLU on int8 with the slope as a fixed-point multiplier.
 */
#ifndef EC_LEAKY_RELU_H
#define EC_LEAKY_RELU_H

#include <stdint.h>

/*
 * y = x for x >= 0, else sat(rounding_shift(x * mult, shift), -128, 127) (rules 2, 3 of
 * ec_fixed.h); the output keeps the input's frac bits.  mult = round(alpha * 2^shift) with
 * shift = 14, or mult = +-1 and shift = 0 for alpha = +-1.  The compiler keeps |mult| <= 2^22,
 * so |x * mult| <= 2^29.  Works in place (output == input): element i is read before it is
 * written.
 */
void ec_leaky_relu_s8(const int8_t *input, int8_t *output, int size, int32_t mult, int shift);

#endif /* EC_LEAKY_RELU_H */

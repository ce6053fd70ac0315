/* ec_leaky_relu.c - LeakyReLU on int8 (see ec_leaky_relu.h). */
#include "ec_leaky_relu.h"

#include "ec_fixed.h"

void ec_leaky_relu_s8(const int8_t *input, int8_t *output, int size, int32_t mult, int shift)
{
    int i;
    for (i = 0; i < size; ++i) {
        int32_t x = input[i];
        /* |x * mult| <= 2^7 * 2^22: no overflow (see the header) */
        output[i] = (int8_t)(x >= 0 ? x : ec_requantize(x * mult, shift, -128, 127));
    }
}

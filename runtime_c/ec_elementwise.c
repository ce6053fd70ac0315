/* ec_elementwise.c - elementwise int8 kernels (see ec_elementwise.h). */
#include "ec_elementwise.h"

#include "ec_fixed.h"

void ec_relu_s8(const int8_t *input, int8_t *output, int size)
{
    int i;
    for (i = 0; i < size; ++i) {
        output[i] = input[i] < 0 ? 0 : input[i];
    }
}

void ec_clamp_s8(const int8_t *input, int8_t *output, int size, int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < size; ++i) {
        output[i] = (int8_t)ec_clamp32(input[i], lo, hi);
    }
}

void ec_lut_s8(const int8_t *input, int8_t *output, int size, const int8_t *table)
{
    int i;
    for (i = 0; i < size; ++i) {
        output[i] = table[input[i] + 128];
    }
}

void ec_add_s8(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t mult_a, int shift_a,
               int32_t mult_b, int shift_b, int shift_out, int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < size; ++i) {
        /* |x * mult| <= 2^22 and each aligned term < 2^30: see header */
        const int32_t acc = ec_align32(a[i] * mult_a, shift_a) + ec_align32(b[i] * mult_b, shift_b);
        output[i] = (int8_t)ec_requantize(acc, shift_out, lo, hi);
    }
}

void ec_mul_s8(const int8_t *a, const int8_t *b, int8_t *output, int outer, int inner, int b_outer_stride,
               int b_inner_stride, int shift, int32_t lo, int32_t hi)
{
    int o, i;
    for (o = 0; o < outer; ++o) {
        const int8_t *bo = b + (long)o * b_outer_stride;
        for (i = 0; i < inner; ++i) {
            const int32_t product = (int32_t)a[i] * (int32_t)bo[(long)i * b_inner_stride];
            output[i] = (int8_t)ec_requantize(product, shift, lo, hi);
        }
        a += inner;
        output += inner;
    }
}

void ec_affine_s8(const int8_t *input, int8_t *output, int size, int32_t mult, int32_t offset, int shift,
                  int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < size; ++i) {
        output[i] = (int8_t)ec_requantize(input[i] * mult + offset, shift, lo, hi); /* bounded: see header */
    }
}

/* ec_elementwise.c - elementwise int8 kernels (see ec_elementwise.h). */
#include "ec_elementwise.h"

#include <string.h>

#include "ec_fixed.h"
#include "ec_tensor.h"

void ec_relu_s8(const int8_t *input, int8_t *output, int size)
{
    int i;
    for (i = 0; i < size; ++i) {
        output[i] = input[i] < 0 ? 0 : input[i];
    }
}

static inline void ec_clamp_impl(const void *input, int in_bytes, void *output, int out_bytes, int size,
                                 int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < size; ++i) {
        ec_put(output, i, out_bytes, ec_clamp32(ec_get(input, i, in_bytes), lo, hi));
    }
}

void ec_clamp_s8(const int8_t *input, int8_t *output, int size, int32_t lo, int32_t hi)
{
    ec_clamp_impl(input, 1, output, 1, size, lo, hi);
}

void ec_clamp_any(const void *input, int in_bytes, void *output, int out_bytes, int size, int32_t lo, int32_t hi)
{
    ec_clamp_impl(input, in_bytes, output, out_bytes, size, lo, hi);
}

void ec_lut_s8(const int8_t *input, int8_t *output, int size, const int8_t *table)
{
    const int8_t *centre = table + 128; /* centre[q] = table[q + 128], q in -128 .. 127 */
    int i = 0;
#if defined(__ARM_FEATURE_UNALIGNED) || !defined(__arm__) /* else a 4-byte memcpy may be a call (Cortex-M0+) */
    if ((((uintptr_t)input | (uintptr_t)output) & 3u) == 0) { /* four codes per word load and store */
        for (; i + 4 <= size; i += 4) {
            uint32_t x, y;
            memcpy(&x, input + i, 4); /* one LDR / STR: both aligned; byte k is element i + k */
            y = (uint8_t)centre[(int8_t)(x & 0xFFu)];
            y |= (uint32_t)(uint8_t)centre[(int8_t)((x >> 8) & 0xFFu)] << 8;
            y |= (uint32_t)(uint8_t)centre[(int8_t)((x >> 16) & 0xFFu)] << 16;
            y |= (uint32_t)(uint8_t)centre[(int8_t)(x >> 24)] << 24;
            memcpy(output + i, &y, 4);
        }
    }
#endif
    for (; i < size; ++i) {
        output[i] = centre[input[i]];
    }
}

static inline void ec_add_impl(const void *a, int a_bytes, const void *b, int b_bytes, void *output,
                               int out_bytes, int size, int32_t mult_a, int shift_a, int32_t zero_a, int32_t mult_b,
                               int shift_b, int32_t zero_b, int shift_out, int32_t zero_y, int32_t lo, int32_t hi)
{
    /* (x - z) * mult as x * mult + offset (a multiply-accumulate); |z * mult| <= 2^22 */
    const int32_t offset_a = -zero_a * mult_a, offset_b = -zero_b * mult_b;
    /* sat(v + zero_y, lo, hi) == sat(v, lo - zero_y, hi - zero_y) + zero_y */
    const int32_t lo_v = lo - zero_y, hi_v = hi - zero_y;
    int i;
    for (i = 0; i < size; ++i) {
        /* each aligned term < 2^30 (the compiler sizes the shifts from the operands' widths and zero
           points): see header */
        const int32_t acc = ec_align32(ec_get(a, i, a_bytes) * mult_a + offset_a, shift_a) +
                            ec_align32(ec_get(b, i, b_bytes) * mult_b + offset_b, shift_b);
        ec_put(output, i, out_bytes, ec_requantize(acc, shift_out, lo_v, hi_v) + zero_y);
    }
}

void ec_add_s8(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t mult_a, int shift_a,
               int32_t zero_a, int32_t mult_b, int shift_b, int32_t zero_b, int shift_out, int32_t zero_y,
               int32_t lo, int32_t hi)
{
    ec_add_impl(a, 1, b, 1, output, 1, size, mult_a, shift_a, zero_a, mult_b, shift_b, zero_b, shift_out, zero_y,
                lo, hi);
}

void ec_add_any(const void *a, int a_bytes, const void *b, int b_bytes, void *output, int out_bytes, int size,
                int32_t mult_a, int shift_a, int32_t zero_a, int32_t mult_b, int shift_b, int32_t zero_b,
                int shift_out, int32_t zero_y, int32_t lo, int32_t hi)
{
    ec_add_impl(a, a_bytes, b, b_bytes, output, out_bytes, size, mult_a, shift_a, zero_a, mult_b, shift_b, zero_b,
                shift_out, zero_y, lo, hi);
}

static inline void ec_mul_impl(const void *a, int a_bytes, int32_t zero_a, const void *b, int b_bytes,
                               int32_t zero_b, void *output, int out_bytes, int outer, int inner, int b_outer_stride,
                               int b_inner_stride, int shift, int32_t lo, int32_t hi)
{
    int o, i;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const long k = (long)o * inner + i;
            /* |(a - zero_a) * (b - zero_b)| < 2^16 for int8 codes, <= 2^30 for int16 (no zero point) */
            const int32_t product = (ec_get(a, k, a_bytes) - zero_a) *
                                    (ec_get(b, (long)o * b_outer_stride + (long)i * b_inner_stride, b_bytes) - zero_b);
            ec_put(output, k, out_bytes, ec_requantize(product, shift, lo, hi));
        }
    }
}

void ec_mul_s8(const int8_t *a, int32_t zero_a, const int8_t *b, int32_t zero_b, int8_t *output, int outer,
               int inner, int b_outer_stride, int b_inner_stride, int shift, int32_t lo, int32_t hi)
{
    ec_mul_impl(a, 1, zero_a, b, 1, zero_b, output, 1, outer, inner, b_outer_stride, b_inner_stride, shift, lo, hi);
}

void ec_mul_any(const void *a, int a_bytes, int32_t zero_a, const void *b, int b_bytes, int32_t zero_b, void *output,
                int out_bytes, int outer, int inner, int b_outer_stride, int b_inner_stride, int shift, int32_t lo,
                int32_t hi)
{
    ec_mul_impl(a, a_bytes, zero_a, b, b_bytes, zero_b, output, out_bytes, outer, inner, b_outer_stride,
                b_inner_stride, shift, lo, hi);
}

static inline void ec_affine_impl(const void *input, int in_bytes, void *output, int out_bytes, int size,
                                  int32_t mult, int32_t offset, int shift, int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < size; ++i) {
        /* bounded: see header */
        ec_put(output, i, out_bytes, ec_requantize(ec_get(input, i, in_bytes) * mult + offset, shift, lo, hi));
    }
}

void ec_affine_s8(const int8_t *input, int8_t *output, int size, int32_t mult, int32_t offset, int shift,
                  int32_t lo, int32_t hi)
{
    ec_affine_impl(input, 1, output, 1, size, mult, offset, shift, lo, hi);
}

void ec_affine_any(const void *input, int in_bytes, void *output, int out_bytes, int size, int32_t mult,
                   int32_t offset, int shift, int32_t lo, int32_t hi)
{
    ec_affine_impl(input, in_bytes, output, out_bytes, size, mult, offset, shift, lo, hi);
}

void ec_lerp_s8(const int8_t *a, const int8_t *b, const int8_t *g, int8_t *output, int size, int shift_a, int shift_b,
                int shift_g, int shift_out, int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < size; ++i) { /* bounded: see header */
        const int32_t x = ec_align32(a[i], shift_a), y = ec_align32(b[i], shift_b);
        output[i] = (int8_t)ec_requantize(x * ((int32_t)1 << shift_g) + g[i] * (y - x), shift_out, lo, hi);
    }
}

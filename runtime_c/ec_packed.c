/* ec_packed.c - kernels for packed sub-8-bit weights (layout: ec_packed.h). */
#include "ec_packed.h"

#include "ec_fixed.h"

/* Weight i of a packed row: its field, sign-extended without shifting a negative value. */
static int32_t ec_packed_weight(const uint8_t *row, int i, int field_bits)
{
    const int per_byte = 8 / field_bits;
    const unsigned mask = (1u << field_bits) - 1u;
    const unsigned v = ((unsigned)row[i / per_byte] >> (field_bits * (i % per_byte))) & mask;
    return v & (1u << (field_bits - 1)) ? (int32_t)v - (int32_t)(1u << field_bits) : (int32_t)v;
}

void ec_linear_packed_s8(const int8_t *input, int in_features, const uint8_t *weight, int field_bits,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel, int out_features,
                         int8_t *output, int32_t act_min, int32_t act_max)
{
    const int per_byte = 8 / field_bits;
    const int row_bytes = (in_features + per_byte - 1) / per_byte;
    int o, i;
    for (o = 0; o < out_features; ++o) {
        const uint8_t *row = weight + (long)o * row_bytes;
        int32_t acc = bias != 0 ? bias[o] : 0;
        for (i = 0; i < in_features; ++i) {
            acc += (int32_t)input[i] * ec_packed_weight(row, i, field_bits); /* bounded: see header */
        }
        output[o] = (int8_t)ec_requantize(acc, shift[shift_per_channel ? o : 0], act_min, act_max);
    }
}

void ec_conv2d_packed_s8(const int8_t *input, int in_c, int in_h, int in_w, const uint8_t *weight, int field_bits,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel,
                         int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                         int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max)
{
    const int per_byte = 8 / field_bits;
    const int row_bytes = (in_c * k_h * k_w + per_byte - 1) / per_byte;
    int oc, oy, ox, ic, ky, kx;
    for (oc = 0; oc < out_c; ++oc) {
        const uint8_t *row = weight + (long)oc * row_bytes;
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                int32_t acc = bias != 0 ? bias[oc] : 0;
                for (ic = 0; ic < in_c; ++ic) {
                    for (ky = 0; ky < k_h; ++ky) {
                        const int iy = oy * stride_h - pad_top + ky;
                        const int row_inside = iy >= 0 && iy < in_h;
                        for (kx = 0; kx < k_w; ++kx) {
                            const int ix = ox * stride_w - pad_left + kx;
                            /* a tap outside the input reads the padding: pad_value */
                            const int32_t x = row_inside && ix >= 0 && ix < in_w
                                                  ? (int32_t)input[((long)ic * in_h + iy) * in_w + ix] : pad_value;
                            acc += x * ec_packed_weight(row, (ic * k_h + ky) * k_w + kx, field_bits);
                        }
                    }
                }
                output[((long)oc * out_h + oy) * out_w + ox] =
                    (int8_t)ec_requantize(acc, shift[shift_per_channel ? oc : 0], act_min, act_max);
            }
        }
    }
}

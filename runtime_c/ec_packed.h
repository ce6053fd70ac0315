/*
 * ec_packed.h - conv and linear layers whose weights are packed below 8 bits.
 *
 * Layout (edgecompile/packing.py writes it): each output channel's row of K weights
 * (K = in_features, or in_c * k_h * k_w in (ic, ky, kx) order) starts on a byte; within
 * a byte, fields of field_bits = 4 (two weights) or 2 (four weights) bits hold two's
 * complement values, lowest field first.  Unpacking gives exactly the int8 weights of the
 * dense layer, so results equal ec_linear_s8 / ec_conv2d_s8 bit for bit, and the dense
 * layer's proven int32 bound applies unchanged.  Other arguments as in those kernels (the
 * convolution's padding reads pad_value, the input's zero point, as in ec_conv2d_s8).
 */
#ifndef EC_PACKED_H
#define EC_PACKED_H

#include <stdint.h>

void ec_linear_packed_s8(const int8_t *input, int in_features, const uint8_t *weight, int field_bits,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel, int out_features,
                         int8_t *output, int32_t act_min, int32_t act_max);

void ec_conv2d_packed_s8(const int8_t *input, int in_c, int in_h, int in_w, const uint8_t *weight, int field_bits,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel,
                         int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                         int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max);

#endif /* EC_PACKED_H */

/*
 * ec_depthwise_mve.h - depthwise convolution with Helium (MVE), CHW, bit-exact with the
 * reference ec_conv2d_grouped_s8 (runtime_c/ec_conv2d_grouped.c) for groups = in_c = out_c.
 *
 * Weights in the logical order (channel, kernel row, kernel column), as the reference reads
 * them.  Any kernel size, stride and padding (the padding reads pad_value, the input's zero
 * point: the code of real zero); no dilation.  No scratch.
 */
#ifndef EC_DEPTHWISE_MVE_H
#define EC_DEPTHWISE_MVE_H

#include <stdint.h>

#include "ec_fast.h"

#if EC_FAST_MVE
/* Depthwise convolution (one filter per channel) of a (channels, in_h, in_w) input into
 * (channels, out_h, out_w): what ec_conv2d_grouped_s8 computes with in_c = out_c = groups =
 * channels and dilation 1.  ec_conv2d_grouped_fast_s8 (ec_depthwise_fast.c) calls it for such
 * layers on cores with EC_FAST_MVE. */
void ec_depthwise_mve_s8(const int8_t *input, int channels, int in_h, int in_w, const int8_t *weight,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel, int k_h, int k_w,
                         int stride_h, int stride_w, int pad_top, int pad_left, int32_t pad_value, int8_t *output,
                         int out_h, int out_w, int32_t act_min, int32_t act_max);
#endif

#endif /* EC_DEPTHWISE_MVE_H */

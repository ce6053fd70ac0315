/*
 * ec_conv2d_grouped.h - grouped, depthwise and dilated 2-D convolution (int8, int32 accumulator).
 * Layouts as ec_conv2d.h; weight is (out_c, in_c / groups, k_h, k_w).
 */
#ifndef EC_CONV2D_GROUPED_H
#define EC_CONV2D_GROUPED_H

#include <stdint.h>

/*
 * ec_conv2d_grouped_s8 - output channel oc of group g = oc / (out_c / groups) sees input
 * channels g * in_c/groups .. (g + 1) * in_c/groups - 1; kernel taps are dilation_h/_w apart.
 * groups divides in_c and out_c (depthwise: groups = in_c).  Other arguments, ranges and the
 * overflow bound as ec_conv2d_s8 (the compiler's bound covers the in_c/groups * k_h * k_w terms).
 * 0 <= pad_top, pad_left; windows may lie partly outside the input: every tap outside reads
 * pad_value (-128 <= pad_value <= 127, the input's zero point, the code of real zero), as in
 * ec_conv2d_s8.
 */
void ec_conv2d_grouped_s8(const int8_t *input, int in_c, int in_h, int in_w,
                          const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                          int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                          int32_t pad_value, int dilation_h, int dilation_w, int groups,
                          int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max);

/*
 * ec_conv2d_any - the same convolution (any groups, dilation 1 included) with int8 or int16
 * activations: in_bytes, out_bytes = 1 or 2 (see ec_tensor.h).  With int16 inputs the compiler's
 * accumulator bound is sum |w| * 2^15 + |bias| <= 2^31 - 1.  pad_value is the input's zero
 * point (0 for int16 codes).
 */
void ec_conv2d_any(const void *input, int in_bytes, int in_c, int in_h, int in_w,
                   const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                   int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                   int32_t pad_value, int dilation_h, int dilation_w, int groups,
                   void *output, int out_bytes, int out_h, int out_w, int32_t act_min, int32_t act_max);

#endif /* EC_CONV2D_GROUPED_H */

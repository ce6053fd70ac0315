/*
 * ec_conv2d.h - 2-D convolution, int8 activations and weights, int32 accumulator.
 * Layouts: input (in_c, in_h, in_w), weight (out_c, in_c, k_h, k_w),
 * output (out_c, out_h, out_w): PyTorch's element order, batch excluded.
 */
#ifndef EC_CONV2D_H
#define EC_CONV2D_H

#include <stdint.h>

/*
 * ec_conv2d_s8 - reference convolution, one group; the padding reads pad_value.
 *   input    in_c * in_h * in_w values, frac bits f_in
 *   weight   out_c * in_c * k_h * k_w values, frac bits f_w[oc]
 *   bias     out_c values, frac bits f_in + f_w[oc] (added to the accumulator as is),
 *            or a null pointer for a layer without bias
 *   shift    right-shift amounts s = f_in + f_w[oc] - f_out, -24 <= s <= 31: one per
 *            output channel if shift_per_channel, else shift[0] for all
 *   stride_h, stride_w >= 1; 0 <= pad_top < k_h, 0 <= pad_left < k_w
 *   (bottom/right padding is implied by out_h and out_w)
 *   pad_value  -128 <= pad_value <= 127: the code every tap outside the input reads, the
 *            input's zero point (the code of real zero: 0 for signed codes, -128 for
 *            unsigned ReLU codes), so that a padded window equals a window over a larger input
 *   act_min, act_max  output clamp: [-128, 127], or [0, 127] with a fused ReLU
 * Overflow: |bias + sum(w * x)| <= 2^31 - 1 is proven per layer by the compiler
 * (sum over the kernel of |w| * 128 + |bias|, manifest field acc_bound; |pad_value| <= 128
 * too), so the int32 accumulator never wraps.
 */
void ec_conv2d_s8(const int8_t *input, int in_c, int in_h, int in_w,
                  const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                  int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                  int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max);

#endif /* EC_CONV2D_H */

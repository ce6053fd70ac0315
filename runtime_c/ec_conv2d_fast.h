/*
 * ec_conv2d_fast.h - fast 2-D convolution, bit-exact with ec_conv2d_s8 (ec_conv2d.h).
 * Layouts: input (in_c, in_h, in_w), output (out_c, out_h, out_w) as in the reference;
 * the weights are packed (ec_fast.h) in groups of 2 output channels.
 */
#ifndef EC_CONV2D_FAST_H
#define EC_CONV2D_FAST_H

#include <stdint.h>

#include "ec_fast.h"

/*
 * ec_conv2d_fast_scratch - scratch bytes ec_conv2d_fast_s8 needs, a multiple of 4, for
 * K = in_c * k_h * k_w: each output channel's accumulator start value and its two
 * accumulators (12 * out_c), the offset of every kernel tap (4 * K), the int16 columns
 * of two output pixels (4 * (K - K % 4) + 16), and when some window leaves the input
 * (pad_top or pad_left > 0, or (out_h - 1) * stride_h + k_h > in_h, or W > in_w) a
 * padded band of in_c * R * W bytes (rounded up to 4), W = (out_w - 1) * stride_w
 * + k_w, R = k_h, plus stride_h when out_w is odd and out_h > 1.
 * edgecompile/ops/fast_kernels.py (conv_scratch_bytes) computes the same.
 */
int ec_conv2d_fast_scratch(int in_c, int in_h, int in_w, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                           int pad_top, int pad_left, int out_h, int out_w);

/*
 * ec_conv2d_fast_s8 - the arguments of ec_conv2d_s8 (the padding reads pad_value, the input's
 * zero point: the code of real zero), with
 *   weight        packed by pack_rows(w.reshape(out_c, K), group=2, paired_tails=True), EC_ALIGNED(4)
 *   round_folded  1 if acc_bound + 2^(s-1) <= 2^31 - 1 for every shift s > 0 (ec_fast.h),
 *                 else 0 (then every output goes through ec_requantize)
 *   scratch       ec_conv2d_fast_scratch(...) bytes, 4-byte aligned, not aliasing anything else
 * Same ranges and the same overflow bound as ec_conv2d_s8.
 */
void ec_conv2d_fast_s8(const int8_t *input, int in_c, int in_h, int in_w,
                       const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                       int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                       int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max,
                       int round_folded, void *scratch);

/*
 * ec_conv2d_1x1_fast_scratch - scratch bytes ec_conv2d_1x1_fast_s8 needs, a multiple of 4:
 * accumulator start values and accumulators (12 * out_c) and the int16 columns of two output
 * pixels (4 * (in_c - in_c % 4) + 16); no tap offsets, no band (1x1 windows never leave the input).
 * edgecompile/ops/fast_kernels.py (pointwise_scratch_bytes) computes the same.
 */
int ec_conv2d_1x1_fast_scratch(int in_c, int out_c);

/*
 * ec_conv2d_1x1_fast_s8 - pointwise convolution (1x1 kernel, no padding, any stride): the
 * arguments of ec_conv2d_fast_s8 without the kernel size and padding, the same packed weights
 * (K = in_c), round_folded and ranges; scratch of ec_conv2d_1x1_fast_scratch bytes.  The same
 * sums as ec_conv2d_s8 with k_h = k_w = 1 and no padding (its pad_value unused), hence the same
 * bytes.  Each pixel's column is read straight from the input planes (one load per value, no tap
 * table), which saves the 4 * in_c bytes of tap offsets and their loads.
 */
void ec_conv2d_1x1_fast_s8(const int8_t *input, int in_c, int in_h, int in_w,
                           const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                           int out_c, int stride_h, int stride_w, int8_t *output, int out_h, int out_w,
                           int32_t act_min, int32_t act_max, int round_folded, void *scratch);

#endif /* EC_CONV2D_FAST_H */

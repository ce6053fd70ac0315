/*
 * ec_depthwise_fast.h - fast grouped and depthwise 2-D convolution, bit-exact with
 * ec_conv2d_grouped_s8 (ec_conv2d_grouped.h).
 * Layouts as the reference: input (in_c, in_h, in_w), output (out_c, out_h, out_w), weight
 * (out_c, in_c / groups, k_h, k_w) in its logical order (nothing packed: a depthwise channel's
 * k_h * k_w weights are read once per channel, then kept in registers).
 */
#ifndef EC_DEPTHWISE_FAST_H
#define EC_DEPTHWISE_FAST_H

#include <stdint.h>

#include "ec_fast.h"

/*
 * ec_conv2d_grouped_fast_scratch - scratch bytes ec_conv2d_grouped_fast_s8 needs, a multiple of 4.
 * Depthwise (in_c / groups = 1): one padded input plane of PH * PW bytes (rounded up to 4),
 *   PH = (out_h - 1) * stride_h + (k_h - 1) * dilation_h + 1 and
 *   PW = (E - 1) * stride_w + (k_w - 1) * dilation_w + 1, E = out_w rounded up to even,
 * the rows and columns every window of the layer reads (an even number per row: outputs are
 * computed in pairs).  Other grouped layers (in_c / groups > 1): 0, no scratch.
 * edgecompile/ops/fast_kernels.py (grouped_scratch_bytes) computes the same.
 */
int ec_conv2d_grouped_fast_scratch(int in_c, int groups, int out_h, int out_w, int k_h, int k_w, int stride_h,
                                   int stride_w, int dilation_h, int dilation_w);

/*
 * ec_conv2d_grouped_fast_s8 - the arguments of ec_conv2d_grouped_s8 (the padding reads pad_value,
 * the input's zero point: the code of real zero), plus
 *   round_folded  1 if acc_bound + 2^(s-1) <= 2^31 - 1 for every shift s > 0 (ec_fast.h),
 *                 else 0 (then every output goes through ec_requantize)
 *   scratch       ec_conv2d_grouped_fast_scratch(...) bytes, not aliasing anything else
 *                 (may be null when that is 0)
 * Same ranges and the same overflow bound as ec_conv2d_grouped_s8.
 * Depthwise layers (in_c / groups = 1, any channel multiplier out_c / groups) copy each input
 * plane into the scratch plane (its border filled with pad_value) once, then compute two outputs
 * per step with no bounds checks; a 3x3 kernel without dilation and with stride_w 1 or 2 keeps its
 * 9 weights in registers (SMLAD on DSP cores).  Other grouped layers use a general loop (the code generator
 * runs those without dilation as one ec_conv2d_fast_s8 per group instead).
 * On cores with Helium (EC_FAST_MVE, ec_fast.h) a depthwise layer with out_c = in_c and no dilation
 * runs ec_depthwise_mve_s8 (ec_depthwise_mve.h) instead, which leaves the scratch unused.
 */
void ec_conv2d_grouped_fast_s8(const int8_t *input, int in_c, int in_h, int in_w,
                               const int8_t *weight, const int32_t *bias, const int8_t *shift,
                               int shift_per_channel, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                               int pad_top, int pad_left, int32_t pad_value, int dilation_h, int dilation_w,
                               int groups,
                               int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max,
                               int round_folded, void *scratch);

#endif /* EC_DEPTHWISE_FAST_H */

/* ec_conv2d_grouped.c - reference grouped/depthwise/dilated convolution (see the header). */
#include "ec_conv2d_grouped.h"

#include "ec_fixed.h"
#include "ec_tensor.h"

static inline void ec_conv2d_grouped_impl(const void *input, int in_bytes, int in_c, int in_h, int in_w,
                                          const int8_t *weight, const int32_t *bias, const int8_t *shift,
                                          int shift_per_channel, int out_c, int k_h, int k_w, int stride_h,
                                          int stride_w, int pad_top, int pad_left, int32_t pad_value,
                                          int dilation_h, int dilation_w,
                                          int groups, void *output, int out_bytes, int out_h, int out_w,
                                          int32_t act_min, int32_t act_max)
{
    const int c_per_group = in_c / groups;
    const int oc_per_group = out_c / groups;
    int oc, oy, ox, ic, ky, kx;
    for (oc = 0; oc < out_c; ++oc) {
        const int8_t *w_oc = weight + (long)oc * c_per_group * k_h * k_w;
        const long x_group = (long)(oc / oc_per_group) * c_per_group * in_h * in_w;
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                int32_t acc = bias != 0 ? bias[oc] : 0;
                for (ic = 0; ic < c_per_group; ++ic) {
                    const long plane = x_group + (long)ic * in_h * in_w;
                    const int8_t *w_ic = w_oc + (long)ic * k_h * k_w;
                    for (ky = 0; ky < k_h; ++ky) {
                        const int iy = oy * stride_h - pad_top + ky * dilation_h;
                        const int row_inside = iy >= 0 && iy < in_h;
                        for (kx = 0; kx < k_w; ++kx) {
                            const int ix = ox * stride_w - pad_left + kx * dilation_w;
                            /* a tap outside the input reads the padding: pad_value */
                            const int32_t x = row_inside && ix >= 0 && ix < in_w
                                                  ? ec_get(input, plane + (long)iy * in_w + ix, in_bytes) : pad_value;
                            /* bounded: see ec_conv2d.h (the compiler's bound uses the input's width) */
                            acc += x * (int32_t)w_ic[ky * k_w + kx];
                        }
                    }
                }
                ec_put(output, ((long)oc * out_h + oy) * out_w + ox, out_bytes,
                       ec_requantize(acc, shift[shift_per_channel ? oc : 0], act_min, act_max));
            }
        }
    }
}

void ec_conv2d_grouped_s8(const int8_t *input, int in_c, int in_h, int in_w,
                          const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                          int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                          int32_t pad_value, int dilation_h, int dilation_w, int groups,
                          int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max)
{
    ec_conv2d_grouped_impl(input, 1, in_c, in_h, in_w, weight, bias, shift, shift_per_channel, out_c, k_h, k_w,
                           stride_h, stride_w, pad_top, pad_left, pad_value, dilation_h, dilation_w, groups,
                           output, 1, out_h, out_w, act_min, act_max);
}

void ec_conv2d_any(const void *input, int in_bytes, int in_c, int in_h, int in_w,
                   const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                   int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                   int32_t pad_value, int dilation_h, int dilation_w, int groups,
                   void *output, int out_bytes, int out_h, int out_w, int32_t act_min, int32_t act_max)
{
    ec_conv2d_grouped_impl(input, in_bytes, in_c, in_h, in_w, weight, bias, shift, shift_per_channel, out_c, k_h,
                           k_w, stride_h, stride_w, pad_top, pad_left, pad_value, dilation_h, dilation_w, groups,
                           output, out_bytes, out_h, out_w, act_min, act_max);
}

/* ec_conv2d.c - reference 2-D convolution (see ec_conv2d.h for ranges). */
#include "ec_conv2d.h"

#include "ec_fixed.h"

void ec_conv2d_s8(const int8_t *input, int in_c, int in_h, int in_w,
                  const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                  int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                  int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max)
{
    int oc, oy, ox, ic, ky, kx;
    for (oc = 0; oc < out_c; ++oc) {
        const int8_t *w_oc = weight + (long)oc * in_c * k_h * k_w;
        for (oy = 0; oy < out_h; ++oy) {
            const int iy0 = oy * stride_h - pad_top;
            for (ox = 0; ox < out_w; ++ox) {
                const int ix0 = ox * stride_w - pad_left;
                int32_t acc = bias != 0 ? bias[oc] : 0;
                for (ic = 0; ic < in_c; ++ic) {
                    const int8_t *x_plane = input + (long)ic * in_h * in_w;
                    const int8_t *w_ic = w_oc + (long)ic * k_h * k_w;
                    for (ky = 0; ky < k_h; ++ky) {
                        const int iy = iy0 + ky;
                        const int row_inside = iy >= 0 && iy < in_h;
                        for (kx = 0; kx < k_w; ++kx) {
                            const int ix = ix0 + kx;
                            /* a tap outside the input reads the padding: pad_value */
                            const int32_t x = row_inside && ix >= 0 && ix < in_w
                                                  ? (int32_t)x_plane[(long)iy * in_w + ix] : pad_value;
                            /* int8 * int8 fits in 15 bits; the sum is bounded (header). */
                            acc += x * (int32_t)w_ic[ky * k_w + kx];
                        }
                    }
                }
                output[((long)oc * out_h + oy) * out_w + ox] =
                    (int8_t)ec_requantize(acc, shift[shift_per_channel ? oc : 0], act_min, act_max);
            }
        }
    }
}

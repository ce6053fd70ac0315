/* ec_conv2d.c - reference 2-D convolution (see ec_conv2d.h for ranges). */
#include "ec_conv2d.h"

#include "ec_fixed.h"

static int ec_max_int(int a, int b) { return a > b ? a : b; }
static int ec_min_int(int a, int b) { return a < b ? a : b; }

void ec_conv2d_s8(const int8_t *input, int in_c, int in_h, int in_w,
                  const int8_t *weight, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                  int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                  int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max)
{
    int oc, oy, ox, ic, ky, kx;
    for (oc = 0; oc < out_c; ++oc) {
        const int8_t *w_oc = weight + (long)oc * in_c * k_h * k_w;
        for (oy = 0; oy < out_h; ++oy) {
            const int iy0 = oy * stride_h - pad_top;
            /* Rows of the kernel that land inside the input: padding adds zero. */
            const int ky_lo = ec_max_int(0, -iy0);
            const int ky_hi = ec_min_int(k_h, in_h - iy0);
            for (ox = 0; ox < out_w; ++ox) {
                const int ix0 = ox * stride_w - pad_left;
                const int kx_lo = ec_max_int(0, -ix0);
                const int kx_hi = ec_min_int(k_w, in_w - ix0);
                int32_t acc = bias != 0 ? bias[oc] : 0;
                for (ic = 0; ic < in_c; ++ic) {
                    for (ky = ky_lo; ky < ky_hi; ++ky) {
                        const int8_t *x_row = input + ((long)ic * in_h + iy0 + ky) * in_w + ix0;
                        const int8_t *w_row = w_oc + ((long)ic * k_h + ky) * k_w;
                        for (kx = kx_lo; kx < kx_hi; ++kx) {
                            /* int8 * int8 fits in 15 bits; the sum is bounded (header). */
                            acc += (int32_t)x_row[kx] * (int32_t)w_row[kx];
                        }
                    }
                }
                output[((long)oc * out_h + oy) * out_w + ox] =
                    (int8_t)ec_requantize(acc, shift[shift_per_channel ? oc : 0], act_min, act_max);
            }
        }
    }
}

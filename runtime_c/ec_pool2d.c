/* ec_pool2d.c - reference pooling kernels (see ec_pool2d.h). */
#include "ec_pool2d.h"

#include "ec_fixed.h"

static int ec_pool_max_int(int a, int b) { return a > b ? a : b; }
static int ec_pool_min_int(int a, int b) { return a < b ? a : b; }

/* The in-bounds part [lo, hi) of the window at output position o along one axis. */
static void ec_pool_window(int o, int stride, int pad, int k, int size, int *lo, int *hi)
{
    *lo = ec_pool_max_int(o * stride - pad, 0);
    *hi = ec_pool_min_int(o * stride - pad + k, size);
}

void ec_maxpool2d_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                     int stride_h, int stride_w, int pad_top, int pad_left,
                     int8_t *output, int out_h, int out_w)
{
    int c, oy, ox, y, x;
    for (c = 0; c < channels; ++c) {
        const int8_t *plane = input + (long)c * in_h * in_w;
        for (oy = 0; oy < out_h; ++oy) {
            int y_lo, y_hi, x_lo, x_hi;
            ec_pool_window(oy, stride_h, pad_top, k_h, in_h, &y_lo, &y_hi);
            for (ox = 0; ox < out_w; ++ox) {
                ec_pool_window(ox, stride_w, pad_left, k_w, in_w, &x_lo, &x_hi);
                int8_t best = INT8_MIN;
                for (y = y_lo; y < y_hi; ++y) {
                    for (x = x_lo; x < x_hi; ++x) {
                        const int8_t v = plane[(long)y * in_w + x];
                        best = v > best ? v : best;
                    }
                }
                *output++ = best;
            }
        }
    }
}

void ec_avgpool2d_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                     int stride_h, int stride_w, int pad_top, int pad_left,
                     int8_t *output, int out_h, int out_w, int count_include_pad, int scale_shift)
{
    int c, oy, ox, y, x;
    for (c = 0; c < channels; ++c) {
        const int8_t *plane = input + (long)c * in_h * in_w;
        for (oy = 0; oy < out_h; ++oy) {
            int y_lo, y_hi, x_lo, x_hi;
            ec_pool_window(oy, stride_h, pad_top, k_h, in_h, &y_lo, &y_hi);
            for (ox = 0; ox < out_w; ++ox) {
                ec_pool_window(ox, stride_w, pad_left, k_w, in_w, &x_lo, &x_hi);
                int32_t sum = 0;
                int32_t n = count_include_pad ? (int32_t)(k_h * k_w) : (int32_t)((y_hi - y_lo) * (x_hi - x_lo));
                for (y = y_lo; y < y_hi; ++y) {
                    for (x = x_lo; x < x_hi; ++x) {
                        sum += plane[(long)y * in_w + x];
                    }
                }
                sum *= (int32_t)1 << scale_shift; /* bounded: see header */
                *output++ = (int8_t)ec_clamp32(ec_div_round(sum, n), INT8_MIN, INT8_MAX);
            }
        }
    }
}

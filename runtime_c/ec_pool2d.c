/* ec_pool2d.c - reference pooling kernels (see ec_pool2d.h). */
#include "ec_pool2d.h"

#include "ec_fixed.h"
#include "ec_tensor.h"

static int ec_pool_max_int(int a, int b) { return a > b ? a : b; }
static int ec_pool_min_int(int a, int b) { return a < b ? a : b; }

/* The in-bounds part [lo, hi) of the window at output position o along one axis. */
static void ec_pool_window(int o, int stride, int pad, int k, int size, int *lo, int *hi)
{
    *lo = ec_pool_max_int(o * stride - pad, 0);
    *hi = ec_pool_min_int(o * stride - pad + k, size);
}

static inline void ec_maxpool2d_impl(const void *input, int bytes, int channels, int in_h, int in_w, int k_h,
                                     int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                                     void *output, int out_h, int out_w)
{
    int c, oy, ox, y, x;
    long o = 0;
    for (c = 0; c < channels; ++c) {
        const long plane = (long)c * in_h * in_w;
        for (oy = 0; oy < out_h; ++oy) {
            int y_lo, y_hi, x_lo, x_hi;
            ec_pool_window(oy, stride_h, pad_top, k_h, in_h, &y_lo, &y_hi);
            for (ox = 0; ox < out_w; ++ox) {
                int32_t best = ec_type_min(bytes);
                ec_pool_window(ox, stride_w, pad_left, k_w, in_w, &x_lo, &x_hi);
                for (y = y_lo; y < y_hi; ++y) {
                    for (x = x_lo; x < x_hi; ++x) {
                        const int32_t v = ec_get(input, plane + (long)y * in_w + x, bytes);
                        best = v > best ? v : best;
                    }
                }
                ec_put(output, o++, bytes, best);
            }
        }
    }
}

static inline void ec_avgpool2d_impl(const void *input, int in_bytes, int channels, int in_h, int in_w, int k_h,
                                     int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                                     void *output, int out_bytes, int out_h, int out_w, int count_include_pad,
                                     int scale_shift, int32_t offset)
{
    int c, oy, ox, y, x;
    long o = 0;
    for (c = 0; c < channels; ++c) {
        const long plane = (long)c * in_h * in_w;
        for (oy = 0; oy < out_h; ++oy) {
            int y_lo, y_hi, x_lo, x_hi;
            ec_pool_window(oy, stride_h, pad_top, k_h, in_h, &y_lo, &y_hi);
            for (ox = 0; ox < out_w; ++ox) {
                int32_t sum = 0, n;
                ec_pool_window(ox, stride_w, pad_left, k_w, in_w, &x_lo, &x_hi);
                n = count_include_pad ? (int32_t)(k_h * k_w) : (int32_t)((y_hi - y_lo) * (x_hi - x_lo));
                for (y = y_lo; y < y_hi; ++y) {
                    for (x = x_lo; x < x_hi; ++x) {
                        sum += ec_get(input, plane + (long)y * in_w + x, in_bytes);
                    }
                }
                if (scale_shift >= 0) {
                    sum *= (int32_t)1 << scale_shift; /* bounded: see header */
                } else {
                    n *= (int32_t)1 << -scale_shift; /* a coarser output: |scale_shift| <= 9 */
                }
                ec_put(output, o++, out_bytes,
                       ec_clamp32(ec_div_round(sum, n) + offset, ec_type_min(out_bytes), ec_type_max(out_bytes)));
            }
        }
    }
}

void ec_maxpool2d_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                     int stride_h, int stride_w, int pad_top, int pad_left,
                     int8_t *output, int out_h, int out_w)
{
    ec_maxpool2d_impl(input, 1, channels, in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left, output,
                      out_h, out_w);
}

void ec_avgpool2d_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                     int stride_h, int stride_w, int pad_top, int pad_left,
                     int8_t *output, int out_h, int out_w, int count_include_pad, int scale_shift,
                     int32_t offset)
{
    ec_avgpool2d_impl(input, 1, channels, in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left, output, 1,
                      out_h, out_w, count_include_pad, scale_shift, offset);
}

void ec_maxpool2d_any(const void *input, int bytes, int channels, int in_h, int in_w, int k_h, int k_w,
                      int stride_h, int stride_w, int pad_top, int pad_left, void *output, int out_h, int out_w)
{
    ec_maxpool2d_impl(input, bytes, channels, in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left, output,
                      out_h, out_w);
}

void ec_avgpool2d_any(const void *input, int in_bytes, int channels, int in_h, int in_w, int k_h, int k_w,
                      int stride_h, int stride_w, int pad_top, int pad_left, void *output, int out_bytes,
                      int out_h, int out_w, int count_include_pad, int scale_shift, int32_t offset)
{
    ec_avgpool2d_impl(input, in_bytes, channels, in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left,
                      output, out_bytes, out_h, out_w, count_include_pad, scale_shift, offset);
}

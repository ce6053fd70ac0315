/*
 * ec_pool2d_fast.h - fast max and average pooling, bit-exact with ec_pool2d.h:
 * the same arguments, the same ranges, the same results.
 */
#ifndef EC_POOL2D_FAST_H
#define EC_POOL2D_FAST_H

#include <stdint.h>

void ec_maxpool2d_fast_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                          int stride_h, int stride_w, int pad_top, int pad_left,
                          int8_t *output, int out_h, int out_w);

void ec_avgpool2d_fast_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                          int stride_h, int stride_w, int pad_top, int pad_left,
                          int8_t *output, int out_h, int out_w, int count_include_pad, int scale_shift,
                          int32_t offset);

#endif /* EC_POOL2D_FAST_H */

/*
 * ec_pool2d.h - max and average pooling on int8 (C, H, W) tensors.
 * Max pooling keeps the input's frac bits; average pooling rescales (see below).
 */
#ifndef EC_POOL2D_H
#define EC_POOL2D_H

#include <stdint.h>

/* Max over each window; padded positions are skipped (they never win).
 * 0 <= pad_top < k_h, 0 <= pad_left < k_w, so every window holds an input. */
void ec_maxpool2d_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                     int stride_h, int stride_w, int pad_top, int pad_left,
                     int8_t *output, int out_h, int out_w);

/* Average over each window, rescaled to the output's frac bits and rounded half up
 * (numerics rule 5), plus a constant offset, then saturated to int8:
 *   out = sat(floor((2*S + n) / (2*n)) + offset),  S = sum * 2^scale_shift,
 * n = k_h*k_w if count_include_pad, else the number of in-bounds elements, and
 * scale_shift = f_out - f_in (a negative one, into a narrower output of _any or a signed mean of
 * unsigned codes, divides by n * 2^-scale_shift instead).  The compiler keeps
 * 2*128*k_h*k_w*2^scale_shift + n below 2^31, so nothing overflows.  offset = z_out - z_in *
 * 2^scale_shift (an integer) carries the zero points (numerics.py; an input with z_in != 0 is never
 * padded): it is 0 for signed codes, and |offset| <= 128 * 2^scale_shift + 128 keeps the sum within
 * int32. */
void ec_avgpool2d_s8(const int8_t *input, int channels, int in_h, int in_w, int k_h, int k_w,
                     int stride_h, int stride_w, int pad_top, int pad_left,
                     int8_t *output, int out_h, int out_w, int count_include_pad, int scale_shift,
                     int32_t offset);

/* The same pools with int8 or int16 activations (bytes = 1 or 2, see ec_tensor.h); max pooling
 * keeps the element type, average pooling may widen or narrow it (|sum| <= 2^15 * k_h * k_w). */
void ec_maxpool2d_any(const void *input, int bytes, int channels, int in_h, int in_w, int k_h, int k_w,
                      int stride_h, int stride_w, int pad_top, int pad_left, void *output, int out_h, int out_w);
void ec_avgpool2d_any(const void *input, int in_bytes, int channels, int in_h, int in_w, int k_h, int k_w,
                      int stride_h, int stride_w, int pad_top, int pad_left, void *output, int out_bytes,
                      int out_h, int out_w, int count_include_pad, int scale_shift, int32_t offset);

#endif /* EC_POOL2D_H */

/* ec_layout.c - concatenation and strided copies: transposition, slicing (see ec_layout.h). */
#include "ec_layout.h"

#include <string.h>

#include "ec_fixed.h"
#include "ec_tensor.h"

static inline void ec_concat_part_impl(const void *input, int in_bytes, void *output, int out_bytes, int outer,
                                       int inner, int out_inner, int shift)
{
    int o, i;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const int32_t v = ec_get(input, (long)o * inner + i, in_bytes);
            ec_put(output, (long)o * out_inner + i, out_bytes, shift == 0 ? v : ec_align32(v, -shift));
        }
    }
}

void ec_concat_part_s8(const int8_t *input, int8_t *output, int outer, int inner, int out_inner, int shift,
                       int32_t zero_in, int32_t zero_out)
{
    int o, i;
    if (zero_in == zero_out) {  /* signed codes, or both unsigned: the zero points cancel */
        if (shift == 0 || zero_in == 0) {
            ec_concat_part_impl(input, 1, output, 1, outer, inner, out_inner, shift);
            return;
        }
    }
    /* |q - z| <= 255, shifted right: no overflow; the sum with zero_out is clamped to int8 */
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const int32_t v = ec_align32((int32_t)input[(long)o * inner + i] - zero_in, -shift);
            output[(long)o * out_inner + i] = (int8_t)ec_clamp32(v + zero_out, -128, 127);
        }
    }
}

void ec_concat_part_any(const void *input, int in_bytes, void *output, int out_bytes, int outer, int inner,
                        int out_inner, int shift)
{
    ec_concat_part_impl(input, in_bytes, output, out_bytes, outer, inner, out_inner, shift);
}

static inline void ec_strided_copy_impl(const void *input, void *output, int bytes, int ndim,
                                        const int32_t *out_shape, const int32_t *in_strides)
{
    int32_t index[6] = {0, 0, 0, 0, 0, 0};
    long total = 1, n, offset = 0;
    int k;
    for (k = 0; k < ndim; ++k) {
        total *= out_shape[k];
    }
    for (n = 0; n < total; ++n) {
        ec_put(output, n, bytes, ec_get(input, offset, bytes));
        /* odometer increment of the output index, keeping the input offset in step */
        for (k = ndim - 1; k >= 0; --k) {
            offset += in_strides[k];
            if (++index[k] < out_shape[k]) {
                break;
            }
            offset -= (long)in_strides[k] * out_shape[k];
            index[k] = 0;
        }
    }
}

void ec_strided_copy_s8(const int8_t *input, int8_t *output, int ndim, const int32_t *out_shape,
                        const int32_t *in_strides)
{
    ec_strided_copy_impl(input, output, 1, ndim, out_shape, in_strides);
}

void ec_strided_copy_any(const void *input, void *output, int bytes, int ndim, const int32_t *out_shape,
                         const int32_t *in_strides)
{
    ec_strided_copy_impl(input, output, bytes, ndim, out_shape, in_strides);
}

void ec_copy_s8(const int8_t *input, int8_t *output, int n)
{
    int i = 0;
#if defined(__ARM_FEATURE_UNALIGNED) || !defined(__arm__) /* else a 4-byte memcpy may be a call (Cortex-M0+) */
    if ((((uintptr_t)input | (uintptr_t)output) & 3u) == 0) { /* a word at a time: a cell's per-step copies */
        for (; i + 4 <= n; i += 4) {
            uint32_t w;
            memcpy(&w, input + i, 4); /* one LDR / STR each: both aligned */
            memcpy(output + i, &w, 4);
        }
    }
#endif
    for (; i < n; ++i) {
        output[i] = input[i];
    }
}

void ec_crop_s8(const int8_t *input, int c, int in_h, int in_w, int y0, int x0, int8_t *output, int h, int w)
{
    int ch, y;
    if (w == in_w) { /* whole rows: each plane's window is one run */
        for (ch = 0; ch < c; ++ch) {
            memcpy(output + (long)ch * h * w, input + ((long)ch * in_h + y0) * in_w, (size_t)h * (size_t)w);
        }
        return;
    }
    for (ch = 0; ch < c; ++ch) {
        const int8_t *row = input + ((long)ch * in_h + y0) * in_w + x0;
        for (y = 0; y < h; ++y, row += in_w, output += w) {
            memcpy(output, row, (size_t)w);
        }
    }
}

void ec_paste_s8(const int8_t *input, int c, int h, int w, int8_t *output, int out_h, int out_w, int y0, int x0)
{
    int ch, y;
    if (w == out_w) { /* whole rows: each plane's window is one run */
        for (ch = 0; ch < c; ++ch) {
            memcpy(output + ((long)ch * out_h + y0) * out_w, input + (long)ch * h * w, (size_t)h * (size_t)w);
        }
        return;
    }
    for (ch = 0; ch < c; ++ch) {
        int8_t *row = output + ((long)ch * out_h + y0) * out_w + x0;
        for (y = 0; y < h; ++y, row += out_w, input += w) {
            memcpy(row, input, (size_t)w);
        }
    }
}

void ec_align_s8(const int8_t *input, int8_t *output, int n, int shift)
{
    int i;
    for (i = 0; i < n; ++i) {
        output[i] = (int8_t)ec_requantize(input[i], shift, -128, 127);  /* |input| <= 2^7: no overflow */
    }
}

void ec_fill_s8(int8_t *output, int8_t v, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        output[i] = v;
    }
}

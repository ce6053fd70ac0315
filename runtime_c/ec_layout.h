/* ec_layout.h - kernels that move int8 data: concatenation and transposition. */
#ifndef EC_LAYOUT_H
#define EC_LAYOUT_H

#include <stdint.h>

/*
 * One input of a concatenation: `outer` blocks of `inner` values go to output blocks of
 * `out_inner` values (starting at `output`, already offset to this input's slice), each
 * value rounding-shifted right by shift >= 0 (the input's frac bits minus the output's;
 * 0 is a plain copy).  With zero points (codes q = v + z): out = sat8(align(q - zero_in, -shift)
 * + zero_out); equal zero points and shift 0 are a plain copy.
 */
void ec_concat_part_s8(const int8_t *input, int8_t *output, int outer, int inner, int out_inner, int shift,
                       int32_t zero_in, int32_t zero_out);

/*
 * Strided copy of an ndim-dimensional block (1 <= ndim <= 6): the output element with index
 * (i0, ..., i{n-1}) in out_shape is input[sum(i_k * in_strides[k])].  A transposition passes
 * the input's strides permuted into output order; a slice passes input + its start offset and
 * the strides times the steps.  Not in place.
 */
void ec_strided_copy_s8(const int8_t *input, int8_t *output, int ndim, const int32_t *out_shape,
                        const int32_t *in_strides);

/* The same with int8 or int16 elements (bytes = 1 or 2, see ec_tensor.h); a concatenation's
 * output may be wider than a part (its values are copied, then rounded if shift > 0). */
void ec_concat_part_any(const void *input, int in_bytes, void *output, int out_bytes, int outer, int inner,
                        int out_inner, int shift);
void ec_strided_copy_any(const void *input, void *output, int bytes, int ndim, const int32_t *out_shape,
                         const int32_t *in_strides);

/* Copy n values (buffers must not overlap), and set n values to v (recurrent states). */
void ec_copy_s8(const int8_t *input, int8_t *output, int n);
void ec_fill_s8(int8_t *output, int8_t v, int n);

/* Copy n values into another format (a recurrent state's initial value): each value
 * requantized by shift (ec_requantize: > 0 rounds half up, <= 0 shifts left), saturated to int8. */
void ec_align_s8(const int8_t *input, int8_t *output, int n, int shift);

/* Patch-based execution (edgecompile/passes/patches.py): copy the window of rows [y0, y0 + h) and
 * columns [x0, x0 + w) of each of c planes (in_h x in_w) into c contiguous h x w planes, and the
 * reverse, c planes of h x w into that window of c planes out_h x out_w. */
void ec_crop_s8(const int8_t *input, int c, int in_h, int in_w, int y0, int x0, int8_t *output, int h, int w);
void ec_paste_s8(const int8_t *input, int c, int h, int w, int8_t *output, int out_h, int out_w, int y0, int x0);

#endif /* EC_LAYOUT_H */

/*
 * ec_linear.h - fully connected layer, int8 activations and weights, int32 accumulator.
 */
#ifndef EC_LINEAR_H
#define EC_LINEAR_H

#include <stdint.h>

/*
 * ec_linear_s8 - y = sat(rounding_shift(bias + W x, shift)).
 *   input    in_features values, frac bits f_in
 *   weight   out_features rows of in_features values (row-major, PyTorch's layout)
 *   bias     out_features values with frac bits f_in + f_w[o], or a null pointer
 *   shift    shifts s = f_in + f_w[o] - f_out, -24 <= s <= 31: one per output if
 *            shift_per_channel, else shift[0] for all
 *   act_min, act_max  output clamp ([0, 127] with a fused ReLU)
 * Overflow: the compiler proves in_features * max|w| * 128 + |bias| <= 2^31 - 1.
 */
void ec_linear_s8(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                  const int8_t *shift, int shift_per_channel, int out_features, int8_t *output, int32_t act_min, int32_t act_max);

/* The same layer with int8 or int16 activations (in_bytes, out_bytes = 1 or 2, see ec_tensor.h);
 * with int16 inputs the proven bound is in_features * max|w| * 2^15 + |bias| <= 2^31 - 1. */
void ec_linear_any(const void *input, int in_bytes, int in_features, const int8_t *weight, const int32_t *bias,
                   const int8_t *shift, int shift_per_channel, int out_features, void *output, int out_bytes,
                   int32_t act_min, int32_t act_max);

#endif /* EC_LINEAR_H */

/*
 * ec_linear_fast.h - fast fully connected layer, bit-exact with ec_linear_s8 (ec_linear.h).
 * The weights are packed (ec_fast.h) in groups of 4 rows.
 */
#ifndef EC_LINEAR_FAST_H
#define EC_LINEAR_FAST_H

#include <stdint.h>

#include "ec_fast.h"

/*
 * ec_linear_fast_s8 - the arguments of ec_linear_s8, with
 *   weight        packed by pack_rows(w, group=4, word_order=(0, 1, 2, 3)), EC_ALIGNED(4)
 *   round_folded  as for ec_conv2d_fast_s8 (ec_fast.h)
 * Same ranges and the same overflow bound as ec_linear_s8.  No scratch.  An input that
 * is 4-byte aligned (any arena buffer) is read a word at a time, faster.
 */
void ec_linear_fast_s8(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                       const int8_t *shift, int shift_per_channel, int out_features, int8_t *output,
                       int32_t act_min, int32_t act_max, int round_folded);

/*
 * ec_linear_fast_s8_s16 - the same layer writing int16 outputs (a model output of a few values,
 * --output-bits): bit-exact with ec_linear_any(input, 1, ..., output, 2, act_min, act_max), with
 * act_min, act_max within int16 and shifts >= -(31 - 16).  output: int16 values at any alignment.
 */
void ec_linear_fast_s8_s16(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                           const int8_t *shift, int shift_per_channel, int out_features, void *output,
                           int32_t act_min, int32_t act_max, int round_folded);

#endif /* EC_LINEAR_FAST_H */

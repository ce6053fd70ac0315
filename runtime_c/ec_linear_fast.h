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

/*
 * ec_dual_linear_fast_s8 - a recurrent cell's gates, y = Wa a + Wb b + bias: the arguments of
 * ec_dual_linear_s8 (ec_recurrent.h), bit-exact with it, with
 *   wa, wb        each packed by pack_rows(w, group=4, word_order=(0, 1, 2, 3)), EC_ALIGNED(4)
 *   round_folded  bit 0: acc_bound + 2^(shift_out - 1) <= 2^31 - 1 and shift_out >= 0 (ec_fast.h);
 *                 bit 1: exactly one down shift d > 0, and that product's max |W x| + 2^(d - 1) <=
 *                 2^31 - 1 (its rounding constant may start its accumulator)
 *   table         null, or the 256-entry table of the activation that follows (ec_lut_s8's): then
 *                 output[o] = table[y[o] + 128], the gate's table lookup done in the same pass
 * Inputs a, b at any alignment (4-byte aligned ones are read a word at a time on DSP cores).
 * No scratch.
 */
void ec_dual_linear_fast_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int8_t *b, int nb,
                            const int8_t *wb, int down_b, const int32_t *bias, int out, int shift_out,
                            int8_t *output, int32_t act_min, int32_t act_max, int round_folded, const int8_t *table);

/*
 * ec_gated_linear_fast_s8 - a GRU's n gate, y = Wa a + bias_a + g (Wb b + bias_b): the arguments of
 * ec_gated_linear_s8 (ec_recurrent.h), bit-exact with it, with
 *   wa, wb        each packed by pack_rows(w, group=4, word_order=(0, 1, 2, 3)), EC_ALIGNED(4)
 *   round_folded  bit 0: acc_bound + 2^(shift_out - 1) <= 2^31 - 1 and shift_out >= 0 (ec_fast.h);
 *                 bit 1: down_p > 0 and max |g v| + 2^(down_p - 1) <= 2^31 - 1
 *   table         null, or the 256-entry table of the activation that follows (the gate's tanh)
 * Inputs a, b, g at any alignment.  No scratch.
 */
void ec_gated_linear_fast_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int32_t *bias_a,
                             const int8_t *b, int nb, const int8_t *wb, const int32_t *bias_b, int shift_b,
                             const int8_t *g, int down_p, int out, int shift_out, int8_t *output, int32_t act_min,
                             int32_t act_max, int round_folded, const int8_t *table);

#endif /* EC_LINEAR_FAST_H */

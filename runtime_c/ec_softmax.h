/*
 * ec_softmax.h - softmax over the last axis with an exact integer rule.
 *
 * For each row of n int8 logits x (frac bits f_in):
 *   e_i = exp_table[max(x) - x_i]        exp_table[d] = round(exp(-d * 2^-f_in) * 2^15), d in 0..255
 *   S   = sum(e_i)                        <= n * 2^15; n < 32768 keeps 2 * S < 2^31
 *   y_i = sat(floor((2 * e_i * 2^7 + S) / (2 * S)))   rule 5: round half up of e_i * 128 / S
 * The output has 7 frac bits (probabilities; 1.0 saturates to 127).  2 * e_i * 2^7 <= 2^23.
 */
#ifndef EC_SOFTMAX_H
#define EC_SOFTMAX_H

#include <stdint.h>

void ec_softmax_s8(const int8_t *input, int8_t *output, int rows, int n, const uint16_t *exp_table);

#endif /* EC_SOFTMAX_H */

/*
 * ec_recurrent.h - the kernel recurrent cells need beyond the others: two matrix-vector
 * products summed into one int32 accumulator (W x_t + U h_{t-1} + b).
 */
#ifndef EC_RECURRENT_H
#define EC_RECURRENT_H

#include <stdint.h>

/*
 * y[o] = sat(rounding_shift(align(Wa[o].a, -down_a) + align(Wb[o].b, -down_b) + bias[o], shift_out))
 * Wa: out x na int8 (row-major), Wb: out x nb.  down_a, down_b >= 0 round each product down to
 * the coarser of their formats (0 = none); bias has that format.  The compiler proves
 * |Wa.a| + |Wb.b| + |bias| <= 2^31 - 1 for every row, and each rounded term is no larger
 * than the term itself, so no sum overflows.
 */
void ec_dual_linear_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int8_t *b, int nb,
                       const int8_t *wb, int down_b, const int32_t *bias, int out, int shift_out,
                       int8_t *output, int32_t act_min, int32_t act_max);

#endif /* EC_RECURRENT_H */

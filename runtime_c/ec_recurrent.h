/*
 * ec_recurrent.h - the kernels recurrent cells need beyond the others: two matrix-vector
 * products summed into one int32 accumulator (W x_t + U h_{t-1} + b), and the same with the
 * second product scaled by a gate first (a GRU's n gate, W x + b + r (U h + b')).
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

/*
 * y[o] = sat(rounding_shift(align(Wa[o].a, -down_a) + align(g[o] * v[o], -down_p) + bias_a[o], shift_out))
 * with v[o] = rounding_shift(Wb[o].b + bias_b[o], shift_b): a GRU's n gate (linear_before_reset),
 * W_n x + b_in + r (U_n h + b_hn), the gate r in g.  Wa: out x na, Wb: out x nb (row-major).
 * 0 <= shift_b <= 30; down_a, down_p >= 0 (one of them 0); bias_a has the common format.
 * The compiler (ops/gated_linear.py) proves, per row: |Wb.b| + |bias_b| + 2^(shift_b - 1) <= 2^31 - 1,
 * so |v| <= 2^23 and |g * v| <= 2^30 (|g| <= 128); and |Wa.a| + |g v| + |bias_a| <= 2^31 - 1 (each
 * rounded term no larger than the term), so no sum overflows.
 */
void ec_gated_linear_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int32_t *bias_a,
                        const int8_t *b, int nb, const int8_t *wb, const int32_t *bias_b, int shift_b,
                        const int8_t *g, int down_p, int out, int shift_out, int8_t *output, int32_t act_min,
                        int32_t act_max);

#endif /* EC_RECURRENT_H */

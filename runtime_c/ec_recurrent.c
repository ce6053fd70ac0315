/* ec_recurrent.c - kernels of recurrent cells (see ec_recurrent.h). */
#include "ec_recurrent.h"

#include "ec_fixed.h"

static int32_t ec_dot_s8(const int8_t *x, const int8_t *w, int n)
{
    int32_t acc = 0;
    int i;
    for (i = 0; i < n; ++i) {
        acc += (int32_t)x[i] * (int32_t)w[i]; /* bounded: see header */
    }
    return acc;
}

void ec_dual_linear_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int8_t *b, int nb,
                       const int8_t *wb, int down_b, const int32_t *bias, int out, int shift_out,
                       int8_t *output, int32_t act_min, int32_t act_max)
{
    int o;
    for (o = 0; o < out; ++o) {
        const int32_t acc_a = ec_dot_s8(a, wa + (long)o * na, na);
        const int32_t acc_b = ec_dot_s8(b, wb + (long)o * nb, nb);
        const int32_t acc = ec_align32(acc_a, -down_a) + ec_align32(acc_b, -down_b) + bias[o];
        output[o] = (int8_t)ec_requantize(acc, shift_out, act_min, act_max);
    }
}

void ec_gated_linear_s8(const int8_t *a, int na, const int8_t *wa, int down_a, const int32_t *bias_a,
                        const int8_t *b, int nb, const int8_t *wb, const int32_t *bias_b, int shift_b,
                        const int8_t *g, int down_p, int out, int shift_out, int8_t *output, int32_t act_min,
                        int32_t act_max)
{
    int o;
    for (o = 0; o < out; ++o) {
        /* |Wb.b + bias_b| <= 2^31 - 1 and, rounded by shift_b, |v| <= 2^23: |g v| <= 2^30 */
        const int32_t v = ec_align32(ec_dot_s8(b, wb + (long)o * nb, nb) + bias_b[o], -shift_b);
        const int32_t acc_a = ec_dot_s8(a, wa + (long)o * na, na);
        const int32_t acc = ec_align32(acc_a, -down_a) + ec_align32((int32_t)g[o] * v, -down_p) + bias_a[o];
        output[o] = (int8_t)ec_requantize(acc, shift_out, act_min, act_max);
    }
}

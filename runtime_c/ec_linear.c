/* ec_linear.c - reference fully connected layer (see ec_linear.h for ranges). */
#include "ec_linear.h"

#include "ec_fixed.h"
#include "ec_tensor.h"

static inline void ec_linear_impl(const void *input, int in_bytes, int in_features, const int8_t *weight,
                                  const int32_t *bias, const int8_t *shift, int shift_per_channel, int out_features,
                                  void *output, int out_bytes, int32_t act_min, int32_t act_max)
{
    int o, i;
    for (o = 0; o < out_features; ++o) {
        const int8_t *w_row = weight + (long)o * in_features;
        int32_t acc = bias != 0 ? bias[o] : 0;
        for (i = 0; i < in_features; ++i) {
            acc += ec_get(input, i, in_bytes) * (int32_t)w_row[i]; /* bounded: see header */
        }
        ec_put(output, o, out_bytes, ec_requantize(acc, shift[shift_per_channel ? o : 0], act_min, act_max));
    }
}

void ec_linear_s8(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                  const int8_t *shift, int shift_per_channel, int out_features, int8_t *output, int32_t act_min, int32_t act_max)
{
    ec_linear_impl(input, 1, in_features, weight, bias, shift, shift_per_channel, out_features, output, 1,
                   act_min, act_max);
}

void ec_linear_any(const void *input, int in_bytes, int in_features, const int8_t *weight, const int32_t *bias,
                   const int8_t *shift, int shift_per_channel, int out_features, void *output, int out_bytes,
                   int32_t act_min, int32_t act_max)
{
    ec_linear_impl(input, in_bytes, in_features, weight, bias, shift, shift_per_channel, out_features, output,
                   out_bytes, act_min, act_max);
}

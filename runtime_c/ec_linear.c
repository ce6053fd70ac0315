/* ec_linear.c - reference fully connected layer (see ec_linear.h for ranges). */
#include "ec_linear.h"

#include "ec_fixed.h"

void ec_linear_s8(const int8_t *input, int in_features, const int8_t *weight, const int32_t *bias,
                  const int8_t *shift, int shift_per_channel, int out_features, int8_t *output, int32_t act_min, int32_t act_max)
{
    int o, i;
    for (o = 0; o < out_features; ++o) {
        const int8_t *w_row = weight + (long)o * in_features;
        int32_t acc = bias != 0 ? bias[o] : 0;
        for (i = 0; i < in_features; ++i) {
            acc += (int32_t)input[i] * (int32_t)w_row[i]; /* bounded: see header */
        }
        output[o] = (int8_t)ec_requantize(acc, shift[shift_per_channel ? o : 0], act_min, act_max);
    }
}

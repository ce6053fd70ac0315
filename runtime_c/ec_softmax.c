/* ec_softmax.c - integer softmax (rule and bounds: ec_softmax.h). */
#include "ec_softmax.h"

#include "ec_fixed.h"

void ec_softmax_s8(const int8_t *input, int8_t *output, int rows, int n, const uint16_t *exp_table)
{
    int r, i;
    for (r = 0; r < rows; ++r) {
        int32_t top = input[0], sum = 0;
        for (i = 1; i < n; ++i) {
            top = input[i] > top ? input[i] : top;
        }
        for (i = 0; i < n; ++i) {
            sum += exp_table[top - input[i]];
        }
        for (i = 0; i < n; ++i) {
            output[i] = (int8_t)ec_clamp32(ec_div_round((int32_t)exp_table[top - input[i]] << 7, sum), -128, 127);
        }
        input += n;
        output += n;
    }
}

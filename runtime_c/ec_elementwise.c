/* ec_elementwise.c - elementwise int8 kernels (see ec_elementwise.h). */
#include "ec_elementwise.h"

void ec_relu_s8(const int8_t *input, int8_t *output, int size)
{
    int i;
    for (i = 0; i < size; ++i) {
        output[i] = input[i] < 0 ? 0 : input[i];
    }
}

/* ec_layout.c - concatenation and strided copies: transposition, slicing (see ec_layout.h). */
#include "ec_layout.h"

#include "ec_fixed.h"

void ec_concat_part_s8(const int8_t *input, int8_t *output, int outer, int inner, int out_inner, int shift)
{
    int o, i;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            output[i] = shift == 0 ? input[i] : (int8_t)ec_align32(input[i], -shift);
        }
        input += inner;
        output += out_inner;
    }
}

void ec_strided_copy_s8(const int8_t *input, int8_t *output, int ndim, const int32_t *out_shape,
                        const int32_t *in_strides)
{
    int32_t index[6] = {0, 0, 0, 0, 0, 0};
    long total = 1, n, offset = 0;
    int k;
    for (k = 0; k < ndim; ++k) {
        total *= out_shape[k];
    }
    for (n = 0; n < total; ++n) {
        output[n] = input[offset];
        /* odometer increment of the output index, keeping the input offset in step */
        for (k = ndim - 1; k >= 0; --k) {
            offset += in_strides[k];
            if (++index[k] < out_shape[k]) {
                break;
            }
            offset -= (long)in_strides[k] * out_shape[k];
            index[k] = 0;
        }
    }
}

void ec_copy_s8(const int8_t *input, int8_t *output, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        output[i] = input[i];
    }
}

void ec_fill_s8(int8_t *output, int8_t v, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        output[i] = v;
    }
}

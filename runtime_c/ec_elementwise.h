/* ec_elementwise.h - elementwise int8 kernels that keep the input's frac bits. */
#ifndef EC_ELEMENTWISE_H
#define EC_ELEMENTWISE_H

#include <stdint.h>

/* y = max(x, 0); input and output may be the same buffer. */
void ec_relu_s8(const int8_t *input, int8_t *output, int size);

#endif /* EC_ELEMENTWISE_H */

/*
 * ec_tensor.h - element access for kernels that take int8 or int16 activations.
 *
 * Activations are int8 (1 byte per value) or, where the compiler keeps more precision
 * (--act-bits 16), int16 (2 bytes).  The "_any" kernels take each tensor's element size in
 * bytes and read and write through these two helpers; their "_s8" twins call the same static
 * inline body with constant 1s.  Where the C compiler inlines that body (gcc -O2 does, for
 * every kernel here) the constants fold and the _s8 twin is a plain int8 loop; at -Os it may
 * keep one shared body (ec_conv2d_grouped_impl, ec_add_impl on arm-none-eabi-gcc 12), which
 * then tests the element size per access: smaller code, a few instructions more per value.
 */
#ifndef EC_TENSOR_H
#define EC_TENSOR_H

#include <stdint.h>

static inline int32_t ec_get(const void *p, long i, int bytes)
{
    return bytes == 1 ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const int16_t *)p)[i];
}

static inline void ec_put(void *p, long i, int bytes, int32_t v)
{
    if (bytes == 1) {
        ((int8_t *)p)[i] = (int8_t)v;
    } else {
        ((int16_t *)p)[i] = (int16_t)v;
    }
}

/* The saturation range of an element of `bytes` bytes: [-2^(8b-1), 2^(8b-1) - 1]. */
static inline int32_t ec_type_min(int bytes) { return bytes == 1 ? INT8_MIN : INT16_MIN; }
static inline int32_t ec_type_max(int bytes) { return bytes == 1 ? INT8_MAX : INT16_MAX; }

#endif /* EC_TENSOR_H */

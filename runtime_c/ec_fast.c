/* ec_fast.c - requantization shared by the fast kernels (see ec_fast.h). */
#include "ec_fast.h"

int ec_fast_mode(const int8_t *shift, int shift_per_channel, int rows, int round_folded, int32_t act_min,
                 int32_t act_max)
{
    int c;
    for (c = 0; c < (shift_per_channel ? rows : 1); ++c) {
        if (shift[c] < 0) {
            return EC_RQ_EXACT; /* rule 2 for s < 0 saturates before shifting: no folding */
        }
    }
    if (!round_folded) {
        return EC_RQ_EXACT;
    }
    if (act_min == INT8_MIN && act_max == INT8_MAX) {
        return EC_RQ_S8;
    }
    return act_min == 0 && act_max == INT8_MAX ? EC_RQ_RELU : EC_RQ_CLAMP;
}

int32_t ec_fast_value(int32_t acc, int s, int mode, int32_t act_min, int32_t act_max)
{
    if (mode == EC_RQ_EXACT) {
        return ec_requantize(acc, s, act_min, act_max);
    }
    /* == rule 2 then rule 3: the rounding constant is already in acc (ec_fast.h) */
    return ec_clamp32(ec_asr32(acc, s), act_min, act_max);
}

int8_t ec_fast_output_any(int32_t acc, int s, int mode, int32_t act_min, int32_t act_max)
{
    return (int8_t)ec_fast_value(acc, s, mode, act_min, act_max);
}

/* ec_fast_store for one constant mode (inlined into each case of the switch below). */
static EC_FAST_INLINE void ec_fast_store_mode(const int32_t *acc, int rows, int per_row, long row_stride,
                                              int second, const int8_t *shift, int shift_step, int mode,
                                              int32_t act_min, int32_t act_max, int8_t *out)
{
    for (; rows > 0; --rows) {
        /* per_row 1: second is 0 and both values are acc[0], stored twice to out[0] */
        ec_fast_output2(acc[0], *shift, acc[per_row - 1], *shift, mode, act_min, act_max, out, second);
        acc += per_row;
        out += row_stride;
        shift += shift_step;
    }
}

void ec_fast_store(const int32_t *acc, int rows, int per_row, long row_stride, int second, const int8_t *shift,
                   int shift_per_channel, int mode, int32_t act_min, int32_t act_max, int8_t *out)
{
    const int step = shift_per_channel ? 1 : 0;
    if (per_row == 1) {
        second = 0;
    }
    switch (mode) {
    case EC_RQ_S8:
        ec_fast_store_mode(acc, rows, per_row, row_stride, second, shift, step, EC_RQ_S8, act_min, act_max, out);
        break;
    case EC_RQ_RELU:
        ec_fast_store_mode(acc, rows, per_row, row_stride, second, shift, step, EC_RQ_RELU, act_min, act_max, out);
        break;
    default: /* the rare modes: one out-of-line call per value anyway */
        ec_fast_store_mode(acc, rows, per_row, row_stride, second, shift, step, mode, act_min, act_max, out);
        break;
    }
}

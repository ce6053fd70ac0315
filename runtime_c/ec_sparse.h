/*
 * ec_sparse.h - fully connected and convolution layers with pruned (sparse) int8 weights, and the
 * recurrent gates' kernels whose two matrices are each stored sparse, packed or dense.
 *
 * Weights are stored per output channel ("row", K = in_features, or in_c*k_h*k_w for a
 * convolution, columns in (ic, ky, kx) order) in one of two formats
 * (edgecompile/sparse_format.py writes them):
 *   bitmap: mask[row * ceil(K/8) + j] bit b set <=> column 8j + b is nonzero; the
 *           nonzero values follow in row-major order in `values`.
 *   delta:  counts[row] entries per row; entry i advances the column by gaps[i] + 1
 *           (starting from -1 at each row) and carries values[i] (a 0 value is a
 *           filler bridging a gap longer than 255).
 * The kernels add exactly the products the dense kernels add (the others are 0 * x),
 * so results equal ec_linear_s8 / ec_conv2d_s8 bit for bit.  Every partial sum is a
 * sum over a subset of the dense terms, so the dense layer's proven int32 bound
 * (sum |w| * 128 + |bias| <= 2^31 - 1) covers it too.
 * bias may be a null pointer; shift, shift_per_channel, act_min, act_max as in ec_linear.h.
 */
#ifndef EC_SPARSE_H
#define EC_SPARSE_H

#include <stdint.h>

void ec_linear_bitmap_s8(const int8_t *input, int in_features, const uint8_t *mask, const int8_t *values,
                         const int32_t *bias, const int8_t *shift, int shift_per_channel, int out_features,
                         int8_t *output, int32_t act_min, int32_t act_max);

void ec_linear_delta_s8(const int8_t *input, int in_features, const uint16_t *counts, const uint8_t *gaps,
                        const int8_t *values, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                        int out_features, int8_t *output, int32_t act_min, int32_t act_max);

/*
 * Sparse convolutions compute "weight-stationary": each nonzero weight is decoded once
 * per output channel and added to every output position it touches, so `acc` is
 * scratch memory of out_h * out_w int32 values (from the arena).  Geometry arguments
 * as in ec_conv2d.h (the padding reads pad_value, the input's zero point: a weight adds
 * w * pad_value to the outputs whose tap lies outside the input); the delta/bitmap layout
 * covers the k_h * k_w * in_c columns of a row.
 */
void ec_conv2d_bitmap_s8(const int8_t *input, int in_c, int in_h, int in_w, const uint8_t *mask,
                         const int8_t *values, const int32_t *bias, const int8_t *shift, int shift_per_channel,
                         int out_c, int k_h, int k_w, int stride_h, int stride_w, int pad_top, int pad_left,
                         int32_t pad_value, int8_t *output, int out_h, int out_w, int32_t act_min, int32_t act_max,
                         int32_t *acc);

void ec_conv2d_delta_s8(const int8_t *input, int in_c, int in_h, int in_w, const uint16_t *counts,
                        const uint8_t *gaps, const int8_t *values, const int32_t *bias, const int8_t *shift,
                        int shift_per_channel, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                        int pad_top, int pad_left, int32_t pad_value, int8_t *output, int out_h, int out_w,
                        int32_t act_min, int32_t act_max, int32_t *acc);

/*
 * A weight matrix in any of four storages, for kernels that mix them (the two products of a
 * recurrent gate, W x_t + U h_{t-1}, each stored its own way): format selects which arrays are used.
 *   EC_PACKED: weights of 4 or fewer bits, field_bits = 4 (two per byte) or 2 (four per byte),
 *              two's complement, lowest field first, each row starting on a byte (ec_packed.h's
 *              layout, edgecompile/packing.py writes it).
 * Every storage decodes to exactly the int8 weights of the dense matrix.
 */
enum { EC_DENSE = 0, EC_BITMAP = 1, EC_DELTA = 2, EC_PACKED = 3 };

typedef struct {
    int format;
    const int8_t *dense;    /* EC_DENSE: rows x cols, row-major */
    const uint8_t *mask;    /* EC_BITMAP */
    const uint16_t *counts; /* EC_DELTA */
    const uint8_t *gaps;    /* EC_DELTA */
    const int8_t *values;   /* EC_BITMAP, EC_DELTA */
    const uint8_t *packed;  /* EC_PACKED: rows x ceil(cols * field_bits / 8) bytes */
    int field_bits;         /* EC_PACKED: 4 or 2 */
} ec_weights_s8;

/*
 * ec_dual_linear_sparse_s8 - ec_dual_linear_s8 (see ec_recurrent.h) with Wa and Wb in any storage
 * (sparse or packed): exactly the same products and rounding, so the same results.
 */
void ec_dual_linear_sparse_s8(const int8_t *a, int na, const ec_weights_s8 *wa, int down_a, const int8_t *b, int nb,
                              const ec_weights_s8 *wb, int down_b, const int32_t *bias, int out, int shift_out,
                              int8_t *output, int32_t act_min, int32_t act_max);

/*
 * ec_gated_linear_sparse_s8 - ec_gated_linear_s8 (a GRU's n gate, see ec_recurrent.h) with Wa and Wb
 * in any storage: the same products (a skipped weight is 0, its product 0), the same roundings in the
 * same order, so the same results; its proven bounds (|Wb.b| + |bias_b| + 2^(shift_b - 1) and
 * |Wa.a| + |g v| + |bias_a| within int32) hold for every partial sum, a sum of a subset of the terms.
 */
void ec_gated_linear_sparse_s8(const int8_t *a, int na, const ec_weights_s8 *wa, int down_a, const int32_t *bias_a,
                               const int8_t *b, int nb, const ec_weights_s8 *wb, const int32_t *bias_b, int shift_b,
                               const int8_t *g, int down_p, int out, int shift_out, int8_t *output, int32_t act_min,
                               int32_t act_max);

#endif /* EC_SPARSE_H */

/*
 * ec_conv2d_mve.h - the Helium (MVE) steps of the fast convolutions (ec_conv2d_fast.c), for
 * cores with EC_FAST_MVE (ec_fast.h).  They read the same packed weights as the DSP path.
 *
 * Columns (int8, in scratch): pixel A's K values at cols[0 .. K + 3], pixel B's at
 * cols[K4 + 4 ...].  The first K4 values of each are stored in the packed word order of
 * ec_fast.h, (k0, k2, k1, k3) per word, so that byte i of column word j meets byte i of
 * weight word j; the K % 4 tail values follow in the natural order.
 */
#ifndef EC_CONV2D_MVE_H
#define EC_CONV2D_MVE_H

#include <stdint.h>

#include "ec_fast.h"

#if EC_FAST_MVE
/* What the MVE step of one pixel pair needs (filled once per call by ec_conv2d_fast.c). */
struct ec_conv_mve_plan {
    const int8_t *weight, *w_tail2, *w_tail1, *w_tail_odd; /* packed weights (ec_fast.h) */
    const int8_t *shift;
    const int32_t *init; /* each row's accumulator start value (ec_fast_start) */
    int shift_step, k4, tail, pairs, out_c, mode;
    int32_t act_min, act_max;
    long out_stride; /* bytes between output planes */
};

/* Scratch of one pixel pair, from cols: the two columns (2 * (K4 + 4) bytes), then the
 * accumulators of both pixels for every channel (8 * out_c bytes). */

/* Pixel A's and B's columns of a 1x1 convolution: in_c values one plane apart from a and
 * from a + d (d = 0: B is A). */
void ec_conv_mve_cols_pointwise(const int8_t *a, long d, long plane, int k4, int tail, int8_t *cols);

/* Pixel A's and B's columns from the tap offsets table: A's value k at a[offs[k]], B's at
 * b[offs[k]]; offs holds the first K4 offsets in the packed word order
 * (ec_conv_mve_order_offsets), the tail ones in the natural order. */
void ec_conv_mve_cols(const int8_t *a, const int8_t *b, const int32_t *offs, int k4, int tail, int8_t *cols);

/* Puts the first k4 tap offsets (natural order) into the packed word order. */
void ec_conv_mve_order_offsets(int32_t *offs, int k4);

/* Every output channel of pixel A (out[c * out_stride]) and pixel B (out[c * out_stride +
 * b_step]; b_step 0: B is A, stored over it with the same value), from the columns. */
void ec_conv_mve_pixel_pair(const struct ec_conv_mve_plan *pl, const int8_t *cols, int b_step, int8_t *out);
#endif

#endif /* EC_CONV2D_MVE_H */

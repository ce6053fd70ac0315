/*
 * ec_elementwise_mve.h - elementwise kernels with Helium (MVE), bit-exact with the reference
 * ones of ec_elementwise.c, which they call on cores without MVE.
 */
#ifndef EC_ELEMENTWISE_MVE_H
#define EC_ELEMENTWISE_MVE_H

#include <stdint.h>

/* ec_add_s8 (same arguments and contract, ec_elementwise.h): four elements per vector on cores
 * with EC_FAST_MVE (ec_fast.h), else ec_add_s8 itself.  What the code generator calls. */
void ec_add_mve_s8(const int8_t *a, const int8_t *b, int8_t *output, int size, int32_t mult_a, int shift_a,
                   int32_t zero_a, int32_t mult_b, int shift_b, int32_t zero_b, int shift_out, int32_t zero_y,
                   int32_t lo, int32_t hi);

/* ec_mul_s8 (same arguments and contract, ec_elementwise.h): for two same-shape signed int8 vectors
 * with 0 <= shift <= 14, eight elements per vector with EC_FAST_MVE, else a plain rounding loop;
 * anything else through ec_mul_s8 itself.  What the code generator calls for int8 products. */
void ec_mul_mve_s8(const int8_t *a, int32_t zero_a, const int8_t *b, int32_t zero_b, int8_t *output, int outer,
                   int inner, int b_outer_stride, int b_inner_stride, int shift, int32_t lo, int32_t hi);

/* ec_lerp_s8 (same arguments and contract, ec_elementwise.h), a GRU's h' = n + z (h - n): four
 * elements per vector with EC_FAST_MVE; elsewhere, with both alignments exact left shifts and
 * round_folded (max|x| * 2^shift_g + 128 (max|x| + max|y|) + 2^(shift_out - 1) <= 2^31 - 1, shift_out
 * >= 0), two multiply-accumulates and one shift per element; anything else through ec_lerp_s8. */
void ec_lerp_mve_s8(const int8_t *a, const int8_t *b, const int8_t *g, int8_t *output, int size, int shift_a,
                    int shift_b, int shift_g, int shift_out, int32_t lo, int32_t hi, int round_folded);

#endif /* EC_ELEMENTWISE_MVE_H */

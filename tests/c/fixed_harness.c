/*
 * fixed_harness.c - evaluates runtime_c/ec_fixed.h on cases read from stdin, one per line,
 * so tests/test_c_numerics.py can compare the C rules with edgecompile/numerics.py:
 *   R acc s lo hi      ec_requantize
 *   D sum n            ec_div_round
 *   A x s              ec_asr32
 *   Q bits f lo hi     ec_quantize_float of the float with IEEE bit pattern `bits`, scale 2^f
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ec_fixed.h"

static float float_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float pow2f(int e)
{
    float r = 1.0f;
    for (; e > 0; --e) {
        r *= 2.0f;
    }
    for (; e < 0; ++e) {
        r *= 0.5f;
    }
    return r;
}

int main(void)
{
    char op;
    long a, b, c, d;
    unsigned long bits;
    while (scanf(" %c", &op) == 1) {
        if (op == 'R' && scanf("%ld %ld %ld %ld", &a, &b, &c, &d) == 4) {
            printf("%ld\n", (long)ec_requantize((int32_t)a, (int)b, (int32_t)c, (int32_t)d));
        } else if (op == 'D' && scanf("%ld %ld", &a, &b) == 2) {
            printf("%ld\n", (long)ec_div_round((int32_t)a, (int32_t)b));
        } else if (op == 'A' && scanf("%ld %ld", &a, &b) == 2) {
            printf("%ld\n", (long)ec_asr32((int32_t)a, (int)b));
        } else if (op == 'Q' && scanf("%lu %ld %ld %ld", &bits, &b, &c, &d) == 4) {
            printf("%ld\n", (long)ec_quantize_float(float_from_bits((uint32_t)bits), pow2f((int)b),
                                                    (int32_t)c, (int32_t)d));
        } else {
            fprintf(stderr, "bad line for op %c\n", op);
            return 2;
        }
    }
    return 0;
}

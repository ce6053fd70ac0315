/*
 * Runs the hand-written dot_s8_marked (dot_s8.S) and the same dot product in
 * C, each between two profile marks, over 1000 known int8 pairs; exits 0 if
 * both sums are right. Marks 1-2 bracket the assembly, marks 3-4 the C code.
 * It also multiplies two floats: on hard-float targets that is an FPU
 * instruction, which faults unless the reset handler switched the FPU on.
 */
#include <stdint.h>

#include "ec_platform.h"

#define DOT_N 1000

int32_t dot_s8_marked(const int8_t *a, const int8_t *b, uint32_t n);

static int8_t a[DOT_N];
static int8_t b[DOT_N];

/* noinline: the marks bracket one call, as they bracket a layer in a model. */
__attribute__((noinline)) static int32_t dot_s8_c(const int8_t *x, const int8_t *y, uint32_t n)
{
    int32_t sum = 0;
    uint32_t i;

    for (i = 0; i < n; ++i) {
        sum += (int32_t)x[i] * y[i];
    }
    return sum;
}

int main(void)
{
    volatile float half = 0.5f; /* volatile: computed at run time */
    int32_t expected = 0;
    int32_t from_c;
    int i;

    ec_platform_init();
    if (half * 3.0f != 1.5f) {
        ec_platform_puts("dot: wrong float product");
        return 1;
    }
    for (i = 0; i < DOT_N; ++i) {
        a[i] = (int8_t)(i % 251 - 125);
        b[i] = (int8_t)(37 - i % 97);
        expected += (int32_t)a[i] * b[i];
    }
    if (dot_s8_marked(a, b, DOT_N) != expected) {
        ec_platform_puts("dot: wrong sum from assembly");
        return 1;
    }
    ec_profile_mark();
    from_c = dot_s8_c(a, b, DOT_N);
    ec_profile_mark();
    if (from_c != expected) {
        ec_platform_puts("dot: wrong sum from C");
        return 1;
    }
    ec_platform_puts("dot: ok");
    return 0;
}

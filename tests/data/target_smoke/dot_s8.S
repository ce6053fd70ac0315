/*
 * int32_t dot_s8_marked(const int8_t *a, const int8_t *b, uint32_t n), n >= 1
 *
 * A hand-written int8 dot product between two calls of ec_profile_mark, in
 * Armv6-M instructions so that it runs on every Cortex-M target. Between the
 * two marks the core executes exactly:
 *   the marker's body (returning from the first call)       K
 *   movs, movs                                               2
 *   n iterations of: ldrsb, ldrsb, muls, adds, adds, cmp, bne   7 n
 *   mov, bl                                                  2
 * so the difference of the two recorded counts is 7 n + 4 + K, where K is the
 * number of instructions of ec_profile_mark (1, "bx lr", at -Os and -O2).
 */
    .syntax unified
    .thumb
    .text
    .global dot_s8_marked
    .type dot_s8_marked, %function
    .thumb_func
dot_s8_marked:
    push    {r4-r7, lr}
    mov     r4, r0              /* a, b and n survive the marker calls */
    mov     r5, r1
    mov     r6, r2
    bl      ec_profile_mark
    movs    r0, #0              /* sum */
    movs    r3, #0              /* i */
1:
    ldrsb   r7, [r4, r3]
    ldrsb   r1, [r5, r3]
    muls    r7, r1, r7
    adds    r0, r0, r7
    adds    r3, r3, #1
    cmp     r3, r6
    bne     1b
    mov     r4, r0
    bl      ec_profile_mark
    mov     r0, r4
    pop     {r4-r7, pc}
    .size dot_s8_marked, . - dot_s8_marked

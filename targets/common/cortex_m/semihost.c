/*
 * semihost.c - the single trap into the semihosting host.
 */
#include "semihost.h"

long ec_semihost_call(int op, const void *args)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;

    /* "memory": the host reads and writes the buffers that args points to. */
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

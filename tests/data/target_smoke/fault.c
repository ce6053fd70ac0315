/* Faults on purpose: an undefined instruction (default), with
   -DSMOKE_BAD_ADDRESS=0x... a store to that address, or with -DSMOKE_UNALIGNED
   a word load from an odd address (a fault on Armv6-M, not on Armv7-M). */
#include <stdint.h>

#include "ec_platform.h"

int main(void)
{
    ec_platform_init();
    ec_platform_puts("fault: about to fault");
#if defined(SMOKE_BAD_ADDRESS)
    *(volatile uint32_t *)(uintptr_t)SMOKE_BAD_ADDRESS = 1u;
#elif defined(SMOKE_UNALIGNED)
    {
        static volatile uint32_t words[2] = {0x01020304u, 0x05060708u};
        static volatile uintptr_t one = 1u; /* unknown to the compiler, which would split the load */
        volatile uint32_t *odd = (volatile uint32_t *)((uintptr_t)words + one);
        if (*odd == 0u) { /* an LDR from an odd address */
            ec_platform_puts("fault: read zero");
        }
    }
#else
    __asm__ volatile("udf #0");
#endif
    ec_platform_puts("fault: still running");
    return 0;
}

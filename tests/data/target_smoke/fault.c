/* Faults on purpose: an undefined instruction (default), or with
   -DSMOKE_BAD_ADDRESS=0x... a store to that address. */
#include <stdint.h>

#include "ec_platform.h"

int main(void)
{
    ec_platform_init();
    ec_platform_puts("fault: about to fault");
#if defined(SMOKE_BAD_ADDRESS)
    *(volatile uint32_t *)(uintptr_t)SMOKE_BAD_ADDRESS = 1u;
#else
    __asm__ volatile("udf #0");
#endif
    ec_platform_puts("fault: still running");
    return 0;
}

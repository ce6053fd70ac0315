/* Never ends: the run must be stopped by its timeout. */
#include "ec_platform.h"

int main(void)
{
    volatile unsigned long spins = 0;

    ec_platform_init();
    for (;;) {
        ++spins;
    }
}

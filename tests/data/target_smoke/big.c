/* An image of SMOKE_BIG_BYTES bytes of constants, to overflow a part's flash. */
#include "ec_platform.h"

#ifndef SMOKE_BIG_BYTES
#define SMOKE_BIG_BYTES 1024
#endif

static const unsigned char blob[SMOKE_BIG_BYTES] = {1};

int main(void)
{
    volatile const unsigned char *p = blob;

    ec_platform_init();
    return p[SMOKE_BIG_BYTES - 1];
}

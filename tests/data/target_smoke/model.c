/* The stand-in model, in two "layers" with a profile mark after each, as a
   generated model compiled with -DEC_PROFILE does. */
#include "ec_platform.h"
#include "model.h"

#define SMOKE_KEY 0x5Au
#define SMOKE_HALF (SMOKE_SAMPLE_BYTES / 2)

void smoke_model(const unsigned char *in, unsigned char *out)
{
    int i;

    for (i = 0; i < SMOKE_HALF; ++i) {
        out[i] = (unsigned char)(in[i] ^ SMOKE_KEY);
    }
    ec_profile_mark();
    for (i = SMOKE_HALF; i < SMOKE_SAMPLE_BYTES; ++i) {
        out[i] = (unsigned char)(in[i] ^ SMOKE_KEY);
    }
    ec_profile_mark();
}

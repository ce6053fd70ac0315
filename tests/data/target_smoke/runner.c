/* A stand-in test runner: inputs.bin -> model, one sample at a time -> outputs.bin. */
#include "ec_platform.h"
#include "model.h"

/* Reads up to n bytes, across short reads; the count read, or -1. */
static long read_full(int h, unsigned char *buf, unsigned long n)
{
    unsigned long got = 0;

    while (got < n) {
        long r = ec_platform_read(h, buf + got, n - got);
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (unsigned long)r;
    }
    return (long)got;
}

static void fail(const char *why, int code)
{
    ec_platform_puts(why);
    ec_platform_exit(code);
}

int main(void)
{
    static unsigned char in[SMOKE_SAMPLE_BYTES];
    static unsigned char out[SMOKE_SAMPLE_BYTES];
    int fin, fout;
    long n;

    ec_platform_init();
    fin = ec_platform_open("inputs.bin", 0);
    fout = ec_platform_open("outputs.bin", 1);
    if (fin < 0 || fout < 0) {
        fail("smoke: cannot open inputs.bin or outputs.bin", 2);
    }
    while ((n = read_full(fin, in, sizeof in)) > 0) {
        if (n != (long)sizeof in) {
            fail("smoke: inputs.bin is not a whole number of samples", 3);
        }
        ec_profile_mark();
        smoke_model(in, out);
        if (ec_platform_write(fout, out, sizeof out) != (long)sizeof out) {
            fail("smoke: cannot write outputs.bin", 4);
        }
    }
    if (n < 0) {
        fail("smoke: cannot read inputs.bin", 5);
    }
    ec_platform_close(fin);
    ec_platform_close(fout);
    ec_platform_puts("smoke: ok");
    return 0;
}

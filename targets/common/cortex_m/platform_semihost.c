/*
 * platform_semihost.c - ec_platform over Arm semihosting (QEMU, or a board
 * under a debugger that serves semihosting, e.g. openocd "arm semihosting enable").
 *
 * File names are resolved by the host, relative to its working directory
 * (QEMU: the directory QEMU was started in).
 */
#include <stdint.h>

#include "ec_platform.h"
#include "semihost.h"

/* SYS_OPEN mode numbers: index into the fopen() mode list "r","rb",...,"w","wb",... */
#define EC_SH_MODE_READ_BINARY 1
#define EC_SH_MODE_WRITE_BINARY 5

/* Arguments are passed to the host as an array of 32-bit words (AArch32). */
typedef uintptr_t ec_sh_word;

/* volatile: GCC would otherwise call the library's strlen (about 200 bytes). */
static unsigned long ec_strlen(const volatile char *s)
{
    unsigned long n = 0;

    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

void ec_platform_init(void)
{
    /* Nothing to set up: the FPU is enabled by the reset handler, and the
       host opens files on demand. */
}

int ec_platform_open(const char *path, int write)
{
    const ec_sh_word args[3] = {
        (ec_sh_word)path,
        write ? EC_SH_MODE_WRITE_BINARY : EC_SH_MODE_READ_BINARY,
        ec_strlen(path),
    };

    return (int)ec_semihost_call(EC_SH_SYS_OPEN, args);
}

/* SYS_READ and SYS_WRITE answer with the number of bytes NOT transferred. */
static long ec_transferred(unsigned long asked, long not_done)
{
    if (not_done < 0 || (unsigned long)not_done > asked) {
        return -1;
    }
    return (long)(asked - (unsigned long)not_done);
}

long ec_platform_read(int h, void *buf, unsigned long n)
{
    const ec_sh_word args[3] = {(ec_sh_word)h, (ec_sh_word)buf, n};

    return ec_transferred(n, ec_semihost_call(EC_SH_SYS_READ, args));
}

long ec_platform_write(int h, const void *buf, unsigned long n)
{
    const ec_sh_word args[3] = {(ec_sh_word)h, (ec_sh_word)buf, n};
    long written = ec_transferred(n, ec_semihost_call(EC_SH_SYS_WRITE, args));

    return written == (long)n ? written : -1;
}

void ec_platform_close(int h)
{
    const ec_sh_word args[1] = {(ec_sh_word)h};

    (void)ec_semihost_call(EC_SH_SYS_CLOSE, args);
}

void ec_platform_puts(const char *s)
{
    /* SYS_WRITE0 prints a NUL-terminated string on the host's console
       (QEMU: its stderr). */
    (void)ec_semihost_call(EC_SH_SYS_WRITE0, s);
    (void)ec_semihost_call(EC_SH_SYS_WRITE0, "\n");
}

void ec_platform_exit(int code)
{
    /* SYS_EXIT_EXTENDED carries the code; QEMU exits with (code & 0xFF). */
    const ec_sh_word args[2] = {EC_SH_APPLICATION_EXIT, (ec_sh_word)code};

    for (;;) {
        (void)ec_semihost_call(EC_SH_SYS_EXIT_EXTENDED, args);
    }
}

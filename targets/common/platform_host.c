/*
 * platform_host.c - ec_platform on a hosted C library (Linux, macOS...).
 * Files are opened relative to the process's working directory.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ec_platform.h"

/* A runner holds two files (inputs, outputs); a few spare slots cost nothing. */
#define EC_HOST_MAX_FILES 8

static FILE *ec_files[EC_HOST_MAX_FILES];

void ec_platform_init(void)
{
}

int ec_platform_open(const char *path, int write)
{
    int h;

    for (h = 0; h < EC_HOST_MAX_FILES; ++h) {
        if (ec_files[h] == NULL) {
            ec_files[h] = fopen(path, write ? "wb" : "rb");
            return ec_files[h] != NULL ? h : -1;
        }
    }
    return -1;
}

/* The FILE behind handle h, or NULL for a handle that is not open. */
static FILE *ec_file(int h)
{
    return (h >= 0 && h < EC_HOST_MAX_FILES) ? ec_files[h] : NULL;
}

long ec_platform_read(int h, void *buf, unsigned long n)
{
    FILE *f = ec_file(h);
    size_t got;

    if (f == NULL) {
        return -1;
    }
    got = fread(buf, 1, n, f);
    return (got < n && ferror(f)) ? -1 : (long)got;
}

long ec_platform_write(int h, const void *buf, unsigned long n)
{
    FILE *f = ec_file(h);

    if (f == NULL || fwrite(buf, 1, n, f) != n) {
        return -1;
    }
    return (long)n;
}

void ec_platform_close(int h)
{
    FILE *f = ec_file(h);

    if (f != NULL) {
        fclose(f);
        ec_files[h] = NULL;
    }
}

void ec_platform_puts(const char *s)
{
    puts(s);
    fflush(stdout);
}

void ec_platform_exit(int code)
{
    exit(code); /* flushes and closes whatever the runner left open */
}

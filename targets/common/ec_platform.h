/*
 * ec_platform.h - the few services a generated test runner needs from its target.
 *
 * One implementation per kind of target (targets/common/platform_*.c,
 * targets/common/cortex_m/platform_*.c); exactly one is linked into a program.
 */
#ifndef EC_PLATFORM_H
#define EC_PLATFORM_H

/* Exit code of a program stopped by a CPU fault (HardFault handler, see startup.c). */
#define EC_EXIT_FAULT 121

void ec_platform_init(void);                       /* FPU enable, UART init, semihosting handles... */
int  ec_platform_open(const char *path, int write); /* handle >= 0, or -1 */
long ec_platform_read(int h, void *buf, unsigned long n);   /* bytes read (0 at EOF), -1 on error */
long ec_platform_write(int h, const void *buf, unsigned long n); /* bytes written, -1 on error */
void ec_platform_close(int h);
void ec_platform_puts(const char *s);              /* a line of text to the user (stdout / semihosting / UART) */
void ec_platform_exit(int code);                   /* never returns; exit code reaches the host shell (QEMU: SYS_EXIT_EXTENDED) */
void ec_profile_mark(void);                        /* noinline, does nothing; the instruction counter watches its address */

#endif /* EC_PLATFORM_H */

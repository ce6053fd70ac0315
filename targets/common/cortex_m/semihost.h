/*
 * semihost.h - Arm semihosting calls, made with "bkpt 0xAB" (Thumb).
 *
 * The debugger or QEMU (-semihosting-config enable=on) services the call.
 * Without one, the bkpt raises a HardFault (on hardware) or locks QEMU up:
 * only link this into programs that run under a semihosting host.
 * Reference: Arm "Semihosting for AArch32 and AArch64", version 2.0.
 */
#ifndef EC_SEMIHOST_H
#define EC_SEMIHOST_H

/* Operation numbers from the semihosting specification. */
enum ec_semihost_op {
    EC_SH_SYS_OPEN = 0x01,
    EC_SH_SYS_CLOSE = 0x02,
    EC_SH_SYS_WRITE0 = 0x04,
    EC_SH_SYS_WRITE = 0x05,
    EC_SH_SYS_READ = 0x06,
    EC_SH_SYS_EXIT_EXTENDED = 0x20
};

/* ADP_Stopped_ApplicationExit: "the program ended normally", given to SYS_EXIT_EXTENDED. */
#define EC_SH_APPLICATION_EXIT 0x20026u

/* One semihosting call: op in r0, pointer to its argument block in r1, result in r0. */
long ec_semihost_call(int op, const void *args);

#endif /* EC_SEMIHOST_H */

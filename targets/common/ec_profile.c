/*
 * ec_profile.c - the profiling marker.
 *
 * The QEMU instruction-count plugin (targets/qemu/plugin/insn_count.c) records
 * the running instruction total each time this function's first instruction
 * executes. It must therefore stay a real, out-of-line call: noinline keeps it
 * out of callers, and the empty volatile asm is a side effect that stops GCC
 * from deleting calls to a function it can prove does nothing.
 */
#include "ec_platform.h"

__attribute__((noinline)) void ec_profile_mark(void)
{
    __asm__ volatile("");
}

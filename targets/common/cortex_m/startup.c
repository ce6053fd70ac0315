/*
 * startup.c - reset and fault handling for every Cortex-M target, without
 * newlib's crt0 (whose semihosting start-up asks the host for stack and heap
 * and gets board-dependent answers).
 *
 * The linker script (link.ld.in) places ec_vectors first in the code region:
 * the core (and QEMU) load the initial SP and PC from its first two words.
 */
#include <stdint.h>

#include "decimal.h"
#include "ec_platform.h"

/* Defined by link.ld.in. */
extern uint32_t __ec_data_load[];
extern uint32_t __ec_data_start[];
extern uint32_t __ec_data_end[];
extern uint32_t __ec_bss_start[];
extern uint32_t __ec_bss_end[];
extern uint32_t __ec_stack_top[];

int main(void);
void ec_reset_handler(void);
void ec_fault_handler(void);

/* Coprocessor Access Control Register (Armv7-M/v8-M ARM, B3.2.20): CP10 and
   CP11 full access (bits 20-23) switch the FPU (and MVE) on. */
#define EC_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define EC_CPACR_CP10_CP11_FULL (0xFu << 20)

/* Configuration and Control Register (Armv7-M ARM, B3.2.8): UNALIGN_TRP (bit 3) makes an
   unaligned LDR/STR/LDRH/STRH fault.  Armv6-M (M0, M0+) always faults on them: there the
   bit reads as one and ignores writes.  Setting it in Armv6-M builds makes M0+ code that
   runs on a larger Armv7-M machine (qemu-m0plus-an385) fault exactly where an M0+ would. */
#define EC_SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define EC_CCR_UNALIGN_TRP (1u << 3)

/* IPSR bits 8:0 hold the number of the active exception (3 = HardFault). */
#define EC_IPSR_EXCEPTION_MASK 0x1FFu

/* Entries 0-15 are the architecture's; no device interrupt is ever enabled,
   so the device-specific entries after them are not needed. */
#define EC_CORE_VECTORS 16

/* Word 0 is the initial stack pointer, the others handler addresses. */
typedef union {
    const void *stack_top;
    void (*handler)(void);
} ec_vector;

__attribute__((section(".ec_vectors"), used))
static const ec_vector ec_vectors[EC_CORE_VECTORS] = {
    {.stack_top = __ec_stack_top},
    {.handler = ec_reset_handler},
    /* NMI, HardFault, MemManage, BusFault, UsageFault, SecureFault, SVC,
       DebugMon, PendSV, SysTick: none is expected, each one is a failure. */
    {.handler = ec_fault_handler}, {.handler = ec_fault_handler},
    {.handler = ec_fault_handler}, {.handler = ec_fault_handler},
    {.handler = ec_fault_handler}, {.handler = ec_fault_handler},
    {.handler = ec_fault_handler}, {.handler = ec_fault_handler},
    {.handler = ec_fault_handler}, {.handler = ec_fault_handler},
    {.handler = ec_fault_handler}, {.handler = ec_fault_handler},
    {.handler = ec_fault_handler}, {.handler = ec_fault_handler},
};

void ec_reset_handler(void)
{
    const uint32_t *src = __ec_data_load;
    /* volatile: GCC would otherwise turn these loops into memcpy/memset
       calls, pulling about 400 bytes of library code into every image. */
    volatile uint32_t *dst;

#if defined(__ARM_ARCH_6M__)
    EC_SCB_CCR |= EC_CCR_UNALIGN_TRP;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(__ARM_FP)
    /* Before any floating-point instruction, or it faults (NOCP UsageFault). */
    EC_SCB_CPACR |= EC_CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (dst = __ec_data_start; dst < __ec_data_end; ++dst) {
        *dst = *src++;
    }
    for (dst = __ec_bss_start; dst < __ec_bss_end; ++dst) {
        *dst = 0;
    }
    ec_platform_exit(main());
}

/* Prints which exception fired, then stops with EC_EXIT_FAULT. */
void ec_fault_handler(void)
{
    char msg[] = "edgecompile: CPU fault, exception 000";
    uint32_t ipsr;

    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ec_decimal3(msg + sizeof msg - 2, ipsr & EC_IPSR_EXCEPTION_MASK);
    ec_platform_puts(msg);
    ec_platform_exit(EC_EXIT_FAULT);
}

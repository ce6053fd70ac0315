/*
 * platform_uart_stm32.c - ec_platform on an STM32 Nucleo board without a
 * debugger: text goes out of the ST-LINK virtual COM port (8N1, polled, at
 * the reset clock); there is no file system, so open/read/write fail.
 * The wiring (clocks, pins, UART) comes from the family file, ec_stm32_vcp.
 */
#include "decimal.h"
#include "ec_platform.h"
#include "stm32_uart.h"

#define EC_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* RM0390, "USART registers": SR 0x00, DR 0x04, BRR 0x08, CR1 0x0C (UE bit 13, TE bit 3). */
const struct ec_stm32_usart_layout ec_stm32_usart_v1 = {
    .cr1 = 0x0Cu, .brr = 0x08u, .isr = 0x00u, .tdr = 0x04u, .cr1_enable = (1u << 13) | (1u << 3),
};
/* RM0385, RM0432, RM0444, "USART registers" (LPUART alike): CR1 0x00 (UE bit 0,
   TE bit 3), BRR 0x0C, ISR 0x1C, TDR 0x28. */
const struct ec_stm32_usart_layout ec_stm32_usart_v2 = {
    .cr1 = 0x00u, .brr = 0x0Cu, .isr = 0x1Cu, .tdr = 0x28u, .cr1_enable = (1u << 0) | (1u << 3),
};

/* Status bits, the same in SR (v1) and ISR (v2). */
#define EC_USART_TXE (1u << 7) /* transmit data register empty */
#define EC_USART_TC (1u << 6)  /* transmission complete */

/* GPIO registers, the same on STM32F4, F7, L4 and G0 ("GPIO registers"). */
#define EC_GPIO_MODER 0x00u
#define EC_GPIO_AFR 0x20u /* AFRL (pins 0-7), then AFRH (pins 8-15) */
#define EC_GPIO_MODE_ALTERNATE 2u

static int ec_uart_ready;

/* Hands pin `pin` of the GPIO port at `port` to alternate function `af`. */
static void ec_pin_alternate(uintptr_t port, unsigned pin, unsigned af)
{
    volatile uint32_t *afr = &EC_REG(port + EC_GPIO_AFR + 4u * (pin / 8u));
    volatile uint32_t *moder = &EC_REG(port + EC_GPIO_MODER);
    unsigned afr_shift = 4u * (pin % 8u);

    /* Function first, then mode: the pin never drives a wrong function. */
    *afr = (*afr & ~(0xFu << afr_shift)) | ((uint32_t)af << afr_shift);
    *moder = (*moder & ~(3u << (2u * pin))) | (EC_GPIO_MODE_ALTERNATE << (2u * pin));
}

static void ec_uart_wait(uint32_t status_bit)
{
    while ((EC_REG(ec_stm32_vcp.usart + ec_stm32_vcp.regs->isr) & status_bit) == 0u) {
    }
}

static void ec_uart_putc(char c)
{
    ec_uart_wait(EC_USART_TXE);
    EC_REG(ec_stm32_vcp.usart + ec_stm32_vcp.regs->tdr) = (uint8_t)c;
}

void ec_platform_init(void)
{
    const struct ec_stm32_vcp *vcp = &ec_stm32_vcp;
    int i;

    for (i = 0; i < EC_STM32_MAX_ENABLES && vcp->enable[i].reg != 0u; ++i) {
        EC_REG(vcp->enable[i].reg) |= vcp->enable[i].bits;
        (void)EC_REG(vcp->enable[i].reg); /* read back: the clock runs before the next access */
    }
    ec_pin_alternate(vcp->gpio, vcp->tx_pin, vcp->af);
    ec_pin_alternate(vcp->gpio, vcp->rx_pin, vcp->af);
    /* BRR may only change while the UART is off (UE = 0, its reset state). */
    EC_REG(vcp->usart + vcp->regs->brr) = vcp->brr;
    EC_REG(vcp->usart + vcp->regs->cr1) = vcp->regs->cr1_enable;
    ec_uart_ready = 1;
}

int ec_platform_open(const char *path, int write)
{
    (void)path;
    (void)write;
    return -1;
}

long ec_platform_read(int h, void *buf, unsigned long n)
{
    (void)h;
    (void)buf;
    (void)n;
    return -1;
}

long ec_platform_write(int h, const void *buf, unsigned long n)
{
    (void)h;
    (void)buf;
    (void)n;
    return -1;
}

void ec_platform_close(int h)
{
    (void)h;
}

void ec_platform_puts(const char *s)
{
    if (!ec_uart_ready) {
        return; /* a fault before ec_platform_init(): nowhere to print */
    }
    while (*s != '\0') {
        ec_uart_putc(*s++);
    }
    ec_uart_putc('\r');
    ec_uart_putc('\n');
}

void ec_platform_exit(int code)
{
    char msg[] = "edgecompile: exit 000";

    /* The low byte, as a semihosting host would report it. */
    ec_decimal3(msg + sizeof msg - 2, (unsigned)code & 0xFFu);
    ec_platform_puts(msg);
    if (ec_uart_ready) {
        ec_uart_wait(EC_USART_TC); /* let the last byte leave before stopping */
    }
    for (;;) {
        /* No one to return to: stay here until reset or the debugger. */
    }
}

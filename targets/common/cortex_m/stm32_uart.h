/*
 * stm32_uart.h - how one STM32 board's ST-LINK virtual COM port is wired:
 * data that a family file (platform_uart_stm32<family>.c) provides and
 * platform_uart_stm32.c uses to run a transmit-only UART at the reset clock.
 *
 * EC_UART_BAUD and EC_UART_CLOCK_HZ come from target.toml ([uart] baud,
 * clock_hz) through target.mk.
 */
#ifndef EC_STM32_UART_H
#define EC_STM32_UART_H

#include <stdint.h>

#if !defined(EC_UART_BAUD) || !defined(EC_UART_CLOCK_HZ)
#error "EC_UART_BAUD and EC_UART_CLOCK_HZ must be defined (targets/<board>/target.mk does)"
#endif

/* Register offsets and bits of one USART generation. */
struct ec_stm32_usart_layout {
    uint32_t cr1, brr, isr, tdr; /* register offsets from the USART base */
    uint32_t cr1_enable;         /* UE | TE: on, transmitter only */
};

/* Older USART (STM32F4, RM0390): SR, DR, BRR, CR1. */
extern const struct ec_stm32_usart_layout ec_stm32_usart_v1;
/* Newer USART and LPUART (STM32F7, L4, G0): CR1, ..., BRR, ..., ISR, ..., TDR. */
extern const struct ec_stm32_usart_layout ec_stm32_usart_v2;

/* BRR for 16x oversampling: the clock divided by the baud rate, rounded. */
#define EC_STM32_BRR_USART ((EC_UART_CLOCK_HZ + EC_UART_BAUD / 2u) / EC_UART_BAUD)
/* An LPUART's BRR is 256 x clock / baud (RM0432, LPUART "baud rate generation"). */
#define EC_STM32_BRR_LPUART ((256ull * EC_UART_CLOCK_HZ + EC_UART_BAUD / 2u) / EC_UART_BAUD)

/* Bits to set in a register: a clock enable, or a power switch. */
struct ec_stm32_set_bits {
    uintptr_t reg;
    uint32_t bits;
};

#define EC_STM32_MAX_ENABLES 4

struct ec_stm32_vcp {
    /* Set in this order before touching the pins; unused entries are {0, 0}. */
    struct ec_stm32_set_bits enable[EC_STM32_MAX_ENABLES];
    uintptr_t gpio;         /* GPIO port of both pins */
    unsigned tx_pin, rx_pin;
    unsigned af;            /* their alternate function number */
    uintptr_t usart;        /* USART or LPUART base address */
    const struct ec_stm32_usart_layout *regs;
    uint32_t brr;
};

/* Defined by the family file. */
extern const struct ec_stm32_vcp ec_stm32_vcp;

#endif /* EC_STM32_UART_H */

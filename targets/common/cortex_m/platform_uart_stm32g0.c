/*
 * platform_uart_stm32g0.c - NUCLEO-G071RB: USART2, TX PA2 / RX PA3
 * (alternate function 1), wired to the ST-LINK virtual COM port.
 * Addresses and bits: RM0444 ("Memory map", "RCC registers"). USART2's kernel
 * clock is PCLK after reset (RCC_CCIPR.USART2SEL = 00).
 */
#include "stm32_uart.h"

#define EC_RCC_IOPENR 0x40021034u /* RCC base 0x40021000 + 0x34 */
#define EC_RCC_IOPENR_GPIOAEN (1u << 0)
#define EC_RCC_APBENR1 0x4002103Cu /* RCC base + 0x3C */
#define EC_RCC_APBENR1_USART2EN (1u << 17)

const struct ec_stm32_vcp ec_stm32_vcp = {
    .enable = {{EC_RCC_IOPENR, EC_RCC_IOPENR_GPIOAEN}, {EC_RCC_APBENR1, EC_RCC_APBENR1_USART2EN}},
    .gpio = 0x50000000u, /* GPIOA, on the G0's IOPORT bus */
    .tx_pin = 2u,
    .rx_pin = 3u,
    .af = 1u,
    .usart = 0x40004400u, /* USART2 */
    .regs = &ec_stm32_usart_v2,
    .brr = EC_STM32_BRR_USART,
};

/*
 * platform_uart_stm32f7.c - NUCLEO-F746ZG: USART3, TX PD8 / RX PD9
 * (alternate function 7), wired to the ST-LINK virtual COM port.
 * Addresses and bits: RM0385 ("Memory map", "RCC registers"). USART3's kernel
 * clock is APB1 after reset (RCC_DCKCFGR2.USART3SEL = 00).
 */
#include "stm32_uart.h"

#define EC_RCC_AHB1ENR 0x40023830u /* RCC base 0x40023800 + 0x30 */
#define EC_RCC_AHB1ENR_GPIODEN (1u << 3)
#define EC_RCC_APB1ENR 0x40023840u /* RCC base 0x40023800 + 0x40 */
#define EC_RCC_APB1ENR_USART3EN (1u << 18)

const struct ec_stm32_vcp ec_stm32_vcp = {
    .enable = {{EC_RCC_AHB1ENR, EC_RCC_AHB1ENR_GPIODEN}, {EC_RCC_APB1ENR, EC_RCC_APB1ENR_USART3EN}},
    .gpio = 0x40020C00u, /* GPIOD */
    .tx_pin = 8u,
    .rx_pin = 9u,
    .af = 7u,
    .usart = 0x40004800u, /* USART3 */
    .regs = &ec_stm32_usart_v2,
    .brr = EC_STM32_BRR_USART,
};

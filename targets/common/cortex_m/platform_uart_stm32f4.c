/*
 * platform_uart_stm32f4.c - NUCLEO-F446RE: USART2, TX PA2 / RX PA3
 * (alternate function 7), wired to the ST-LINK virtual COM port.
 * Addresses and bits: RM0390 ("Memory map", "RCC registers").
 */
#include "stm32_uart.h"

#define EC_RCC_AHB1ENR 0x40023830u /* RCC base 0x40023800 + 0x30 */
#define EC_RCC_AHB1ENR_GPIOAEN (1u << 0)
#define EC_RCC_APB1ENR 0x40023840u /* RCC base 0x40023800 + 0x40 */
#define EC_RCC_APB1ENR_USART2EN (1u << 17)

const struct ec_stm32_vcp ec_stm32_vcp = {
    .enable = {{EC_RCC_AHB1ENR, EC_RCC_AHB1ENR_GPIOAEN}, {EC_RCC_APB1ENR, EC_RCC_APB1ENR_USART2EN}},
    .gpio = 0x40020000u, /* GPIOA */
    .tx_pin = 2u,
    .rx_pin = 3u,
    .af = 7u,
    .usart = 0x40004400u, /* USART2 */
    .regs = &ec_stm32_usart_v1,
    .brr = EC_STM32_BRR_USART,
};

/*
 * platform_uart_stm32l4.c - NUCLEO-L4R5ZI: LPUART1, TX PG7 / RX PG8
 * (alternate function 8), wired to the ST-LINK virtual COM port.
 * Addresses and bits: RM0432 ("Memory map", "RCC registers", "PWR registers").
 * LPUART1's kernel clock is PCLK1 after reset (RCC_CCIPR.LPUART1SEL = 00).
 * Port G pins 2-15 are powered from VDDIO2, which is off until PWR_CR2.IOSV
 * is set, and PWR's registers need PWR's clock.
 */
#include "stm32_uart.h"

#define EC_RCC_AHB2ENR 0x4002104Cu /* RCC base 0x40021000 + 0x4C */
#define EC_RCC_AHB2ENR_GPIOGEN (1u << 6)
#define EC_RCC_APB1ENR1 0x40021058u /* RCC base + 0x58 */
#define EC_RCC_APB1ENR1_PWREN (1u << 28)
#define EC_RCC_APB1ENR2 0x4002105Cu /* RCC base + 0x5C */
#define EC_RCC_APB1ENR2_LPUART1EN (1u << 0)
#define EC_PWR_CR2 0x40007004u /* PWR base 0x40007000 + 0x04 */
#define EC_PWR_CR2_IOSV (1u << 9)

const struct ec_stm32_vcp ec_stm32_vcp = {
    .enable = {{EC_RCC_APB1ENR1, EC_RCC_APB1ENR1_PWREN},
               {EC_PWR_CR2, EC_PWR_CR2_IOSV},
               {EC_RCC_AHB2ENR, EC_RCC_AHB2ENR_GPIOGEN},
               {EC_RCC_APB1ENR2, EC_RCC_APB1ENR2_LPUART1EN}},
    .gpio = 0x48001800u, /* GPIOG */
    .tx_pin = 7u,
    .rx_pin = 8u,
    .af = 8u,
    .usart = 0x40008000u, /* LPUART1 */
    .regs = &ec_stm32_usart_v2,
    .brr = EC_STM32_BRR_LPUART,
};

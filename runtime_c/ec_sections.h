/*
 * ec_sections.h - where the generated model's weights and arena go in memory.
 *
 * Both macros expand to nothing by default: the weights stay in .rodata and a
 * static arena in .bss.  A firmware that wants them in named linker sections
 * (external flash, a tightly coupled RAM...) defines them when compiling, e.g.
 *   -DEC_WEIGHTS_SECTION='__attribute__((section(".ec_weights")))'
 *   -DEC_ARENA_SECTION='__attribute__((section(".ec_arena")))'
 * and places those sections in its linker script.  Each expands at the start of
 * a declaration, before `static`.
 */
#ifndef EC_SECTIONS_H
#define EC_SECTIONS_H

#ifndef EC_WEIGHTS_SECTION
#define EC_WEIGHTS_SECTION
#endif

#ifndef EC_ARENA_SECTION
#define EC_ARENA_SECTION
#endif

#endif /* EC_SECTIONS_H */

"""Targets: where generated C runs, and how to build, run, size and profile it there.

Each target is described by data, ``targets/<name>/target.toml`` (see
``targets/README.md`` for the fields). This package, one module per job:

* :mod:`.spec` reads those descriptions (:func:`load_target`, :func:`list_targets`);
* :mod:`.render` writes the per-target build support into a generated project
  (:func:`write_target_support`: ``out/targets/<name>/target.mk``, a rendered
  linker script, and copies of the shared C sources), so that ``out/`` builds
  with ``make TARGET=<name>`` and no Python;
* :mod:`.toolchain` finds the compiler, binutils and QEMU (:func:`find_toolchain`);
* :mod:`.elf` measures images and lists their symbols (:func:`elf_sizes`, :func:`elf_symbols`);
* :mod:`.qemu` builds QEMU command lines (:func:`qemu_command`) and counts executed
  instructions exactly with a TCG plugin built from ``targets/qemu/plugin/insn_count.c``
  (:func:`count_instructions`).

The names below are the public interface; import them from here.
"""

from .elf import ElfSymbol, elf_sizes, elf_symbol_address, elf_symbols
from .qemu import (
    EXIT_FAULT,
    EXIT_TIMEOUT,
    MARK_SYMBOL,
    ProfileResult,
    build_plugin,
    count_instructions,
    plugin_cache_dir,
    qemu_command,
)
from .render import render_linker_script, render_target_mk, write_target_support
from .spec import KINDS, MemoryRegion, Target, TargetError, list_targets, load_target, targets_root
from .toolchain import QEMU_BINARY, Toolchain, ToolchainError, find_toolchain

__all__ = [
    "EXIT_FAULT", "EXIT_TIMEOUT", "KINDS", "MARK_SYMBOL", "QEMU_BINARY",
    "ElfSymbol", "MemoryRegion", "ProfileResult", "Target", "TargetError", "Toolchain", "ToolchainError",
    "build_plugin", "count_instructions", "elf_sizes", "elf_symbol_address", "elf_symbols", "find_toolchain",
    "list_targets", "load_target", "plugin_cache_dir", "qemu_command", "render_linker_script",
    "render_target_mk", "targets_root", "write_target_support",
]  # fmt: skip

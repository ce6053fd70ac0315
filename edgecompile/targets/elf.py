"""What an ELF file (a linked image or an object) holds: section sizes by the
memory they occupy, and symbols. Read with pyelftools."""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS

from .spec import TargetError

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile


@contextmanager
def _reading(elf: Path) -> Iterator[ELFFile]:
    """``elf`` opened with pyelftools; a file it cannot parse raises TargetError."""
    # Imported on first use: pyelftools' reader takes some 25 ms to import, which the
    # commands that never read an ELF file (export, verify, targets) need not pay.
    from elftools.elf.elffile import ELFFile

    try:
        yield ELFFile(io.BytesIO(Path(elf).read_bytes()))  # read whole (they are small): no file left open
    except ELFError as exc:
        raise TargetError(f"{elf}: not a readable ELF file ({exc})") from exc


def elf_sizes(elf: Path) -> dict[str, int]:
    """Bytes of an ELF image, by what occupies the part's memories.

    text: executable sections (vector table included); rodata: other read-only
    allocated sections (constants, weights, unwind tables); data: initialised
    writable data; bss: zero-initialised data; stack: the stack reserve
    (section .stack of our linker script). flash = text + rodata + data (the
    .data image is stored in flash); ram = data + bss + stack. Debug and other
    non-allocated sections are not counted."""
    sizes = dict.fromkeys(("text", "rodata", "data", "bss", "stack"), 0)
    with _reading(elf) as image:
        for section in image.iter_sections():
            flags = section["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC:
                continue
            if section.name == ".stack":
                kind = "stack"
            elif section["sh_type"] == "SHT_NOBITS":
                kind = "bss"
            elif flags & SH_FLAGS.SHF_EXECINSTR:
                kind = "text"
            else:
                kind = "data" if flags & SH_FLAGS.SHF_WRITE else "rodata"
            sizes[kind] += section["sh_size"]
    sizes["flash"] = sizes["text"] + sizes["rodata"] + sizes["data"]
    sizes["ram"] = sizes["data"] + sizes["bss"] + sizes["stack"]
    return sizes


@dataclass(frozen=True)
class ElfSymbol:
    name: str
    value: int
    size: int
    kind: int  # STT_OBJECT 1, STT_FUNC 2, ...
    in_flash: bool  # defined in an allocated section with contents (code, constants, the .data image)


def elf_symbols(elf: Path) -> list[ElfSymbol]:
    """The named symbols of ``elf``'s symbol tables (defined or not)."""
    from elftools.elf.enums import ENUM_ST_INFO_TYPE  # on first use, as in _reading

    symbols = []
    with _reading(elf) as image:
        # by section index: does the section occupy flash (allocated, with contents)?
        stored = [bool(s["sh_flags"] & SH_FLAGS.SHF_ALLOC) and s["sh_type"] != "SHT_NOBITS"
                  for s in image.iter_sections()]
        for symtab in image.iter_sections("SHT_SYMTAB"):
            for symbol in symtab.iter_symbols():
                if not symbol.name:
                    continue
                kind = symbol["st_info"]["type"]  # a name if pyelftools knows the type, else its number
                home = symbol["st_shndx"]  # a section index, or a name: SHN_UNDEF, SHN_ABS, SHN_COMMON
                in_flash = isinstance(home, int) and 0 < home < len(stored) and stored[home]
                symbols.append(ElfSymbol(symbol.name, symbol["st_value"], symbol["st_size"],
                                         ENUM_ST_INFO_TYPE.get(kind, kind), in_flash))
    return symbols


def elf_symbol_address(elf: Path, name: str) -> int:
    """Address of symbol ``name`` in ``elf`` (for Thumb code, with bit 0 set)."""
    for symbol in elf_symbols(elf):
        if symbol.name == name:
            return symbol.value
    raise TargetError(f"{elf}: no symbol '{name}'")

"""What an ELF file (a linked image or an object) holds: section sizes by the
memory they occupy, and symbols."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .spec import TargetError


_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 0x1, 0x2, 0x4
_SHT_SYMTAB, _SHT_NOBITS = 2, 8


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int


def _elf_sections(data: bytes, where: Path) -> list[_Section]:
    if data[:4] != b"\x7fELF":
        raise TargetError(f"{where}: not an ELF file")
    wide = data[4] == 2  # ELFCLASS64
    end = "<" if data[5] == 1 else ">"
    shoff = struct.unpack_from(end + ("Q" if wide else "I"), data, 0x28 if wide else 0x20)[0]
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A if wide else 0x2E)
    layout = end + ("IIQQQQII" if wide else "IIIIIIII")
    raw = [struct.unpack_from(layout, data, shoff + i * shentsize) for i in range(shnum)]
    names = raw[shstrndx][4]

    def name_at(offset: int) -> str:
        return data[offset : data.index(b"\0", offset)].decode()

    return [_Section(name_at(names + s[0]), s[1], s[2], s[4], s[5], s[6]) for s in raw]


def elf_sizes(elf: Path) -> dict[str, int]:
    """Bytes of an ELF image, by what occupies the part's memories.

    text: executable sections (vector table included); rodata: other read-only
    allocated sections (constants, weights, unwind tables); data: initialised
    writable data; bss: zero-initialised data; stack: the stack reserve
    (section .stack of our linker script). flash = text + rodata + data (the
    .data image is stored in flash); ram = data + bss + stack. Debug and other
    non-allocated sections are not counted."""
    sizes = dict.fromkeys(("text", "rodata", "data", "bss", "stack"), 0)
    for s in _elf_sections(Path(elf).read_bytes(), elf):
        if not s.flags & _SHF_ALLOC:
            continue
        if s.name == ".stack":
            kind = "stack"
        elif s.type == _SHT_NOBITS:
            kind = "bss"
        elif s.flags & _SHF_EXECINSTR:
            kind = "text"
        else:
            kind = "data" if s.flags & _SHF_WRITE else "rodata"
        sizes[kind] += s.size
    sizes["flash"] = sizes["text"] + sizes["rodata"] + sizes["data"]
    sizes["ram"] = sizes["data"] + sizes["bss"] + sizes["stack"]
    return sizes


@dataclass(frozen=True)
class ElfSymbol:
    name: str
    value: int
    size: int
    kind: int  # STT_OBJECT 1, STT_FUNC 2, ...
    in_flash: bool  # defined in an allocated section with contents that is not writable-only RAM


def elf_symbols(elf: Path) -> list[ElfSymbol]:
    """The named symbols of ``elf``'s symbol tables (defined or not)."""
    data = Path(elf).read_bytes()
    sections = _elf_sections(data, elf)
    wide = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    entry = struct.Struct(end + ("IBBHQQ" if wide else "IIIBBH"))
    symbols = []
    for symtab in (s for s in sections if s.type == _SHT_SYMTAB):
        strings = sections[symtab.link].offset
        for offset in range(symtab.offset, symtab.offset + symtab.size, entry.size):
            fields = entry.unpack_from(data, offset)
            if wide:
                name_off, info, _, shndx, value, size = fields
            else:
                name_off, value, size, info, _, shndx = fields
            name = data[strings + name_off : data.index(b"\0", strings + name_off)].decode()
            if not name:
                continue
            home = sections[shndx] if 0 < shndx < len(sections) else None
            in_flash = bool(home and home.flags & _SHF_ALLOC and home.type != _SHT_NOBITS)
            symbols.append(ElfSymbol(name, value, size, info & 0xF, in_flash))
    return symbols


def elf_symbol_address(elf: Path, name: str) -> int:
    """Address of symbol ``name`` in ``elf`` (for Thumb code, with bit 0 set)."""
    for symbol in elf_symbols(elf):
        if symbol.name == name:
            return symbol.value
    raise TargetError(f"{elf}: no symbol '{name}'")

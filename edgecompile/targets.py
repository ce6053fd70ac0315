"""Targets: where generated C runs, and how to build, run, size and profile it there.

Each target is described by data, ``targets/<name>/target.toml`` (see
``targets/README.md`` for the fields). This module reads those descriptions and

* writes the per-target build support into a generated project
  (:func:`write_target_support`: ``out/targets/<name>/target.mk``, a rendered
  linker script, and copies of the shared C sources), so that ``out/`` builds
  with ``make TARGET=<name>`` and no Python;
* finds the toolchain (:func:`find_toolchain`), builds QEMU command lines
  (:func:`qemu_command`), measures images (:func:`elf_sizes`);
* counts executed instructions exactly under QEMU with a TCG plugin built from
  ``targets/qemu/plugin/insn_count.c`` (:func:`count_instructions`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import string
import struct
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from edgecompile.errors import EdgeCompileError
from edgecompile.resources import resource_dir

KINDS = ("host", "qemu", "board")
EXIT_FAULT = 121  # EC_EXIT_FAULT in targets/common/ec_platform.h
EXIT_TIMEOUT = 124  # what timeout(1) returns, and what count_instructions reports
QEMU_BINARY = "qemu-system-arm"
MARK_SYMBOL = "ec_profile_mark"

_PLUGIN_SOURCES = ("insn_count.c", "qemu_plugin_api.h")
_WARNINGS = ("-Wall", "-Wextra", "-Wpedantic", "-Werror")
_INSTALL_HINTS = {  # Debian packages, by binutils prefix or program
    "arm-none-eabi-": "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi",
    QEMU_BINARY: "apt-get install --no-install-recommends qemu-system-arm",
    "": "apt-get install gcc binutils",
}
# Shared sources, relative to targets/common, by I/O choice and target family.
_IO_SOURCES = {
    "stdio": ("platform_host.c",),
    "semihost": ("cortex_m/semihost.c", "cortex_m/platform_semihost.c"),
    "uart": ("cortex_m/platform_uart_stm32.c", "cortex_m/platform_uart_{family}.c"),
}
_BASE_SOURCES = {"host": ("ec_profile.c",), "cortex_m": ("cortex_m/startup.c", "ec_profile.c")}


class TargetError(EdgeCompileError):
    """A missing or malformed target description, or a target used for what it cannot do."""


class ToolchainError(TargetError):
    """A compiler, binutils, C library or QEMU that a target needs is not installed."""


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    role: str  # "code" (flash/ROM: text, rodata, .data image), "data" (RAM) or "other"
    origin: int
    length: int


@dataclass(frozen=True)
class Target:
    """One parsed ``target.toml``."""

    name: str
    kind: str  # one of KINDS
    description: str
    compiler: str
    opt: str
    io: tuple[str, ...]  # I/O implementations; the first is the default
    path: Path  # the target.toml it came from
    core: str | None = None
    arch_flags: tuple[str, ...] = ()
    float_abi: str | None = None
    fpu: str | None = None
    stack_bytes: int = 0
    memory: tuple[MemoryRegion, ...] = ()
    qemu_machine: str | None = None
    uart: Mapping[str, Any] = field(default_factory=dict, hash=False)
    flash_tools: Mapping[str, str] = field(default_factory=dict, hash=False)  # tool -> command template

    @property
    def is_cortex_m(self) -> bool:
        return self.kind != "host"

    @property
    def tool_prefix(self) -> str:
        """Binutils prefix: "arm-none-eabi-" for arm-none-eabi-gcc, "" for gcc."""
        return self.compiler.rpartition("-")[0] + "-" if "-" in self.compiler else ""

    @property
    def machine_flags(self) -> tuple[str, ...]:
        """Flags that select the core and ABI, for compiling and for linking (multilib)."""
        flags = list(self.arch_flags)
        if self.float_abi:
            flags.append(f"-mfloat-abi={self.float_abi}")
        if self.fpu:
            flags.append(f"-mfpu={self.fpu}")
        return tuple(flags)

    def region(self, role: str) -> MemoryRegion:
        return next(r for r in self.memory if r.role == role)

    def platform_sources(self, io: str | None = None) -> tuple[str, ...]:
        """Shared C sources (relative to targets/common) for one I/O choice."""
        io = io or self.io[0]
        family = str(self.uart.get("family", ""))
        base = _BASE_SOURCES["cortex_m" if self.is_cortex_m else "host"]
        return base + tuple(s.format(family=family) for s in _IO_SOURCES[io])


@dataclass(frozen=True)
class Toolchain:
    cc: Path
    objcopy: Path
    size: Path
    qemu: Path | None  # only for kind == "qemu"


@dataclass(frozen=True)
class ProfileResult:
    """Instruction counts from one QEMU run (instructions, not cycles)."""

    marks: tuple[int, ...]  # instructions executed before each entry into ec_profile_mark
    total: int | None  # all instructions executed; None if QEMU died before reporting
    exit_code: int  # the guest's exit code; EXIT_FAULT on a fault, EXIT_TIMEOUT on timeout
    timed_out: bool
    output: str  # what the guest printed (QEMU's stderr)

    @property
    def deltas(self) -> tuple[int, ...]:
        """Instructions between consecutive marks (including one marker call)."""
        return tuple(b - a for a, b in zip(self.marks, self.marks[1:]))


# --------------------------------------------------------------------------- descriptions


def targets_root() -> Path:
    """The ``targets/`` folder: where :mod:`edgecompile.resources` finds the C
    assets (``<repo>/targets`` in a checkout, ``edgecompile/_data/targets`` in a
    wheel), else ``<sys.prefix>/share/edgecompile/targets`` (a data-files install)."""
    try:
        return resource_dir("targets")
    except EdgeCompileError as not_in_package:
        shared = Path(sys.prefix) / "share" / "edgecompile" / "targets"
        if (shared / "common" / "ec_platform.h").is_file():
            return shared
        raise TargetError(f"{not_in_package}; nor is it in {shared}") from not_in_package


def list_targets(root: Path | None = None) -> list[str]:
    """Names of all targets (folders with a target.toml), sorted."""
    root = root or targets_root()
    return sorted(p.parent.name for p in root.glob("*/target.toml"))


def load_target(name: str, root: Path | None = None) -> Target:
    """Parse and check ``targets/<name>/target.toml``."""
    root = root or targets_root()
    path = root / name / "target.toml"
    if not path.is_file():
        raise TargetError(f"unknown target '{name}' (no {path}); valid targets: {', '.join(list_targets(root))}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from exc
    return _parse_target(data, path)


# Keys of target.toml: expected type, and the kinds that must have the key.
_ARM = ("qemu", "board")
_SCHEMA: dict[str, tuple[type, tuple[str, ...]]] = {
    "name": (str, KINDS),
    "kind": (str, KINDS),
    "description": (str, KINDS),
    "compiler": (str, KINDS),
    "opt": (str, KINDS),
    "io": (list, KINDS),
    "core": (str, _ARM),
    "arch_flags": (list, _ARM),
    "float_abi": (str, _ARM),
    "fpu": (str, ()),
    "stack_bytes": (int, _ARM),
    "memory": (list, _ARM),
    "qemu": (dict, ("qemu",)),
    "uart": (dict, ()),
    "flash": (dict, ("board",)),
}


def _parse_target(data: dict[str, Any], path: Path) -> Target:
    def fail(message: str) -> TargetError:
        return TargetError(f"{path}: {message}")

    kind = data.get("kind")
    if kind not in KINDS:
        raise fail(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    for key, value in data.items():
        if key not in _SCHEMA:
            raise fail(f"unknown key '{key}' (known: {', '.join(_SCHEMA)})")
        if not isinstance(value, _SCHEMA[key][0]) or isinstance(value, bool):
            raise fail(f"'{key}' must be a {_SCHEMA[key][0].__name__}")
    missing = [key for key, (_, kinds) in _SCHEMA.items() if kind in kinds and key not in data]
    if missing:
        raise fail(f"missing {', '.join(missing)} (required for kind '{kind}')")
    if data["name"] != path.parent.name:
        raise fail(f"name '{data['name']}' differs from its folder '{path.parent.name}'")
    allowed_io = ("stdio",) if kind == "host" else ("semihost", "uart")
    if not data["io"] or any(io not in allowed_io for io in data["io"]):
        raise fail(f"io must list some of {', '.join(allowed_io)}")
    if "uart" in data["io"]:
        uart = data.get("uart", {})
        if not {"family", "baud", "clock_hz"} <= uart.keys():
            raise fail("io 'uart' needs a [uart] table with family, baud and clock_hz")
        family_file = path.parent.parent / "common" / "cortex_m" / f"platform_uart_{uart['family']}.c"
        if not family_file.is_file():
            raise fail(f"no UART code for family '{uart['family']}' ({family_file})")
    flash = data.get("flash")
    if flash is not None and not (flash and all(isinstance(command, str) for command in flash.values())):
        raise fail("[flash] must map each tool to its command line")
    if kind != "host" and data["stack_bytes"] <= 0:
        raise fail("stack_bytes must be positive")
    if data.get("float_abi", "soft") not in ("soft", "softfp", "hard"):
        raise fail("float_abi must be soft, softfp or hard")
    memory = tuple(_parse_region(r, fail) for r in data.get("memory", ()))
    if kind != "host" and sorted(r.role for r in memory if r.role != "other") != ["code", "data"]:
        raise fail("memory needs exactly one region with role 'code' and one with role 'data'")
    machine = data.get("qemu", {}).get("machine")
    if kind == "qemu" and not isinstance(machine, str):
        raise fail("[qemu] needs machine = \"<qemu -M name>\"")
    return Target(
        name=data["name"],
        kind=kind,
        description=data["description"],
        compiler=data["compiler"],
        opt=data["opt"],
        io=tuple(data["io"]),
        path=path,
        core=data.get("core"),
        arch_flags=tuple(data.get("arch_flags", ())),
        float_abi=data.get("float_abi"),
        fpu=data.get("fpu"),
        stack_bytes=data.get("stack_bytes", 0),
        memory=memory,
        qemu_machine=machine,
        uart=data.get("uart", {}),
        flash_tools=data.get("flash", {}),
    )


def _parse_region(entry: Any, fail: Callable[[str], TargetError]) -> MemoryRegion:
    try:
        region = MemoryRegion(entry["name"], entry["role"], int(entry["origin"]), int(entry["length"]))
    except (TypeError, KeyError, ValueError) as exc:
        raise fail(f"each [[memory]] needs name, role, origin and length ({exc!r})") from exc
    if region.role not in ("code", "data", "other") or region.length <= 0:
        raise fail(f"memory region {region.name}: role must be code, data or other, length > 0")
    return region


# --------------------------------------------------------------------------- generated project support


def write_target_support(out_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Write ``out_dir/targets/<name>/target.mk`` (and ``link.ld`` for Cortex-M)
    for each target (all by default), plus ``out_dir/targets/common/``: a copy
    of the shared sources. Returns the files written."""
    root = targets_root()
    targets = [load_target(name, root) for name in (names if names is not None else list_targets(root))]
    dest = Path(out_dir) / "targets"
    written = []
    for src in sorted((root / "common").rglob("*")):
        if src.is_file() and src.suffix != ".in":
            written.append(_write(dest / "common" / src.relative_to(root / "common"), src.read_bytes()))
    for target in targets:
        written.append(_write(dest / target.name / "target.mk", render_target_mk(target).encode()))
        if target.is_cortex_m:
            written.append(_write(dest / target.name / "link.ld", render_linker_script(target).encode()))
    return written


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def render_linker_script(target: Target) -> str:
    """The Cortex-M linker script of ``target``, MEMORY taken from its target.toml."""
    template = (targets_root() / "common" / "cortex_m" / "link.ld.in").read_text(encoding="utf-8")
    access = {"code": "rx", "data": "rwx", "other": "rwx"}
    memory = "\n".join(
        f"    {r.name} ({access[r.role]}) : ORIGIN = 0x{r.origin:08X}, LENGTH = 0x{r.length:08X}"
        for r in target.memory
    )
    return string.Template(template).substitute(
        target=target.name,
        memory=memory,
        code=target.region("code").name,
        data=target.region("data").name,
        stack_bytes=target.stack_bytes,
    )


def render_target_mk(target: Target) -> str:
    """The make fragment of ``target`` (the contract is in targets/README.md)."""
    exe = "model_test.elf" if target.is_cortex_m else "model_test"
    common = "targets/common"
    defines = f"-DEC_TARGET_{target.kind.upper()}=1"
    if target.uart:
        defines += f" -DEC_UART_BAUD={target.uart['baud']}u -DEC_UART_CLOCK_HZ={target.uart['clock_hz']}u"
    ldflags = "$(EC_ARCH_FLAGS)"
    if target.is_cortex_m:
        ldflags += f" -T targets/{target.name}/link.ld -nostartfiles --specs=nano.specs -Wl,--gc-sections"
        ldflags += " -Wl,--print-memory-usage"  # also puts used and available bytes into overflow errors
    lines = [
        f"# Target {target.name}: {target.description}",
        f"# Generated by edgecompile from targets/{target.name}/target.toml: change that, not this file.",
        "# Paths are relative to the generated project; the including Makefile sets",
        "# EC_PROG to the absolute path of the built program before running EC_RUN.",
        "",
        f"EC_TARGET := {target.name}",
        f"EC_TARGET_KIND := {target.kind}",
        f"EC_CC := {target.compiler}",
        f"EC_OBJCOPY := {target.tool_prefix}objcopy",
        f"EC_SIZE := {target.tool_prefix}size",
        f"EC_EXE := {exe}",
        f"EC_OPT ?= {target.opt}",
        f"EC_ARCH_FLAGS := {' '.join(target.machine_flags)}".rstrip(),
        f"EC_CFLAGS = $(EC_ARCH_FLAGS) $(EC_OPT) -ffunction-sections -fdata-sections -I{common} {defines}",
        f"EC_LDFLAGS = {ldflags}",
        "EC_LDLIBS := -lm",
        "EC_TIMEOUT ?= 60",
        "",
        f"EC_IO ?= {target.io[0]}",
    ]
    for io in target.io:
        lines.append(f"EC_PLATFORM_SRCS_{io} := " + " ".join(f"{common}/{s}" for s in target.platform_sources(io)))
    lines += [
        "ifeq ($(EC_PLATFORM_SRCS_$(EC_IO)),)",
        f"$(error edgecompile: EC_IO=$(EC_IO) is not available on {target.name}; "
        f"use one of: {' '.join(target.io)})",
        "endif",
        "EC_PLATFORM_SRCS = $(EC_PLATFORM_SRCS_$(EC_IO))",
        "",
    ]
    lines += _run_lines(target) + _size_lines(target) + _flash_lines(target)
    return "\n".join(lines) + "\n"


def _run_lines(target: Target) -> list[str]:
    if target.kind == "board":
        return ["# Boards are flashed (EC_FLASH), not run here.", "EC_RUN :=", ""]
    program = "$(EC_PROG)"
    if target.kind == "qemu":
        program = f"{QEMU_BINARY} {' '.join(_qemu_flags(target))} -kernel $(EC_PROG)"
    return [
        "# Run from the folder holding inputs.bin; the exit status is the guest's",
        f"# ({EXIT_FAULT}: CPU fault, {EXIT_TIMEOUT}: timed out, 134: QEMU aborted on a lock-up).",
        f"EC_RUN = timeout -k 5 $(EC_TIMEOUT) {program}",
        "EC_FLASH :=",
        "",
    ]


def _size_lines(target: Target) -> list[str]:
    if not target.is_cortex_m:
        return []
    return [
        f"EC_FLASH_BYTES := {target.region('code').length}",
        f"EC_RAM_BYTES := {target.region('data').length}",
        "# Refuses an image larger than the part, printing flash and RAM use against the limits.",
        "EC_CHECK_SIZE = sh targets/common/check_size.sh $(EC_SIZE) $(EC_PROG) "
        f"$(EC_FLASH_BYTES) $(EC_RAM_BYTES) {target.name}",
        "",
        "# Does not become the including Makefile's default goal.",
        "ec_saved_default_goal := $(.DEFAULT_GOAL)",
        ".PHONY: ec-check-size",
        "ec-check-size:",
        "\t@$(EC_CHECK_SIZE)",
        ".DEFAULT_GOAL := $(ec_saved_default_goal)",
    ]


def _flash_lines(target: Target) -> list[str]:
    if target.kind != "board":
        return []
    tools = list(target.flash_tools)
    lines = ["", f"EC_FLASHER ?= {tools[0]}"]
    for tool, command in target.flash_tools.items():
        images = {"elf": "$(EC_PROG)", "bin": "$(basename $(EC_PROG)).bin", "hex": "$(basename $(EC_PROG)).hex"}
        lines.append(f"EC_FLASH_WITH_{tool} = {command.format(**images)}")
    lines += [
        "# Checks the size, then flashes with $(EC_FLASHER); says clearly what is missing.",
        "EC_FLASH = $(EC_CHECK_SIZE) && "
        "if ! command -v $(firstword $(EC_FLASH_WITH_$(EC_FLASHER)) $(EC_FLASHER)) >/dev/null 2>&1; then "
        f"echo \"edgecompile: cannot flash {target.name}: '$(EC_FLASHER)' is not installed "
        f"(set EC_FLASHER to one of: {' '.join(tools)})\" >&2; exit 127; fi; "
        "$(EC_FLASH_WITH_$(EC_FLASHER)) || "
        f"{{ echo \"edgecompile: flashing {target.name} with $(EC_FLASHER) failed: is the board connected "
        "over USB, and may this user open its ST-LINK (udev rules)?\" >&2; exit 1; }",
    ]
    return lines


# --------------------------------------------------------------------------- tools


def find_toolchain(target: Target) -> Toolchain:
    """Locate the tools ``target`` needs; raise :class:`ToolchainError` naming
    every missing one and how to install it."""
    compiler_hint = _INSTALL_HINTS.get(target.tool_prefix, f"install {target.compiler} and its binutils")
    wanted = {  # role: (program, how to install it)
        "cc": (target.compiler, compiler_hint),
        "objcopy": (target.tool_prefix + "objcopy", compiler_hint),
        "size": (target.tool_prefix + "size", compiler_hint),
    }
    if target.kind == "qemu":
        wanted["qemu"] = (QEMU_BINARY, _INSTALL_HINTS[QEMU_BINARY])
    found = {role: shutil.which(program) for role, (program, _) in wanted.items()}
    problems = {f"'{wanted[role][0]}' not found on PATH": wanted[role][1] for role, at in found.items() if not at}
    if found["cc"] and target.is_cortex_m and not _has_c_library(found["cc"], target):
        problems[f"{target.compiler} has no newlib-nano C library (libc_nano.a)"] = compiler_hint
    if problems:
        hints = " && ".join(sorted(set(problems.values())))
        raise ToolchainError(f"target {target.name}: {'; '.join(problems)}. Install with: {hints}")
    paths = {role: Path(at) for role, at in found.items() if at}
    return Toolchain(paths["cc"], paths["objcopy"], paths["size"], paths.get("qemu"))


def _has_c_library(cc: str, target: Target) -> bool:
    # gcc prints the bare name back when it finds no such file for these flags.
    asked = subprocess.run(
        [cc, *target.machine_flags, "-print-file-name=libc_nano.a"], capture_output=True, text=True, check=False
    )
    return asked.returncode == 0 and Path(asked.stdout.strip()).is_absolute()


def _qemu_flags(target: Target) -> list[str]:
    if target.kind != "qemu":
        raise TargetError(f"target {target.name} is a {target.kind} target: it does not run under QEMU")
    return [
        "-M", str(target.qemu_machine),
        "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native",
    ]  # fmt: skip


def qemu_command(
    target: Target, elf: Path, plugin: Path | None = None, plugin_args: Mapping[str, str] | None = None
) -> list[str]:
    """The qemu-system-arm command line that runs ``elf`` on ``target``
    (semihosting on; guest text on stderr), optionally with a TCG plugin."""
    command = [QEMU_BINARY, *_qemu_flags(target), "-kernel", str(elf)]
    if plugin is not None:
        options = [f"file={plugin}"] + [f"{key}={value}" for key, value in (plugin_args or {}).items()]
        if any("," in option for option in options):
            raise TargetError(f"QEMU cannot pass a plugin path or argument that contains ',': {options}")
        command += ["-plugin", ",".join(options)]
    return command


# --------------------------------------------------------------------------- ELF files


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


# --------------------------------------------------------------------------- instruction counting


def plugin_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgecompile"


def build_plugin(cache_dir: Path | None = None, source_dir: Path | None = None) -> Path:
    """The instruction-count plugin, compiled on first use and again whenever
    its sources change (their hash is in the file name)."""
    source_dir = source_dir or targets_root() / "qemu" / "plugin"
    cache_dir = cache_dir or plugin_cache_dir()
    compiler = os.environ.get("CC") or next((c for c in ("gcc", "cc", "clang") if shutil.which(c)), None)
    if compiler is None:
        raise ToolchainError(f"no host C compiler (gcc, cc or clang) to build the QEMU plugin: {_INSTALL_HINTS['']}")
    flags = ["-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-std=c99", *_WARNINGS]
    digest = hashlib.sha256(" ".join([compiler, *flags]).encode())
    for name in _PLUGIN_SOURCES:
        digest.update((source_dir / name).read_bytes())
    plugin = cache_dir / f"insn_count-{digest.hexdigest()[:16]}.so"
    if plugin.is_file():
        return plugin
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = plugin.with_name(f"{plugin.name}.{os.getpid()}.tmp")  # concurrent builders do not collide
    built = subprocess.run(
        [compiler, *flags, str(source_dir / _PLUGIN_SOURCES[0]), "-o", str(partial)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if built.returncode != 0:
        raise ToolchainError(f"building the QEMU plugin failed:\n{built.stdout}{built.stderr}")
    os.replace(partial, plugin)
    return plugin


def count_instructions(target: Target, elf: Path, workdir: Path, timeout: float = 60.0) -> ProfileResult:
    """Run ``elf`` under QEMU in ``workdir`` and count executed instructions,
    recording the running total at every entry into ec_profile_mark.

    The counts are exact and repeatable: the same program and inputs give the
    same numbers on every run. A guest still running after ``timeout`` seconds
    is killed and reported with exit code EXIT_TIMEOUT."""
    find_toolchain(target)
    plugin = build_plugin()
    try:
        mark = {"mark": hex(elf_symbol_address(elf, MARK_SYMBOL))}
    except TargetError:
        mark = {}  # a program that never marks (the linker dropped the marker): total only
    with tempfile.TemporaryDirectory(prefix="ec-insn-") as scratch:
        report = Path(scratch) / "counts.txt"
        command = qemu_command(target, Path(elf).resolve(), plugin, {"out": str(report), **mark})
        exit_code, timed_out, output = _run_with_timeout(command, Path(workdir), timeout)
        if not report.is_file() and not timed_out:
            raise ToolchainError(f"QEMU did not load the instruction-count plugin {plugin}:\n{output}")
        lines = report.read_text().split("\n") if report.is_file() else []
    marks = tuple(int(line.split()[1]) for line in lines if line.startswith("mark "))
    totals = [int(line.split()[1]) for line in lines if line.startswith("total ")]
    return ProfileResult(marks, totals[-1] if totals else None, exit_code, timed_out, output)


def _run_with_timeout(command: list[str], workdir: Path, timeout: float) -> tuple[int, bool, str]:
    """Runs ``command``; returns its exit status as a shell reports it (128 + N
    for death by signal N), whether it timed out, and its stderr."""
    with subprocess.Popen(
        command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            _, errors = process.communicate(timeout=timeout)  # reads stderr as it comes: no pipe stall
            return _shell_status(process.returncode), False, errors
        except subprocess.TimeoutExpired:
            process.terminate()  # QEMU exits cleanly on SIGTERM: the plugin still writes what it counted
            try:
                _, errors = process.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                _, errors = process.communicate()
            return EXIT_TIMEOUT, True, errors


def _shell_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode

"""Target descriptions: finding and parsing ``targets/<name>/target.toml``.

The fields are documented in ``targets/README.md``; :func:`load_target` checks
them and returns a :class:`Target`.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from edgecompile.errors import EdgeCompileError
from edgecompile.resources import resource_dir

KINDS = ("host", "qemu", "board")

# Shared sources, relative to targets/common, by I/O choice and target family.
_IO_SOURCES = {
    "stdio": ("platform_host.c",),
    "semihost": ("cortex_m/semihost.c", "cortex_m/platform_semihost.c"),
    "uart": ("cortex_m/platform_uart_stm32.c", "cortex_m/platform_uart_{family}.c"),
}
_BASE_SOURCES = {"host": ("ec_profile.c",), "cortex_m": ("cortex_m/startup.c", "ec_profile.c")}


class TargetError(EdgeCompileError):
    """A missing or malformed target description, or a target used for what it cannot do."""


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

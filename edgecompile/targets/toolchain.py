"""The programs a target needs (compiler, binutils, C library, QEMU): finding
them, and saying how to install what is missing."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .spec import Target, TargetError

QEMU_BINARY = "qemu-system-arm"
INSTALL_HINTS = {  # Debian packages, by binutils prefix or program ("": the host's compiler)
    "arm-none-eabi-": "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi",
    QEMU_BINARY: "apt-get install --no-install-recommends qemu-system-arm",
    "": "apt-get install gcc binutils",
}


class ToolchainError(TargetError):
    """A compiler, binutils, C library or QEMU that a target needs is not installed."""


@dataclass(frozen=True)
class Toolchain:
    cc: Path
    objcopy: Path
    size: Path
    qemu: Path | None  # only for kind == "qemu"


def find_toolchain(target: Target) -> Toolchain:
    """Locate the tools ``target`` needs; raise :class:`ToolchainError` naming
    every missing one and how to install it."""
    compiler_hint = INSTALL_HINTS.get(target.tool_prefix, f"install {target.compiler} and its binutils")
    wanted = {  # role: (program, how to install it)
        "cc": (target.compiler, compiler_hint),
        "objcopy": (target.tool_prefix + "objcopy", compiler_hint),
        "size": (target.tool_prefix + "size", compiler_hint),
    }
    if target.kind == "qemu":
        wanted["qemu"] = (QEMU_BINARY, INSTALL_HINTS[QEMU_BINARY])
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

"""Running Cortex-M programs under QEMU, and counting the instructions they execute.

The counts come from a TCG plugin built from ``targets/qemu/plugin/insn_count.c``
(:func:`build_plugin`); :func:`count_instructions` runs a program with it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .elf import elf_symbol_address
from .spec import Target, TargetError, targets_root
from .toolchain import INSTALL_HINTS, QEMU_BINARY, ToolchainError, find_toolchain

EXIT_FAULT = 121  # EC_EXIT_FAULT in targets/common/ec_platform.h
EXIT_TIMEOUT = 124  # what timeout(1) returns, and what count_instructions reports
MARK_SYMBOL = "ec_profile_mark"

_PLUGIN_SOURCES = ("insn_count.c", "qemu_plugin_api.h")
_WARNINGS = ("-Wall", "-Wextra", "-Wpedantic", "-Werror")


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


def qemu_flags(target: Target) -> list[str]:
    """The qemu-system-arm options that emulate ``target`` (all but the program and plugin)."""
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
    command = [QEMU_BINARY, *qemu_flags(target), "-kernel", str(elf)]
    if plugin is not None:
        options = [f"file={plugin}"] + [f"{key}={value}" for key, value in (plugin_args or {}).items()]
        if any("," in option for option in options):
            raise TargetError(f"QEMU cannot pass a plugin path or argument that contains ',': {options}")
        command += ["-plugin", ",".join(options)]
    return command


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
        raise ToolchainError(f"no host C compiler (gcc, cc or clang) to build the QEMU plugin: {INSTALL_HINTS['']}")
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

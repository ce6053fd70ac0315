"""Target infrastructure: descriptions, generated build support, QEMU runs, instruction counts.

The programs built here live in tests/data/target_smoke/ with a stand-in for
the generated project's Makefile. Everything is built once per session, one
build per core at a time. Without the Arm toolchain or QEMU the tests skip, except
under CI=true, where they fail.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import IN_CI, require_tool

import edgecompile
from edgecompile import targets as T
from edgecompile.errors import EdgeCompileError
from edgecompile.targets import spec

SMOKE = Path(__file__).parent / "data" / "target_smoke"
QEMU_TARGETS = ["qemu-m0plus", "qemu-m0plus-an385", "qemu-m3", "qemu-m4", "qemu-m7", "qemu-m33", "qemu-m55"]
UNALIGNED = ("VARIANT=-unaligned", "CFLAGS=-DSMOKE_UNALIGNED")
BOARDS = ["nucleo-f446re", "nucleo-f746zg", "nucleo-g071rb", "nucleo-l4r5zi"]
OPTS = ["-Os", "-O2"]
SAMPLE_BYTES, SAMPLES = 64, 16  # tests/data/target_smoke/model.h
DOT_N = 1000  # tests/data/target_smoke/dot_main.c
CONTRACT = ["EC_CC", "EC_CFLAGS", "EC_LDFLAGS", "EC_LDLIBS", "EC_PLATFORM_SRCS", "EC_EXE",
            "EC_OBJCOPY", "EC_SIZE", "EC_RUN", "EC_FLASH", "EC_FLASH_BYTES", "EC_RAM_BYTES"]  # fmt: skip


def _missing(why: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but the toolchain is incomplete: {why}")
    pytest.skip(why)


@dataclass(frozen=True)
class Build:
    ok: bool
    log: str
    elf: Path


Builds = dict[tuple, Build]  # by (target, program, optimisation, extra make arguments)
Run = subprocess.CompletedProcess  # what make (building, running a guest) returned


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated project: target support for every target plus the smoke programs."""
    for target in ("host", "qemu-m4"):
        try:
            T.find_toolchain(T.load_target(target))
        except T.ToolchainError as exc:
            _missing(str(exc))
    require_tool("make")
    out = tmp_path_factory.mktemp("out")
    T.write_target_support(out)
    for src in SMOKE.iterdir():
        shutil.copy(src, out)
    return out


def _make(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    return subprocess.run(["make", "-C", str(project), "--no-print-directory", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


_BUILDS = (
    [(t, "smoke", o, ()) for t in ["host", *QEMU_TARGETS] for o in OPTS]
    + [(t, "smoke", o, ("images",)) for t in BOARDS for o in OPTS]
    + [("nucleo-f446re", "smoke", "-Os", ("images", "EC_IO=semihost"))]
    + [(t, "fault", "-Os", ()) for t in QEMU_TARGETS]
    + [("qemu-m3", "fault", "-Os", ("VARIANT=-store", "CFLAGS=-DSMOKE_BAD_ADDRESS=0x70000000"))]
    + [(t, "fault", "-Os", UNALIGNED) for t in ("qemu-m0plus-an385", "qemu-m3")]
    + [(t, "dot", "-O2", ()) for t in QEMU_TARGETS]
    + [("qemu-m3", "spin", "-Os", ())]
)


@pytest.fixture(scope="session")
def builds(project: Path) -> Builds:
    def build(key: tuple) -> Build:
        target, prog, opt, extra = key
        args = [f"TARGET={target}", f"PROG={prog}", f"EC_OPT={opt}", *extra]
        made = _make(project, *args)
        elf = _make(project, *args, "-s", "--eval=print-prog: ; @echo $(EC_PROG)", "print-prog").stdout.strip()
        return Build(made.returncode == 0, made.stdout + made.stderr, Path(elf))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(_BUILDS, pool.map(build, _BUILDS)))


def _built(builds: Builds, target: str, prog: str, opt: str, *extra: str) -> Build:
    result = builds[(target, prog, opt, tuple(extra))]
    assert result.ok, result.log
    return result


# --------------------------------------------------------------------------- descriptions


def test_every_description_loads_with_its_fields() -> None:
    names = T.list_targets()
    assert set(names) == {"host", *QEMU_TARGETS, *BOARDS}
    for name in names:
        target = T.load_target(name)
        assert target.name == name and target.description and target.compiler and target.io
        if target.kind == "host":
            continue
        assert target.core and target.arch_flags and target.float_abi in ("soft", "hard")
        assert target.region("code").length > 0 and target.region("data").length > 0
        assert target.stack_bytes < target.region("data").length
        if target.kind == "qemu":
            assert target.qemu_machine
        else:
            assert target.kind == "board" and target.flash_tools and target.uart["baud"] == 115200


def test_board_memories_match_the_datasheets() -> None:
    kib = 1024
    expected = {  # code origin, flash, RAM (vendor datasheets, see each target.toml)
        "nucleo-l4r5zi": (0x08000000, 2048 * kib, 640 * kib),
        "nucleo-f446re": (0x08000000, 512 * kib, 128 * kib),
        "nucleo-f746zg": (0x08000000, 1024 * kib, 320 * kib),
        "nucleo-g071rb": (0x08000000, 128 * kib, 36 * kib),
    }
    for name, (origin, flash, ram) in expected.items():
        target = T.load_target(name)
        code, data = target.region("code"), target.region("data")
        assert (code.origin, code.length, data.origin, data.length) == (origin, flash, 0x20000000, ram), name


def test_unknown_target_names_the_valid_ones() -> None:
    with pytest.raises(T.TargetError, match=r"unknown target 'qemu-m9'.*valid targets: .*qemu-m4"):
        T.load_target("qemu-m9")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "broken"\nkind = "qemu"\n', r"missing description, compiler"),
        ('name = "broken"\nkind = "qemu\n', r"not valid TOML"),
        ('name = "broken"\nkind = "phone"\n', r"kind must be one of"),
        ('name = "broken"\nkind = "host"\ncolour = 1\n', r"unknown key 'colour'"),
    ],
)  # fmt: skip
def test_bad_description_names_its_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "target.toml").write_text(text)
    with pytest.raises(T.TargetError, match=message) as caught:
        T.load_target("broken", root=tmp_path)
    assert str(tmp_path / "broken" / "target.toml") in str(caught.value)


def test_targets_root_in_a_checkout_and_an_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the data folder at the top of the checkout, not the Python package edgecompile/targets/
    assert T.targets_root() == Path(edgecompile.__file__).resolve().parent.parent / "targets"

    def not_in_package(name: str) -> Path:
        raise EdgeCompileError(f"no {name} in the package")

    monkeypatch.setattr(spec, "resource_dir", not_in_package)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    with pytest.raises(T.TargetError, match="no targets in the package; nor is it in .*share/edgecompile/targets"):
        T.targets_root()
    installed = tmp_path / "prefix" / "share" / "edgecompile" / "targets"
    (installed / "common").mkdir(parents=True)
    (installed / "common" / "ec_platform.h").write_text("")
    assert T.targets_root() == installed


# --------------------------------------------------------------------------- generated support


def test_target_mk_defines_the_contract(project: Path) -> None:
    show = "--eval=show: ; @$(foreach v,$(VARS),$(info $(v)=$(value $(v))))"
    for name in T.list_targets():
        target = T.load_target(name)
        shown = _make(project, "-s", f"TARGET={name}", f"VARS={' '.join(CONTRACT)}", show, "show")
        assert shown.returncode == 0, shown.stderr
        values = dict(line.split("=", 1) for line in shown.stdout.splitlines())
        assert set(values) == set(CONTRACT)
        assert values["EC_CC"] == target.compiler and values["EC_PLATFORM_SRCS"]
        if target.kind == "qemu":
            assert values["EC_RUN"].startswith("timeout ") and f"-M {target.qemu_machine} " in values["EC_RUN"]
            assert "-kernel $(EC_PROG)" in values["EC_RUN"]
        if target.kind == "board":
            assert values["EC_RUN"] == ""
            assert int(values["EC_FLASH_BYTES"]) == target.region("code").length
            assert int(values["EC_RAM_BYTES"]) == target.region("data").length
            assert "$(EC_FLASHER)" in values["EC_FLASH"]
        if target.is_cortex_m:
            assert f"-T targets/{name}/link.ld" in values["EC_LDFLAGS"]
            assert (project / "targets" / name / "link.ld").is_file()
    wrong_io = _make(project, "TARGET=qemu-m4", "EC_IO=uart", "VARS=EC_CC", show, "show")
    assert wrong_io.returncode != 0
    assert "EC_IO=uart is not available on qemu-m4; use one of: semihost" in wrong_io.stderr


@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("target", ["host", *QEMU_TARGETS, *BOARDS])
@pytest.mark.slow
def test_smoke_project_builds_without_warnings(builds: Builds, target: str, opt: str) -> None:
    extra = ("images",) if target in BOARDS else ()
    build = _built(builds, target, "smoke", opt, *extra)
    assert "warning:" not in build.log.lower()
    assert build.elf.is_file()
    if target in BOARDS:
        _check_board_image(T.load_target(target), build.elf)


def _check_board_image(target: T.Target, elf: Path) -> None:
    image = elf.with_suffix(".bin").read_bytes()
    assert elf.with_suffix(".hex").is_file()
    assert len(image) == T.elf_sizes(elf)["flash"]
    # The core boots from the vector table at the start of flash: SP = top of RAM, PC = Thumb code in flash.
    stack_top, reset = struct.unpack_from("<II", image)
    code, data = target.region("code"), target.region("data")
    assert stack_top == data.origin + data.length
    assert reset & 1 and code.origin <= reset < code.origin + len(image)


@pytest.mark.slow
def test_board_can_use_semihosting_instead_of_the_uart(builds: Builds) -> None:
    build = _built(builds, "nucleo-f446re", "smoke", "-Os", "images", "EC_IO=semihost")
    assert "warning:" not in build.log.lower() and "platform_semihost" in build.log


# --------------------------------------------------------------------------- running under QEMU


def _run(project: Path, target: str, prog: str, workdir: Path, *extra: str, opt: str = "-Os") -> Run:
    return _make(project, f"TARGET={target}", f"PROG={prog}", f"EC_OPT={opt}", "run", f"RUN_DIR={workdir}", *extra)


@pytest.mark.parametrize("target", ["host", *(pytest.param(t, marks=pytest.mark.qemu) for t in QEMU_TARGETS)])
@pytest.mark.slow
def test_round_trip_is_bit_exact(project: Path, builds: Builds, target: str, tmp_path: Path) -> None:
    _built(builds, target, "smoke", "-O2")
    inputs = random.Random(target).randbytes(SAMPLE_BYTES * SAMPLES)
    (tmp_path / "inputs.bin").write_bytes(inputs)
    ran = _run(project, target, "smoke", tmp_path, opt="-O2")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "smoke: ok" in ran.stdout + ran.stderr
    assert (tmp_path / "outputs.bin").read_bytes() == bytes(b ^ 0x5A for b in inputs)


@pytest.mark.qemu
@pytest.mark.parametrize("target", QEMU_TARGETS)
def test_fault_exits_with_121(project: Path, builds: Builds, target: str, tmp_path: Path) -> None:
    _built(builds, target, "fault", "-Os")
    ran = _run(project, target, "fault", tmp_path)
    assert ran.returncode != 0
    assert f"Error {T.EXIT_FAULT}" in ran.stderr and "CPU fault, exception 003" in ran.stderr
    assert "still running" not in ran.stderr


@pytest.mark.qemu
def test_store_to_a_bad_address_exits_with_121(project: Path, builds: Builds, tmp_path: Path) -> None:
    extra = ("VARIANT=-store", "CFLAGS=-DSMOKE_BAD_ADDRESS=0x70000000")  # unmapped on mps2-an385
    _built(builds, "qemu-m3", "fault", "-Os", *extra)
    ran = _run(project, "qemu-m3", "fault", tmp_path, *extra)
    assert f"Error {T.EXIT_FAULT}" in ran.stderr and "still running" not in ran.stderr


@pytest.mark.qemu
def test_m0plus_code_on_the_large_machine_faults_on_unaligned_access(project: Path, builds: Builds,
                                                                     tmp_path: Path) -> None:
    """qemu-m0plus-an385 runs Armv6-M code on an Armv7-M machine: an unaligned LDR must fault there
    as on an M0+ (the start-up code sets CCR.UNALIGN_TRP), while the M3 itself allows it."""
    for target, faults in (("qemu-m0plus-an385", True), ("qemu-m3", False)):
        _built(builds, target, "fault", "-Os", *UNALIGNED)
        ran = _run(project, target, "fault", tmp_path, *UNALIGNED)
        if faults:
            assert f"Error {T.EXIT_FAULT}" in ran.stderr and "CPU fault, exception 003" in ran.stderr, ran.stderr
            assert "still running" not in ran.stderr
        else:
            assert ran.returncode == 0 and "still running" in ran.stdout + ran.stderr, ran.stderr


@pytest.mark.qemu
def test_guest_that_never_ends_is_stopped_by_the_timeout(project: Path, builds: Builds, tmp_path: Path) -> None:
    spin = _built(builds, "qemu-m3", "spin", "-Os")
    started = time.monotonic()
    ran = _run(project, "qemu-m3", "spin", tmp_path, "EC_TIMEOUT=1")
    assert ran.returncode != 0 and f"Error {T.EXIT_TIMEOUT}" in ran.stderr
    assert time.monotonic() - started < 10
    counted = T.count_instructions(T.load_target("qemu-m3"), spin.elf, tmp_path, timeout=1)
    assert counted.timed_out and counted.exit_code == T.EXIT_TIMEOUT
    assert counted.total is not None and counted.total > 1_000_000  # reported although stopped


# --------------------------------------------------------------------------- instruction counts


def _marker_length(elf: Path) -> int:
    """Instructions in ec_profile_mark, read from the disassembly."""
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", f"--disassemble={T.MARK_SYMBOL}", str(elf)],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    body = listing.split(f"<{T.MARK_SYMBOL}>:", 1)[1]
    return len(re.findall(r"^\s+[0-9a-f]+:\s", body, flags=re.MULTILINE))


@pytest.mark.qemu
@pytest.mark.parametrize("target", QEMU_TARGETS)
def test_instruction_counts_are_exact_and_repeatable(builds: Builds, target: str, tmp_path: Path) -> None:
    elf = _built(builds, target, "dot", "-O2").elf
    description = T.load_target(target)
    first = T.count_instructions(description, elf, tmp_path)
    second = T.count_instructions(description, elf, tmp_path)
    assert first.exit_code == 0, first.output
    assert (first.marks, first.total) == (second.marks, second.total)
    assert len(first.marks) == 4 and first.total is not None and first.total > first.marks[-1]
    # dot_s8.S: 7 instructions per element, 4 around the loop, plus the marker's body.
    assert first.deltas[0] == 7 * DOT_N + 4 + _marker_length(elf) == 7005


@pytest.mark.qemu
def test_profile_marks_follow_the_runner(project: Path, builds: Builds, tmp_path: Path) -> None:
    elf = _built(builds, "qemu-m4", "smoke", "-O2").elf
    (tmp_path / "inputs.bin").write_bytes(bytes(SAMPLE_BYTES * SAMPLES))
    counted = T.count_instructions(T.load_target("qemu-m4"), elf, tmp_path)
    assert counted.exit_code == 0 and len(counted.marks) == 3 * SAMPLES  # before, and after each of 2 layers
    per_sample = [counted.marks[i + 3] - counted.marks[i] for i in range(0, 3 * SAMPLES - 3, 3)]
    assert len(set(per_sample)) == 1  # every sample costs the same


def test_plugin_is_rebuilt_when_its_source_changes(tmp_path: Path) -> None:
    require_tool("gcc")
    source = tmp_path / "src"
    shutil.copytree(T.targets_root() / "qemu" / "plugin", source)
    first = T.build_plugin(cache_dir=tmp_path / "cache", source_dir=source)
    built_at = first.stat().st_mtime_ns
    assert T.build_plugin(cache_dir=tmp_path / "cache", source_dir=source) == first
    assert first.stat().st_mtime_ns == built_at
    with (source / "insn_count.c").open("a") as changed:
        changed.write("/* changed */\n")
    second = T.build_plugin(cache_dir=tmp_path / "cache", source_dir=source)
    assert second != first and second.is_file()


# --------------------------------------------------------------------------- sizes and flashing


def test_oversized_image_is_refused_with_its_sizes(project: Path) -> None:
    big = ("TARGET=nucleo-g071rb", "PROG=big")
    too_big = _make(project, *big, "VARIANT=-200k", "CFLAGS=-DSMOKE_BIG_BYTES=200000")
    assert too_big.returncode != 0
    assert "region `FLASH' overflowed by" in too_big.stderr and "128 KB" in too_big.stdout
    fits = (*big, "VARIANT=-100k", "CFLAGS=-DSMOKE_BIG_BYTES=100000")
    assert _make(project, *fits, "check-size").returncode == 0
    refused = _make(project, *fits, "check-size", "EC_FLASH_BYTES=65536")
    assert refused.returncode != 0
    assert re.search(r"needs \d+ bytes of flash, has 65536", refused.stderr), refused.stderr


@pytest.mark.slow
def test_elf_sizes_agree_with_binutils(builds: Builds) -> None:
    elf = _built(builds, "nucleo-g071rb", "smoke", "-Os", "images").elf
    sizes = T.elf_sizes(elf)
    berkeley = subprocess.run(["arm-none-eabi-size", "-B", str(elf)], capture_output=True, text=True, check=True)
    text, data, bss = map(int, berkeley.stdout.splitlines()[1].split()[:3])
    assert sizes["flash"] == text + data and sizes["ram"] == data + bss
    assert sizes["stack"] == T.load_target("nucleo-g071rb").stack_bytes and sizes["text"] > 0
    assert T.elf_sizes(_built(builds, "host", "smoke", "-O2").elf)["text"] > 0  # 64-bit host ELF too


@pytest.mark.slow
def test_elf_symbols_agree_with_binutils(builds: Builds, tmp_path: Path) -> None:
    elf = _built(builds, "nucleo-g071rb", "smoke", "-Os", "images").elf
    listed = subprocess.run(["arm-none-eabi-nm", "-S", "--defined-only", str(elf)], capture_output=True, text=True,
                            check=True).stdout.splitlines()  # fmt: skip
    # nm: address, size (for symbols that have one), type letter (code, constants and data are in flash), name
    theirs = sorted((f[3], int(f[0], 16), int(f[1], 16), f[2].upper() in "TRDW") for f in map(str.split, listed)
                    if len(f) == 4)  # fmt: skip
    ours = sorted((s.name, s.value & ~1 if s.kind == 2 else s.value, s.size, s.in_flash)  # nm drops the Thumb bit
                  for s in T.elf_symbols(elf) if s.size)  # fmt: skip
    assert ours == theirs and any(name == T.MARK_SYMBOL for name, *_ in ours)
    (tmp_path / "not.elf").write_text("not an ELF file")
    for read in (T.elf_sizes, T.elf_symbols):
        with pytest.raises(T.TargetError, match="not a readable ELF file"):
            read(tmp_path / "not.elf")


@pytest.mark.slow
def test_flash_says_what_is_missing(project: Path, builds: Builds, tmp_path: Path) -> None:
    _built(builds, "nucleo-f446re", "smoke", "-Os", "images")
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("make", "sh", "sed", "arm-none-eabi-size"):
        (tools / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    env = {**os.environ, "PATH": str(tools)}
    missing = _make(project, "TARGET=nucleo-f446re", "PROG=smoke", "flash", env=env)
    assert missing.returncode != 0 and "'openocd' is not installed" in missing.stderr
    (tools / "openocd").write_text("#!/bin/sh\necho 'Error: open failed' >&2\nexit 1\n")
    (tools / "openocd").chmod(0o755)
    no_board = _make(project, "TARGET=nucleo-f446re", "PROG=smoke", "flash", env=env)
    assert no_board.returncode != 0 and "is the board connected" in no_board.stderr


# --------------------------------------------------------------------------- tools


def test_missing_toolchain_is_reported_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    expected = r"'arm-none-eabi-gcc' not found.*'qemu-system-arm' not found.*Install with: apt-get"
    with pytest.raises(T.ToolchainError, match=expected):
        T.find_toolchain(T.load_target("qemu-m55"))


def test_qemu_command() -> None:
    target = T.load_target("qemu-m33")
    command = T.qemu_command(target, Path("/p/a.elf"), Path("/c/i.so"), {"out": "/t/o.txt", "mark": "0x2d"})
    assert command[:3] == ["qemu-system-arm", "-M", "mps2-an505"]
    assert command[command.index("-kernel") + 1] == "/p/a.elf"
    assert command[-2:] == ["-plugin", "file=/c/i.so,out=/t/o.txt,mark=0x2d"]
    with pytest.raises(T.TargetError, match="','"):
        T.qemu_command(target, Path("a.elf"), Path("/c/i.so"), {"out": "/t/a,b"})
    with pytest.raises(T.TargetError, match="does not run under QEMU"):
        T.qemu_command(T.load_target("nucleo-f446re"), Path("a.elf"))

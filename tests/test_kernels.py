"""The fast kernels (runtime_c/ec_*_fast.c) against the reference kernels, byte for byte.

tests/kernels/gen_vectors.py makes random layers (odd channel counts, K % 4 != 0, in_c = 1,
1x1 and non-square kernels, padding on each side read as 0, -128 (the zero point of unsigned
ReLU codes) or another pad value, strides 1-3, extreme weights and inputs,
every shift case, bias or none, clamps) with the weights packed by the code generator's own
function; tests/kernels/harness.c runs both kernels on each and compares every output byte,
on the host (gcc -O2, clang -O2, ASan/UBSan) and under QEMU on Cortex-M0+, M4 (DSP path and
portable path) and M55.  Plus the packing, the folding rule, warning-free compiles for every
target, and the generated model calling the fast kernels.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_run, on_every_core, require_tool
from edgecompile.ops.fast_kernels import LINEAR_WORD_ORDER, WORD_ORDER, pack_rows, round_folded
from edgecompile.resources import resource_dir
from edgecompile.targets import list_targets, load_target, write_target_support

KERNELS_DIR = Path(__file__).resolve().parent / "kernels"
sys.path.insert(0, str(KERNELS_DIR))
import gen_vectors  # noqa: E402

FAST_FILES = ("ec_fast", "ec_conv2d_fast", "ec_conv2d_mve", "ec_depthwise_fast", "ec_linear_fast", "ec_linear_mve",
              "ec_pool2d_fast", "ec_depthwise_mve", "ec_pool2d_mve", "ec_elementwise_mve")
WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror")
CASES = 500


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("kernel-cases") / "cases.bin"
    cases = gen_vectors.make_cases(seed=7, count=CASES) + gen_vectors.extreme_cases()
    gen_vectors.write_cases(path, cases)
    return path, len(cases)


def _project(tmp_path: Path, targets: list[str], cases: Path) -> Path:
    """A folder laid out like a generated project: runtime/, targets/, the harness, cases.bin."""
    shutil.copytree(resource_dir("runtime_c"), tmp_path / "runtime")
    for name in ("harness.c", "Makefile"):
        shutil.copy(KERNELS_DIR / name, tmp_path / name)
    shutil.copy(cases, tmp_path / "cases.bin")
    write_target_support(tmp_path, targets)
    return tmp_path


def _run(project: Path, target: str, build: str, extra: str = "", opt: str | None = None, cc: str = "") -> str:
    return make_run(project, target, build, extra, opt, cc, timeout=240)


def _check(output: str, count: int) -> None:
    found = re.search(r"kernels: (\d+) passed, (\d+) failed", output)
    assert found, output[-2000:]
    assert (int(found.group(1)), int(found.group(2))) == (count, 0), output[-2000:]


# --------------------------------------------------------------------------- Python side


def test_pack_rows_matches_the_documented_layout(rng):
    """Every value lands where runtime_c/ec_fast.h says, and nothing is added."""
    for rows, k, group, paired, order in ((5, 9, 2, True, WORD_ORDER), (7, 27, 4, False, LINEAR_WORD_ORDER),
                                          (3, 4, 2, True, WORD_ORDER), (6, 2, 2, True, WORD_ORDER),
                                          (9, 31, 4, False, LINEAR_WORD_ORDER), (1, 1, 2, True, WORD_ORDER),
                                          (4, 7, 2, True, WORD_ORDER), (6, 13, 4, False, WORD_ORDER)):
        w = rng.integers(-128, 128, size=(rows, k)).astype(np.int8)
        packed = pack_rows(w, group, paired, order)
        assert packed.dtype == np.int8 and packed.size == rows * k
        k4 = k - k % 4
        expect = []
        full = rows - rows % group
        for g in range(0, full, group):
            for j in range(k4 // 4):
                for r in range(g, g + group):
                    expect += [w[r, 4 * j + i] for i in order]
        for r in range(full, rows):
            for j in range(k4 // 4):
                expect += [w[r, 4 * j + i] for i in order]
        tail = k % 4
        if paired:
            pairs = rows - rows % 2
            if tail >= 2:
                for r in range(0, pairs, 2):
                    expect += [w[r, k4], w[r + 1, k4], w[r, k4 + 1], w[r + 1, k4 + 1]]
            if tail % 2:
                for r in range(0, pairs, 2):
                    expect += [w[r, k - 1], w[r + 1, k - 1]]
            for r in range(pairs, rows):
                expect += list(w[r, k4:])
        else:
            for r in range(rows):
                expect += list(w[r, k4:])
        assert packed.tolist() == [int(v) for v in expect], (rows, k, group, paired)


def test_round_folded_refuses_what_could_overflow():
    w = np.full((2, 3), -128, dtype=np.int8)  # sum |w| * 128 = 3 * 2^14
    room = 2**31 - 1 - 3 * 2**14
    assert round_folded(w, np.array([room - 2**4, 0]), np.array([5, 5])) == 1  # 2^(5-1) fits exactly
    assert round_folded(w, np.array([room - 2**4 + 1, 0]), np.array([5, 5])) == 0
    assert round_folded(w, np.array([room, 0]), np.array([0])) == 1  # s = 0 adds nothing
    assert round_folded(w, None, np.array([3, -1])) == 0  # a negative shift never folds
    assert round_folded(w, None, np.array([31])) == 1


# --------------------------------------------------------------------------- C, host


@pytest.mark.slow
def test_host_gcc_and_clang_match_the_reference(cases_file, tmp_path):
    require_tool("gcc", "clang", "make")
    path, count = cases_file
    project = _project(tmp_path, ["host"], path)
    _check(_run(project, "host", "gcc"), count)
    _check(_run(project, "host", "clang", cc="clang"), count)


@pytest.mark.slow
def test_host_sanitizers_find_nothing(cases_file, tmp_path):
    require_tool("gcc", "make")
    path, count = cases_file
    project = _project(tmp_path, ["host"], path)
    _check(_run(project, "host", "asan", extra="-g -fsanitize=address,undefined -fno-sanitize-recover=all"), count)


def test_cases_cover_the_depthwise_and_grouped_shapes(cases_file):
    """The generated cases reach every path of ec_conv2d_grouped_fast_s8 and the edges the brief names."""
    cases = [c for c in gen_vectors.make_cases(seed=7, count=CASES) + gen_vectors.extreme_cases()
             if c["op"] == "grouped"]
    dw = [c for c in cases if c["in_c"] == c["groups"]]
    assert len(cases) >= 100 and len(dw) < len(cases)  # depthwise and grouped (in_c / groups > 1)
    assert any(c["k_h"] == c["k_w"] == 3 and c["stride_w"] == 1 and c["dilation_w"] == 1 for c in dw)
    assert any(c["k_h"] == c["k_w"] == 3 and c["stride_w"] == 2 and c["dilation_w"] == 1 for c in dw)
    assert any(c["out_c"] > c["in_c"] for c in dw)  # channel multiplier > 1
    assert any(max(c["dilation_h"], c["dilation_w"]) > 1 for c in dw)
    assert any(c["in_c"] % 4 for c in dw) and any(c["out_w"] % 2 for c in dw)
    assert any(c["pad_top"] and c["pad_left"] for c in dw)
    assert any(c["k_h"] != c["k_w"] for c in dw)
    wide = [c for c in dw if c["k_w"] >= 4 and c["dilation_w"] == 1]  # the DSP path's taps in groups of 4
    assert any(c["stride_w"] == 1 for c in wide) and any(c["stride_w"] == 2 for c in wide)
    assert any(np.all(c["input"] == -128) for c in dw) and any(np.all(c["input"] == 127) for c in dw)
    assert any(c["per_channel"] for c in dw) and any(not c["folded"] for c in dw)


def test_cases_cover_int16_linear_outputs():
    """ec_linear_fast_s8_s16 (a model's int16 logits) meets every clamp, folded and exact modes,
    left shifts, rows in groups of 4 and left over, and inputs at every alignment."""
    cases = [c for c in gen_vectors.make_cases(seed=7, count=CASES) if c["op"] == "linear16"]
    assert len(cases) >= 20
    assert {(c["act_min"], c["act_max"]) for c in cases} == set(gen_vectors.CLAMPS16)
    assert any(c["folded"] for c in cases) and any(not c["folded"] for c in cases)
    assert any(int(np.min(c["shift"])) < 0 for c in cases) and all(int(np.min(c["shift"])) >= -15 for c in cases)
    assert any(c["out_c"] % 4 for c in cases) and any(c["out_c"] >= 4 for c in cases)
    assert {c["misalign"] for c in cases} == {0, 1, 2, 3}


def test_cases_cover_the_gated_linear():
    """ec_gated_linear_fast_s8 (a GRU's n gate) meets its fast path (down_a 0, folded, the int8 clamp, both
    inputs aligned) and every other: a's products rounded (down_a > 0), neither or both rounded, the
    hidden product shifted (shift_b > 0), p's folded and exact rounding, output shifts of each sign, rows
    and lengths not multiples of 4, tables, every alignment, and the proven bounds at both ends."""
    cases = [c for c in gen_vectors.make_cases(seed=7, count=CASES) if c["op"] == "gated"]
    edges = gen_vectors.gated_edge_cases()
    assert len(cases) >= 20 and len(edges) >= 30
    cases += edges
    fast = [c for c in cases if c["stride_h"] == 0 and c["folded"] & 1 and (c["act_min"], c["act_max"]) == (-128, 127)
            and c["out_c"] >= 4]
    assert any(c["misalign"] == 0 and c["in_c"] % 4 == 0 for c in fast) and any(c["misalign"] for c in fast)
    assert any(c["stride_h"] > 0 and c["stride_w"] == 0 for c in cases)  # down_a
    assert any(c["stride_h"] == c["stride_w"] == 0 for c in cases)
    assert any(c["stride_h"] and c["stride_w"] for c in cases)
    assert any(c["folded"] & 2 for c in fast) and any(c["stride_w"] > 0 and not c["folded"] & 2 for c in cases)
    assert any(c["pad_top"] > 0 for c in cases)  # shift_b
    assert any(c["scale_shift"] < 0 for c in cases) and any(c["scale_shift"] == 0 for c in cases)
    assert any(c["out_c"] % 4 for c in cases) and any(c["in_c"] % 4 and c["in_h"] % 4 for c in cases)
    assert any(c["groups"] for c in cases) and any(not c["groups"] for c in cases)
    assert {c["misalign"] for c in cases} == {0, 1, 2, 3}
    assert any(np.all(c["input"] == -128) for c in edges) and any(np.all(c["weight"] == 127) for c in edges)


def test_cases_cover_the_lerp():
    """ec_lerp_mve_s8 (a GRU's update) meets its folded path and the reference's: either operand finer, by
    up to 8 bits (exact left shifts) or more (the finer one rounded), output shifts of each sign, sizes
    not multiples of 4, clamps, every alignment, and the proven bound at both ends."""
    cases = [c for c in gen_vectors.make_cases(seed=7, count=CASES) if c["op"] == "lerp"]
    cases += gen_vectors.lerp_edge_cases()
    assert len(cases) >= 30
    assert any(c["stride_h"] > 0 for c in cases) and any(c["stride_w"] > 0 for c in cases)
    assert any(min(c["stride_h"], c["stride_w"]) < 0 for c in cases)  # the finer operand rounded
    assert any(c["folded"] for c in cases) and any(not c["folded"] for c in cases)
    assert any(c["scale_shift"] < 0 for c in cases) and any(c["scale_shift"] > 0 for c in cases)
    assert any(c["in_c"] % 4 for c in cases) and {c["misalign"] for c in cases} == {0, 1, 2, 3}
    assert any((c["act_min"], c["act_max"]) != (-128, 127) for c in cases)
    assert any(c["pad_top"] == 15 for c in cases)


def test_cases_pad_with_the_zero_points():
    """Padded convolutions (dense and depthwise) read pad values 0 (signed codes), -128 (unsigned
    ReLU codes) and others, in random cases and at the accumulator bound; grouped ones some
    nonzero pad values too."""
    cases = gen_vectors.make_cases(seed=7, count=CASES) + gen_vectors.extreme_cases()
    padded = [c for c in cases if c["op"] in ("conv", "grouped") and (c.get("pad_top") or c.get("pad_left"))]
    for kind in ("conv", "depthwise", "grouped"):
        values = {c.get("pad_value", 0) for c in padded
                  if kind == ("conv" if c["op"] == "conv" else "depthwise" if c["in_c"] == c["groups"] else "grouped")}
        assert 0 in values and values - {0}, kind
        assert kind == "grouped" or (-128 in values and values - {0, -128}), kind
    assert any(c["pad_value"] == -128 and np.all(c["input"] == -128) for c in cases if c.get("pad_value"))


@pytest.mark.slow
def test_the_harness_catches_a_wrong_kernel(tmp_path):
    """Weights left in the logical order (not packed) must make the fast kernels differ."""
    require_tool("gcc", "make")
    cases = [c for c in gen_vectors.make_cases(seed=3, count=40) if c["op"] in ("conv", "linear", "grouped")]
    for c in cases:
        if c["op"] == "grouped":  # logical order is right there: reverse each channel's taps instead
            w = np.asarray(c["weight"], dtype=np.int8)
            c["packed"] = w.reshape(w.shape[0], -1)[:, ::-1].reshape(-1)
        else:
            c["packed"] = np.asarray(c["weight"], dtype=np.int8).reshape(-1)
    path = gen_vectors.write_cases(tmp_path / "bad.bin", cases)
    project = _project(tmp_path / "p", ["host"], path)
    proc = subprocess.run(["make", "-s", "-C", str(project), "TARGET=host", "run"], capture_output=True, text=True)
    found = re.search(r"kernels: (\d+) passed, (\d+) failed", proc.stdout + proc.stderr)
    assert proc.returncode != 0 and found and int(found.group(2)) >= len(cases) // 3


# --------------------------------------------------------------------------- C, Cortex-M under QEMU


@pytest.mark.qemu
@pytest.mark.parametrize("target,extra", [("qemu-m0plus", ""), ("qemu-m4", ""), ("qemu-m4", "-DEC_FAST_NO_DSP"),
                                          ("qemu-m7", ""), ("qemu-m33", ""), ("qemu-m55", ""),
                                          ("qemu-m55", "-DEC_FAST_NO_MVE")])
def test_qemu_cores_match_the_reference(cases_file, tmp_path, target, extra):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    path, count = cases_file
    project = _project(tmp_path, [target], path)
    _check(_run(project, target, "os", extra), count)  # the QEMU targets' default, -Os
    _check(_run(project, target, "o2", extra, opt="-O2"), count)


# --------------------------------------------------------------------------- compiles


@pytest.mark.slow
def test_fast_kernels_compile_warning_free_everywhere(tmp_path):
    """gcc and clang on the host, arm-none-eabi-gcc with every Cortex-M target's flags, at -Os and
    -O2 (also with a frame pointer, and at -O0, where the DSP path steps aside); no float, no 64-bit
    division, no malloc."""
    require_tool("gcc", "clang", "arm-none-eabi-gcc")
    runtime = resource_dir("runtime_c")
    files = (*FAST_FILES, "ec_sparse")  # ec_sparse.c: the packed gate rows' DSP path
    sources = [str(runtime / f"{f}.c") for f in files]
    builds = [(cc, [], opt) for cc in ("gcc", "clang") for opt in ("-Os", "-O2")]
    flags_seen = set()
    for name in list_targets():
        target = load_target(name)
        if not target.is_cortex_m or target.machine_flags in flags_seen:
            continue
        flags_seen.add(target.machine_flags)
        # the assembly blocks must also find their registers where r7 is kept as the frame pointer
        builds += [(target.compiler, target.machine_flags, opt)
                   for opt in ("-Os", "-O2", "-O0", "-O2 -fno-omit-frame-pointer")]

    def compile_all(build):
        cc, machine_flags, opt = build
        out = tmp_path / f"{cc}{'_'.join(machine_flags)}{opt}".replace(" ", "_").replace("/", "_")
        out.mkdir()
        proc = subprocess.run([cc, *machine_flags, *WARNINGS, *opt.split(), f"-I{runtime}", "-c", *sources],
                              cwd=out, capture_output=True, text=True)
        assert proc.returncode == 0, (cc, machine_flags, opt, proc.stderr[-3000:])
        if not machine_flags:
            return ""
        return subprocess.run(["arm-none-eabi-nm", "-u", *map(str, out.glob("*.o"))], capture_output=True,
                              text=True, check=True).stdout

    for (cc, machine_flags, opt), undefined in zip(builds, on_every_core(compile_all, builds)):
        assert not re.search(r"ldivmod|__aeabi_[fd]|malloc|printf", undefined), (machine_flags, opt, undefined)
    assert len(flags_seen) >= 6  # M0+, M3, M4, M7, M33 and M55 at least
    for f in files:
        text = (runtime / f"{f}.c").read_text() + (runtime / f"{f}.h").read_text()
        assert "float" not in text and "double" not in text and "malloc" not in text, f


# --------------------------------------------------------------------------- the code generator


@pytest.mark.slow
def test_generated_model_calls_the_fast_kernels(tmp_path, rng):
    """A random conv/BN/pool/linear model (padding, strides, a 1x1 conv, avg and max pooling): the
    generated C calls the fast kernels (the pointwise one for the 1x1 conv) with aligned, packed weights whose bytes are the reported flash figure,
    and it is bit-exact with the simulator."""
    require_tool("gcc", "make")
    import torch
    from conftest import randomize_batchnorm, save_torchscript
    from models_for_tests import ConvBNNet

    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    torch.manual_seed(5)
    model = ConvBNNet().eval()
    randomize_batchnorm(model, 5)
    path = save_torchscript(model, tmp_path / "m.pt")
    np.save(tmp_path / "calib.npy", rng.standard_normal((64, 3, 24, 24)).astype(np.float32))
    # int8 outputs: the last Linear's int16 output (--output-bits auto) would take the reference kernel
    # (each layer once: bands of rows would call the first layers' kernels once per band)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=32, output_bits=8,
                                   memory_plan="in-place"))
    out, name = result.out_dir, result.name
    text = (out / "src" / f"{name}.c").read_text()
    for kernel in ("ec_conv2d_fast_s8(", "ec_conv2d_1x1_fast_s8(", "ec_linear_fast_s8(", "ec_maxpool2d_fast_s8(",
                   "ec_avgpool2d_fast_s8("):
        assert kernel in text, kernel
    assert text.count("ec_conv2d_1x1_fast_s8(") == 1 and text.count("ec_conv2d_fast_s8(") == 2
    assert "ec_conv2d_s8(" not in text and "ec_linear_s8(" not in text
    assert len(re.findall(r"static const int8_t \w+_weight\[\d+\] EC_ALIGNED\(4\)", text)) == 5
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4}
    emitted = sum(sizes[t] * int(n) for t, n in re.findall(r"static const (\w+) \w+\[(\d+)\]", text))
    assert emitted == result.summary["weight_bytes"]  # packing adds no byte
    # (the depthwise and add kernels only come with such layers, which this model has not)
    assert {p.name for p in (out / "runtime").glob("*.c")} >= {
        f"{f}.c" for f in FAST_FILES if f not in ("ec_depthwise_fast", "ec_depthwise_mve", "ec_elementwise_mve")}
    v = verify(out)
    assert v.ok and v.total == 32


@pytest.mark.slow
def test_generated_model_calls_the_fast_depthwise_kernel(tmp_path, rng):
    """Depthwise 3x3 (stride 1 and 2, padding), a channel multiplier of 2, a dilated depthwise 3x3
    and a 5x5 depthwise call ec_conv2d_grouped_fast_s8, with scratch; a grouped conv with 2 input
    channels per group calls ec_conv2d_fast_s8 once per group.  Bit-exact with the simulator; an
    int16-activation model keeps ec_conv2d_any."""
    require_tool("gcc", "make")
    import torch
    from torch import nn
    from conftest import randomize_batchnorm, save_torchscript

    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    def block(cin, cout, k, stride=1, groups=1, dilation=1):
        return [nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation=dilation, groups=groups),
                nn.BatchNorm2d(cout), nn.ReLU()]

    model = nn.Sequential(*block(3, 6, 3), *block(6, 6, 3, groups=6), *block(6, 12, 3, 2, groups=6),
                          *block(12, 12, 3, groups=12, dilation=2), *block(12, 12, 5, groups=12),
                          *block(12, 12, 3, groups=6), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 5))
    torch.manual_seed(3)
    randomize_batchnorm(model, 3)
    path = save_torchscript(model, tmp_path / "dw.pt")
    np.save(tmp_path / "calib.npy", rng.standard_normal((64, 3, 15, 11)).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=16))
    text = (result.out_dir / "src" / f"{result.name}.c").read_text()
    calls = re.findall(r"ec_conv2d_grouped_fast_s8\(([^;]*)\);", text)
    assert len(calls) == 4 and "ec_conv2d_grouped_s8(" not in text
    assert all("&ec_arena[" in c.rsplit(",", 1)[1] for c in calls)  # the padded plane's scratch
    assert text.count("ec_conv2d_fast_s8(") == 1 + 6  # the first conv, then one per group
    assert (result.out_dir / "runtime" / "ec_depthwise_fast.c").exists()
    assert (result.out_dir / "runtime" / "ec_depthwise_mve.c").exists()  # what it calls on cores with Helium
    v = verify(result.out_dir)
    assert v.ok and v.total == 16
    wide = export(ExportSettings(path, tmp_path / "wide", tmp_path / "calib.npy", vectors=8, act_bits=16))
    text = (wide.out_dir / "src" / f"{wide.name}.c").read_text()
    assert "ec_conv2d_any(" in text and "ec_conv2d_grouped_fast_s8(" not in text
    assert verify(wide.out_dir).ok

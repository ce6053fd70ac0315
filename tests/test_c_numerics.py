"""runtime_c/ec_fixed.h computes exactly what edgecompile/numerics.py defines,
under gcc and clang, optimized and under ASan+UBSan."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from edgecompile import numerics
from edgecompile.resources import resource_dir
from conftest import ROOT, require_tool

HARNESS = ROOT / "tests" / "c" / "fixed_harness.c"
WARN = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
BUILDS = {
    "gcc-O2": ["gcc", "-O2"],
    "clang-O2": ["clang", "-O2"],
    "gcc-sanitize": ["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
}


@pytest.fixture(scope="module", params=sorted(BUILDS))
def harness(request, tmp_path_factory):
    cc, *flags = BUILDS[request.param]
    require_tool(cc)
    exe = tmp_path_factory.mktemp("fixed") / "harness"
    subprocess.run([cc, *flags, *WARN, f"-I{resource_dir('runtime_c')}", str(HARNESS), "-o", str(exe)],
                   check=True)
    return exe


def run(exe, lines: list[str]) -> list[int]:
    out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    return [int(v) for v in out.stdout.split()]


def requant_cases(rng):
    accs = [0, 1, -1, 2, -2, 3, -3, 127, 128, -128, -129, 255, -255, 2**31 - 1, -(2**31), 2**30, -(2**30)]
    accs += rng.integers(-(2**31), 2**31, size=300).tolist()
    cases = []
    for s in list(range(-23, 0)) + list(range(0, 32)):
        # a fused activation with a zero point can clamp to codes that exclude 0 (ReLU6 from -128 to -32)
        for lo, hi in ((-128, 127), (0, 127), (-128, -32), (32, 127)):
            for acc in accs[:17] + accs[17 + (s % 7)::7]:
                cases.append((int(acc), s, lo, hi))
            if s > 0:  # exact ties and their neighbours
                for k in (-2, -1, 0, 1):
                    t = k * (1 << s) + (1 << (s - 1))
                    cases += [(t + d, s, lo, hi) for d in (-1, 0, 1) if -(2**31) <= t + d < 2**31]
    return cases


def test_requantize_matches_simulator(harness, rng):
    cases = requant_cases(rng)
    got = run(harness, [f"R {a} {s} {lo} {hi}" for a, s, lo, hi in cases])
    want = [int(numerics.requantize(np.array([a]), s, lo, hi)[0]) for a, s, lo, hi in cases]
    assert got == want


def test_asr_is_floor_division(harness, rng):
    xs = [0, 1, -1, 2**31 - 1, -(2**31), -5, 5] + rng.integers(-(2**31), 2**31, size=200).tolist()
    cases = [(int(x), s) for x in xs for s in (0, 1, 7, 31)]
    got = run(harness, [f"A {x} {s}" for x, s in cases])
    assert got == [x >> s for x, s in cases]  # Python's >> is floor division


def test_div_round_matches_rule_5(harness, rng):
    cases = [(t, n) for n in (1, 2, 3, 4, 5, 6, 7, 9, 25, 49) for t in range(-128 * n, 128 * n, max(1, n // 2))]
    got = run(harness, [f"D {t} {n}" for t, n in cases])
    want = [int(numerics.round_half_up_div(t, n)) for t, n in cases]
    assert got == want


def test_float_input_quantization_matches_simulator(harness, rng):
    base = np.concatenate([
        np.array([0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 0.50000006,
                  127.49, 127.5, -128.5, -128.49, 1e-30, -1e-30, 1e9, -1e9], dtype=np.float32),
        rng.standard_normal(400).astype(np.float32) * 3,
        (rng.integers(-300, 300, size=200) / 2).astype(np.float32),  # exact halves
    ])
    cases = [(float(x), f) for x in base for f in (-3, 0, 1, 5, 7)]
    bits = np.array([c[0] for c in cases], dtype=np.float32).view(np.uint32)
    got = run(harness, [f"Q {int(b)} {f} -128 127" for b, (_, f) in zip(bits, cases)])
    want = [int(numerics.quantize_float(np.float32(x), f, -128, 127)) for x, f in cases]
    assert got == want

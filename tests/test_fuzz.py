"""Property-based fuzzing: random small models (tests/fuzz_models.py) through every frontend and
random export options.  Each one exports or is refused with an EdgeCompileError; an export's C
equals the simulator bit for bit and its float path equals onnxruntime (or PyTorch).  A bounded,
derandomized run here; `scripts/fuzz.sh N` runs a campaign and saves what it finds as seeds in
tests/fuzz_regressions/, which the last test replays."""
from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require_tool
from fuzz_models import ACTIVATIONS, FRONTENDS, REGRESSIONS, draw_spec, run_trial

EXAMPLES = 40  # two to three seconds each on a 2-core machine

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _tools():
    require_tool("gcc", "make")


def test_the_generator_covers_the_op_set():
    """What the property below can find depends on what the generator draws: all of it, in 300 seeds."""
    seen = collections.Counter()
    for seed in range(300):
        spec = draw_spec(seed)
        seen[spec["frontend"]] += 1
        seen[f"opset{spec['opset']}"] += 1
        for layer in spec["layers"]:
            seen[layer["op"]] += 1
            seen[f"act-{layer.get('act')}"] += 1
            seen[f"pool-{layer.get('kind')}"] += 1
            if layer["op"] == "conv":
                seen["grouped"] += layer["groups"] > 1
                seen["depthwise"] += layer["groups"] == layer["in"] > 1
                seen["dilated"] += layer["dil"] > 1
                seen["strided"] += layer["stride"] > 1
                seen["padded"] += layer["pad"] > 0
                seen["batchnorm"] += layer["bn"]
        seen[f"bits{spec['options']['bits']}"] += 1
        seen["rank"] += "rank" in spec["options"]
        seen["per-tensor"] += spec["options"].get("per_channel") is False
        seen["act16"] += spec["options"].get("act_bits") == 16
        seen[f"plan-{spec['options']['memory_plan']}"] += 1
        seen["odd-size"] += len(spec["input"]) == 3 and spec["input"][1] % 2 == 1
    wanted = ([*FRONTENDS, "conv", "pool", "residual", "concat", "se", "pad", "add2", "softmax", "linear",
               "flatten", "grouped", "depthwise",
               "dilated", "strided", "padded", "batchnorm", "rank", "per-tensor", "act16", "odd-size"]
              + [f"act-{a}" for a in ACTIVATIONS] + [f"pool-{k}" for k in ("max", "avg", "global")]
              + [f"opset{o}" for o in range(11, 19)] + [f"bits{b}" for b in range(2, 9)]
              + [f"plan-{p}" for p in ("auto", "in-place", "layer")])
    assert [w for w in wanted if not seen[w]] == []


def check(spec: dict) -> str:
    outcome = run_trial(spec)
    assert outcome.kind in ("exact", "refused", "skipped"), (json.dumps(spec), outcome.detail)
    return outcome.kind


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_random_models_export_exactly_or_are_refused(seed):
    check(draw_spec(seed))


REGRESSION_FILES = sorted(REGRESSIONS.glob("*.json"))


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=[p.stem for p in REGRESSION_FILES])
def test_regression_seeds(path: Path):
    """Every model the fuzzer (or a person) once broke the compiler with."""
    assert check(json.loads(path.read_text())["spec"]) != "skipped"


SAMPLE_SEEDS = range(7000, 7006)  # a fixed sample of the generator's models


@pytest.mark.qemu
def test_a_sample_on_cortex_m0plus_and_m4_and_under_sanitizers():
    """Random models' C on an M0+ (no unaligned access, no DSP) and an M4 (DSP kernels) under QEMU,
    and on the host under ASan and UBSan: bit-exact wherever it exports."""
    require_tool("arm-none-eabi-gcc", "qemu-system-arm")
    kinds = [check_on(draw_spec(seed)) for seed in SAMPLE_SEEDS]
    assert kinds.count("exact") >= len(kinds) // 2, kinds  # the sample tests the C, not only refusals


def check_on(spec: dict) -> str:
    outcome = run_trial(spec, targets=("host", "qemu-m0plus-an385", "qemu-m4"), sanitize=True)
    assert outcome.kind in ("exact", "refused", "skipped"), (json.dumps(spec), outcome.detail)
    return outcome.kind


def test_a_failure_shrinks_to_the_layers_and_options_that_cause_it():
    """With a stand-in trial that "fails" whenever a squeeze-and-excitation gate and 16-bit
    activations meet, a failing spec shrinks to one that keeps both and little else."""
    from fuzz_models import Outcome, shrink

    def trial(spec):
        bad = any(layer["op"] == "se" for layer in spec["layers"]) and spec["options"].get("act_bits") == 16
        return Outcome("mismatch", "C differs from the simulator") if bad else Outcome("exact")

    seed = next(s for s in range(10_000) if any(layer["op"] == "se" for layer in draw_spec(s)["layers"])
                and len(draw_spec(s)["layers"]) >= 5 and len(draw_spec(s)["options"]) >= 3)
    spec = {**draw_spec(seed), "options": {**draw_spec(seed)["options"], "act_bits": 16}}
    small = shrink(spec, trial(spec), trial=trial)
    assert any(layer["op"] == "se" for layer in small["layers"]) and small["options"] == {"act_bits": 16}
    assert len(small["layers"]) < len(spec["layers"])

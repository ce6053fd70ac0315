"""Error-feedback weight rounding (passes/weight_rounding.py) against round-to-nearest.

For each model: compile with the default pipeline, then on copies of the quantized graph apply
nothing (nearest), round_weights, bias correction, or round_weights then bias correction, and
compare the integer model with the float torch model on HELD-OUT inputs (never the calibration
samples): output SQNR (dB) and top-1 agreement; for the trained digits LeNet also test accuracy.
Models: every net in examples/hard_models.py (random weights, hard BatchNorm / big heads) and the
digits LeNet trained by examples/train.py.  Also reports the pass's run time.

    python benchmarks/bench_weight_rounding.py [--models lenet,mobilenetv2_bn] [--json FILE]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from edgecompile import metrics, simulate  # noqa: E402
from edgecompile.compiler import CompileOptions, compile_model  # noqa: E402
from edgecompile.frontend import load_model  # noqa: E402
from edgecompile.passes.bias_correction import correct_biases  # noqa: E402
from edgecompile.passes.weight_rounding import round_weights  # noqa: E402

CONFIGS = ("nearest", "error-feedback", "nearest + bc", "error-feedback + bc")


def hard_cases(work: Path):
    """(name, model path, input shape, calib, test inputs, test labels or None) of examples/hard_models.py."""
    import hard_models

    for name in hard_models.MODELS:
        f = hard_models.save(name, work / name)
        yield name, f["model"], f["shape"], np.load(f["calib"]), np.load(f["test"]), None


def lenet_case(work: Path):
    import train

    out = work / "lenet"
    train.main(["--model", "lenet", "--epochs", "15", "-o", str(out)])
    calib = np.load(out / "calib.npy")
    yield "lenet (digits)", out / "lenet_digits.pt2", calib.shape[1:], calib, np.load(out / "test_x.npy"), \
        np.load(out / "test_y.npy")


def variants(graph, calib):
    """The four graphs, and the weight-rounding pass's time and changed layers."""
    rounded = copy.deepcopy(graph)
    t0 = time.perf_counter()
    changed = round_weights(rounded, calib)
    seconds = time.perf_counter() - t0
    nearest_bc, rounded_bc = copy.deepcopy(graph), copy.deepcopy(rounded)
    correct_biases(nearest_bc, calib)
    correct_biases(rounded_bc, calib)
    return dict(zip(CONFIGS, (graph, rounded, nearest_bc, rounded_bc))), seconds, changed


def measure(name, model_path, shape, calib, test, labels) -> dict:
    from models import load_float_model

    compiled = compile_model(load_model(model_path, tuple(shape)), calib, CompileOptions())
    with torch.no_grad():
        ref = load_float_model(model_path)(torch.from_numpy(test.astype(np.float32))).numpy()
    graphs, seconds, changed = variants(compiled.graph, compiled.calib)
    row = {"model": name, "pass_seconds": round(seconds, 3), "layers_changed": changed,
           "layers": sum(1 for n in compiled.graph.nodes if "weight" in n.qparams)}
    if labels is not None:
        row["float_accuracy"] = float(np.mean(ref.argmax(1) == labels))
    for config, graph in graphs.items():
        y = simulate.run_dequantized(graph, test)
        entry = {"sqnr_db": round(metrics.sqnr_db(ref, y), 2), "top1_agreement": metrics.top1_agreement(ref, y)}
        if labels is not None:
            entry["accuracy"] = float(np.mean(y.argmax(1) == labels))
        row[config] = entry
    return row


def print_table(rows: list[dict]) -> None:
    head = f"{'model':<18}" + "".join(f"{c:>26}" for c in CONFIGS) + f"{'pass s':>8}{'changed':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        cells = []
        for c in CONFIGS:
            e = r[c]
            text = f"{e['sqnr_db']:.2f} dB / {100 * e['top1_agreement']:.1f}%"
            if "accuracy" in e:
                text += f" ({100 * e['accuracy']:.1f})"
            cells.append(f"{text:>26}")
        print(f"{r['model']:<18}" + "".join(cells) + f"{r['pass_seconds']:>8.2f}{r['layers_changed']:>5}/{r['layers']}")
    print("cells: output SQNR vs float / top-1 agreement with float on held-out inputs "
          "(test accuracy in parentheses); bc = bias correction")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", help="comma-separated subset (hard_models names, lenet)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "weight_rounding.json")
    args = p.parse_args(argv)
    wanted = set(args.models.split(",")) if args.models else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="gptq-bench-") as tmp:
        work = Path(tmp)
        for case in list(hard_cases(work)) + list(lenet_case(work) if not wanted or "lenet" in wanted else []):
            if wanted and case[0].split(" ")[0] not in wanted:
                continue
            rows.append(measure(*case))
            print(f"done {case[0]}", file=sys.stderr)
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

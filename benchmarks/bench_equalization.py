"""Cross-layer equalization (passes/equalize.py): accuracy of the compiled models with and without it.

Models: the hard random-weight nets of examples/hard_models.py (their own held-out test inputs),
the efficient-CNN zoo of examples/cnn_zoo.py (64 calibration samples; held-out N(0,1) inputs drawn
with another seed) and LeNet trained on sklearn's digits (its test set; accuracy reported too).
Each model is compiled with the default options and CompileOptions.equalize = each of METHODS,
then run by the integer simulator on the held-out inputs (never the calibration samples).  "auto"
compiles each of AUTO on 3/4 of the calibration samples, keeps the one with the best SQNR on the
last 1/4, and is then compiled on all of them like the others.
Prints output SQNR (dB) / top-1 agreement (%) against the float PyTorch model and writes JSON.

    python benchmarks/bench_equalization.py [--models lenet,resnet8] [--json benchmarks/results/equalization.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

METHODS = ("off", "weights", "activations", "noise", "activations-pow2")
AUTO = ("off", "weights", "activations", "noise")  # what "auto" chooses from
SPLIT = 0.75  # auto: compile on this share of the calibration samples, score on the rest
TEST_SEED = 99  # held-out inputs of the zoo models (their calibration samples use seed 0)


def cases(work: Path, names: list[str]):
    """(name, model path, calibration samples, held-out inputs, labels or None)."""
    import cnn_zoo
    import hard_models
    import train

    for name in names:
        if name == "lenet":
            d = work / name
            train.main(["--model", "lenet", "--epochs", "15", "-o", str(d)])
            yield name, d / "lenet_digits.pt2", np.load(d / "calib.npy"), np.load(d / "test_x.npy"), np.load(
                d / "test_y.npy")
        elif name in hard_models.MODELS:
            f = hard_models.save(name, work / "hard")
            yield name, f["model"], np.load(f["calib"]), np.load(f["test"]), None
        else:
            f = cnn_zoo.save(name, work / "zoo")
            x = np.random.default_rng(TEST_SEED).standard_normal((128,) + f["shape"]).astype(np.float32)
            yield name, f["model"], np.load(f["calib"]), x, None


def evaluate(name: str, model_path: Path, calib: np.ndarray, x: np.ndarray, y, methods=METHODS) -> dict:
    from edgecompile import metrics, simulate
    from edgecompile.compiler import CompileOptions, compile_model
    from edgecompile.frontend import load_model
    from models import load_float_model

    net = load_float_model(model_path)
    with torch.no_grad():
        reference = net(torch.from_numpy(x)).numpy()
    loaded = load_model(model_path, tuple(calib.shape[1:]))
    row = {"model": name, "calib_samples": len(calib), "test_samples": len(x), "methods": {}}
    if y is not None:
        row["float_accuracy"] = float(np.mean(reference.argmax(1) == y))
    if "auto" in methods:
        row["auto_choice"], row["auto_scores"] = choose_by_split(loaded, calib, net)
    for method in methods:
        chosen = row["auto_choice"] if method == "auto" else method
        compiled = compile_model(copy.deepcopy(loaded), calib, CompileOptions(equalize=chosen))
        out = simulate.run_dequantized(compiled.graph, x)
        pairs = next((n for n in compiled.graph.notes if n.startswith("cross-layer equalization")), "")
        result = {"sqnr_db": round(metrics.sqnr_db(reference, out), 2),
                  "top1_agreement": metrics.top1_agreement(reference, out),
                  "pairs": int(pairs.split("rescaled ")[1].split()[0]) if pairs else 0}
        if y is not None:
            result["accuracy"] = float(np.mean(np.asarray(out).argmax(1) == y))
        row["methods"][method] = result
    return row


def choose_by_split(loaded, calib: np.ndarray, net) -> tuple[str, dict]:
    """"auto": the method of AUTO whose model, compiled on the first SPLIT of the calibration samples,
    has the best output SQNR on the rest (never the held-out test inputs)."""
    from edgecompile import metrics, simulate
    from edgecompile.compiler import CompileOptions, compile_model

    k = int(len(calib) * SPLIT)
    with torch.no_grad():
        reference = net(torch.from_numpy(calib[k:])).numpy()
    scores = {}
    for method in AUTO:
        compiled = compile_model(copy.deepcopy(loaded), calib[:k], CompileOptions(equalize=method))
        scores[method] = round(metrics.sqnr_db(reference, simulate.run_dequantized(compiled.graph, calib[k:])), 2)
    return max(scores, key=scores.get), scores


def print_table(rows: list[dict]) -> None:
    methods = list(rows[0]["methods"])
    print("\noutput SQNR dB / top-1 agreement % against the float model (held-out inputs); pairs: the most rescaled")
    print(f"{'model':18}{'pairs':>6}" + "".join(f"{m:>18}" for m in methods))
    for r in rows:
        cells = [f"{c['sqnr_db']:6.2f} / {100 * (c['top1_agreement'] or 0):5.1f}" for c in r["methods"].values()]
        pairs = max(c["pairs"] for c in r["methods"].values())
        print(f"{r['model']:18}{pairs:6}" + "".join(f"{c:>18}" for c in cells))
    for r in rows:
        if "auto_choice" in r:
            print(f"{r['model']}: auto chose {r['auto_choice']} (SQNR dB on the last calibration samples: "
                  f"{r['auto_scores']})")
    for r in rows:
        if "float_accuracy" in r:
            acc = "  ".join(f"{m} {100 * c['accuracy']:.2f}" for m, c in r["methods"].items())
            print(f"{r['model']} test accuracy %: float {100 * r['float_accuracy']:.2f}  {acc}")


def main() -> None:
    import cnn_zoo
    import hard_models

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(list(hard_models.MODELS) + sorted(cnn_zoo.ZOO) + ["lenet"]))
    p.add_argument("--methods", default=",".join(METHODS + ("auto",)),
                   help="values of CompileOptions.equalize, and auto (chosen on a split of the calibration samples)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "equalization.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cle-bench-") as tmp:
        for name, model_path, calib, x, y in cases(Path(tmp), args.models.split(",")):
            rows.append(evaluate(name, model_path, calib, x, y, args.methods.split(",")))
            print_table(rows[-1:])
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "equalization", "methods": args.methods.split(","), "rows": rows},
                                    indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

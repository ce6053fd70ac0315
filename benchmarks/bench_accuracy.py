"""Accuracy of the integer models against float, for every example model and quantization choice.

Models: the classifiers trained on sklearn's digits (LeNet, MLP, the MobileNet-style net),
judged on the held-out test set, and the efficient-CNN zoo (DS-CNN, ResNet-8, MobileNetV2,
SqueezeNet-, ShuffleNet-style nets, MobileNetV3 block) with random weights, judged on fresh
random inputs (64 calibration samples).
Configurations: per-tensor min/max (the baseline), then per-channel with each calibration
method (minmax, percentile 99.99, 3-sigma, mse = the default), mse with bias correction, and
for the trained digits models two epochs of quantization-aware training (edgecompile.qat).
Prints output SQNR (dB) / top-1 agreement (%) per model and configuration, the memory of the
default export (weights, arena, liveness lower bound, all activations unshared), and writes JSON.

    python benchmarks/bench_accuracy.py [--models lenet,resnet8] [--json benchmarks/results/accuracy.json]
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

CONFIGS = [("per-tensor minmax", False, "minmax"), ("minmax", True, "minmax"), ("percentile", True, "percentile"),
           ("sigma", True, "sigma"), ("mse (default)", True, "mse"), ("+ bias correction", True, "mse+bc")]
QAT_LABEL = "QAT 2 epochs"
TRAINED = {"lenet": 15, "mlp": 15, "mobilenet": 30}  # digits classifiers and their epochs


def cases(work: Path, names: list[str]):
    import cnn_zoo
    import train

    for name in names:
        if name in TRAINED:
            d = work / name
            train.main(["--model", name, "--epochs", str(TRAINED[name]), "-o", str(d)])
            yield name, next(d.glob("*.pt2")), np.load(d / "calib.npy"), np.load(d / "test_x.npy"), np.load(
                d / "test_y.npy")
        else:
            files = cnn_zoo.save(name, work / "zoo")
            x = np.random.default_rng(99).standard_normal((64,) + files["shape"]).astype(np.float32)
            yield name, files["model"], np.load(files["calib"]), x, None


def evaluate(name, model_path, calib, x, y, work: Path) -> dict:
    from edgecompile import metrics, simulate
    from edgecompile.compiler import CompileOptions, optimize
    from edgecompile.export import ExportSettings, export
    from edgecompile.frontend import load_model
    from edgecompile.passes.quantize import QuantOptions, calibrate, quantize_graph

    from models import load_float_model

    net = load_float_model(model_path)
    with torch.no_grad():
        reference = net(torch.from_numpy(x)).numpy()
    loaded = load_model(model_path, tuple(calib.shape[1:]))
    folded = copy.deepcopy(loaded.graph)
    optimize(folded, CompileOptions())
    stats = calibrate(folded, calib)
    from edgecompile.passes.bias_correction import correct_biases

    row = {"model": name, "configs": {}}
    if y is not None:
        row["float_accuracy"] = float(np.mean(reference.argmax(1) == y))

    def score(out):
        result = {"sqnr_db": round(metrics.sqnr_db(reference, out), 2),
                  "top1_agreement": metrics.top1_agreement(reference, out)}
        if y is not None:
            result["accuracy"] = float(np.mean(np.asarray(out).argmax(1) == y))
        return result

    for label, per_channel, method in CONFIGS:
        g = copy.deepcopy(folded)
        quantize_graph(g, stats, QuantOptions(per_channel=per_channel, calib_method=method.split("+")[0]))
        if method.endswith("+bc"):
            correct_biases(g, calib)
        row["configs"][label] = score(simulate.run_dequantized(g, x))
    if name in TRAINED:
        import datasets
        from edgecompile import qat

        x_train, y_train, _, _ = datasets.digits_28x28()
        model = qat.prepare(model_path, calib, bits=8)
        import qat as qat_example
        qat_example.fine_tune(model, x_train, y_train, epochs=2)
        model.eval()
        with torch.no_grad():
            row["configs"][QAT_LABEL] = score(model(torch.from_numpy(x)).numpy())
    np.save(work / f"{name}_calib.npy", calib)
    t0 = time.perf_counter()
    result = export(ExportSettings(model_path, work / f"{name}_out", work / f"{name}_calib.npy", vectors=16))
    s = result.summary
    row.update({"export_s": round(time.perf_counter() - t0, 2), "weight_bytes": s["weight_bytes"],
                "arena_bytes": s["arena_bytes"], "arena_lower_bound": s["arena_lower_bound"],
                "activations_unshared": s["activations_unshared"], "macs": s["macs"]})
    return row


def main() -> None:
    import cnn_zoo

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(list(TRAINED) + sorted(cnn_zoo.ZOO)))
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ec-acc-") as tmp:
        for name, model_path, calib, x, y in cases(Path(tmp), args.models.split(",")):
            rows.append(evaluate(name, model_path, calib, x, y, Path(tmp)))
    labels = [c[0] for c in CONFIGS] + [QAT_LABEL]
    print("\noutput SQNR dB / top-1 agreement % against the float model")
    print(f"{'model':18}" + "".join(f"{lab:>20}" for lab in labels))
    for r in rows:
        cells = [f"{r['configs'][lab]['sqnr_db']:6.1f} / {100 * (r['configs'][lab]['top1_agreement'] or 0):5.1f}"
                 if lab in r["configs"] else "-" for lab in labels]
        print(f"{r['model']:18}" + "".join(f"{c:>20}" for c in cells))
    trained = [r for r in rows if "float_accuracy" in r]
    if trained:
        print("\ntest-set accuracy % of the digits classifiers (float, then each configuration)")
        print(f"{'model':18}{'float':>8}" + "".join(f"{lab:>20}" for lab in labels))
        for r in trained:
            cells = [f"{100 * r['configs'][lab]['accuracy']:.2f}" if lab in r["configs"] else "-" for lab in labels]
            print(f"{r['model']:18}{100 * r['float_accuracy']:8.2f}" + "".join(f"{c:>20}" for c in cells))
    print(f"\n{'model':18}{'MACs':>12}{'weights B':>11}{'arena B':>10}{'bound B':>10}{'unshared B':>12}{'export s':>10}")
    for r in rows:
        print(f"{r['model']:18}{r['macs']:12,}{r['weight_bytes']:11,}{r['arena_bytes']:10,}{r['arena_lower_bound']:10,}"
              f"{r['activations_unshared']:12,}{r['export_s']:10}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "accuracy", "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

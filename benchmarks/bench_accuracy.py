"""Accuracy of the integer models against float, for every example model and quantization choice,
beside TensorFlow Lite Micro's int8 post-training quantization of the same model.

Models: the classifiers trained on sklearn's digits (LeNet, MLP, the MobileNet-style net),
judged on the held-out test set; the efficient-CNN zoo (DS-CNN, ResNet-8, MobileNetV2,
SqueezeNet-, ShuffleNet-style nets, MobileNetV3 block) with random weights, judged on 256
fresh N(0,1) inputs that are not the 64 calibration samples; and the models that are hard to
quantize (examples/hard_models.py), judged on their 256 held-out test inputs.
Headline: edgecompile's default pipeline (compile_model with the default CompileOptions, as
shipped, whatever it currently chooses), the same without output correction and with int8 outputs
(--output-bits 8; the default gives a classifier's logits int16), and a constant output (the float
model's mean over the calibration samples: where the float outputs hardly vary with the input, the
SQNR is mostly that constant's), against the TFLM int8 emulation of
benchmarks/tflm_reference.py (per-channel conv weights, arbitrary float scales, calibrated
asymmetric activations), both calibrated on the same samples and run on the same inputs.
Configurations: per-tensor min/max (the baseline), then per-channel with each calibration
method (minmax, percentile 99.99, 3-sigma, mse), mse with bias correction, and for the trained
digits models two epochs of quantization-aware training (edgecompile.qat).
Prints output SQNR (dB) / top-1 agreement (%) per model and configuration, the memory of the
default export (weights, arena, liveness lower bound, all activations unshared), and writes JSON.
--quick measures only the default pipeline and the TFLM emulation (no sweep, QAT or export).

    python benchmarks/bench_accuracy.py [--quick] [--models lenet,resnet8] [--json benchmarks/results/accuracy.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

CONFIGS = [("per-tensor minmax", False, "minmax"), ("minmax", True, "minmax"), ("percentile", True, "percentile"),
           ("sigma", True, "sigma"), ("mse", True, "mse"), ("+ bias correction", True, "mse+bc")]
QAT_LABEL = "QAT 2 epochs"
DEFAULT_LABEL = "default (compile_model)"
INT8_OUT_LABEL = "default, int8 outputs"  # --output-bits 8: the C API TFLM's int8 models have
NO_CORRECTION_LABEL = "default, no output correction"  # --no-output-correction
# The float model's mean output over the calibration samples, whatever the input: the SQNR of a model
# that ignores its input.  Where it comes near the others, the float outputs hardly vary and the SQNR
# measures a constant more than how well the integer model follows its input.
CONSTANT_LABEL = "constant output"
TFLM_LABEL = "TFLM int8 (emulated)"
TRAINED = {"lenet": 15, "mlp": 15, "mobilenet": 30}  # digits classifiers and their epochs
ZOO_TEST_SAMPLES = 256


@dataclass
class Case:
    """One model and the data it is judged on: calibration inputs, held-out inputs, labels if any."""

    name: str
    model_path: Path
    calib: np.ndarray
    x: np.ndarray
    y: np.ndarray | None
    inputs: str  # what x is, for the headline table


def all_models() -> list[str]:
    import cnn_zoo
    import hard_models

    return list(TRAINED) + sorted(cnn_zoo.ZOO) + list(hard_models.MODELS)


def cases(work: Path, names: list[str]):
    """The cases, built lazily so that progress shows model by model (training included)."""
    import cnn_zoo
    import hard_models

    for name in names:
        if name in TRAINED:
            import train

            d = work / name
            train.main(["--model", name, "--epochs", str(TRAINED[name]), "-o", str(d)])
            x = np.load(d / "test_x.npy")
            yield Case(name, next(d.glob("*.pt2")), np.load(d / "calib.npy"), x, np.load(d / "test_y.npy"),
                       f"digits test set, {len(x)} images")
        elif name in hard_models.MODELS:
            files = hard_models.save(name, work / "hard")
            x = np.load(files["test"])
            yield Case(name, files["model"], np.load(files["calib"]), x, None, f"{len(x)} held-out N(0,1) inputs")
        else:
            files = cnn_zoo.save(name, work / "zoo")
            # seed 99: a draw separate from the calibration samples (seed 0)
            x = np.random.default_rng(99).standard_normal((ZOO_TEST_SAMPLES,) + files["shape"]).astype(np.float32)
            yield Case(name, files["model"], np.load(files["calib"]), x, None, f"{len(x)} held-out N(0,1) inputs")


def scorer(reference: np.ndarray, y: np.ndarray | None):
    """A function: outputs -> SQNR, top-1 agreement with float (and accuracy against labels)."""
    from edgecompile import metrics

    def score(out):
        result = {"sqnr_db": round(metrics.sqnr_db(reference, out), 2),
                  "top1_agreement": metrics.top1_agreement(reference, out)}
        if y is not None:
            result["accuracy"] = float(np.mean(np.asarray(out).argmax(1) == y))
        return result
    return score


def default_outputs(case: Case, **options) -> np.ndarray:
    """The shipped default pipeline, not a reimplementation: its choices may change over time
    (`options`: CompileOptions fields to change, e.g. output_bits=8)."""
    from edgecompile import simulate
    from edgecompile.compiler import CompileOptions, compile_model
    from edgecompile.frontend import load_model

    compiled = compile_model(load_model(case.model_path, tuple(case.calib.shape[1:])), case.calib,
                             CompileOptions(**options))
    return simulate.run_dequantized(compiled.graph, case.x)


def folded_graph(case: Case):
    """The float IR after the graph passes (BatchNorm folded, activations fused)."""
    from edgecompile.compiler import CompileOptions, optimize
    from edgecompile.frontend import load_model

    g = copy.deepcopy(load_model(case.model_path, tuple(case.calib.shape[1:])).graph)
    optimize(g, CompileOptions())
    return g


def sweep(case: Case, folded, score) -> dict:
    """Each quantization configuration of CONFIGS, on the folded graph."""
    from edgecompile import simulate
    from edgecompile.passes.bias_correction import correct_biases
    from edgecompile.passes.quantize import QuantOptions, calibrate, quantize_graph

    stats = calibrate(folded, case.calib)
    results = {}
    for label, per_channel, method in CONFIGS:
        g = copy.deepcopy(folded)
        quantize_graph(g, stats, QuantOptions(per_channel=per_channel, calib_method=method.split("+")[0]))
        if method.endswith("+bc"):
            correct_biases(g, case.calib)
        results[label] = score(simulate.run_dequantized(g, case.x))
    return results


def qat_score(case: Case, score) -> dict:
    """Two epochs of quantization-aware training on the digits training set."""
    import datasets
    import qat as qat_example
    from edgecompile import qat

    x_train, y_train, _, _ = datasets.digits_28x28()
    model = qat.prepare(case.model_path, case.calib, bits=8)
    qat_example.fine_tune(model, x_train, y_train, epochs=2)
    model.eval()
    with torch.no_grad():
        return score(model(torch.from_numpy(case.x)).numpy())


def export_memory(case: Case, work: Path) -> dict:
    """Memory figures of the default export."""
    from edgecompile.export import ExportSettings, export

    np.save(work / f"{case.name}_calib.npy", case.calib)
    t0 = time.perf_counter()
    result = export(ExportSettings(case.model_path, work / f"{case.name}_out", work / f"{case.name}_calib.npy",
                                   vectors=16))
    s = result.summary
    return {"export_s": round(time.perf_counter() - t0, 2), "weight_bytes": s["weight_bytes"],
            "arena_bytes": s["arena_bytes"], "arena_lower_bound": s["arena_lower_bound"],
            "activations_unshared": s["activations_unshared"], "macs": s["macs"]}


def evaluate(case: Case, work: Path, quick: bool) -> dict:
    import tflm_reference
    from models import load_float_model

    t0 = time.perf_counter()
    with torch.no_grad():
        float_model = load_float_model(case.model_path)
        reference = float_model(torch.from_numpy(case.x)).numpy()
        calib_mean = float_model(torch.from_numpy(case.calib)).numpy().mean(axis=0)
    score = scorer(reference, case.y)
    folded = folded_graph(case)
    row = {"model": case.name, "inputs": case.inputs, "test_samples": len(case.x),
           "calib_samples": len(case.calib), "configs": {}}
    if case.y is not None:
        row["float_accuracy"] = float(np.mean(reference.argmax(1) == case.y))
    row["configs"][DEFAULT_LABEL] = score(default_outputs(case))
    row["configs"][NO_CORRECTION_LABEL] = score(default_outputs(case, output_correction=False))
    row["configs"][INT8_OUT_LABEL] = score(default_outputs(case, output_bits=8))
    row["configs"][CONSTANT_LABEL] = score(np.broadcast_to(calib_mean, reference.shape))
    row["configs"][TFLM_LABEL] = score(tflm_reference.tflm_int8_outputs(folded, case.calib, case.x))
    if not quick:
        row["configs"].update(sweep(case, folded, score))
        if case.name in TRAINED:
            row["configs"][QAT_LABEL] = qat_score(case, score)
        row.update(export_memory(case, work))
    ec, tf = row["configs"][DEFAULT_LABEL], row["configs"][TFLM_LABEL]
    row["delta_db_vs_tflm"] = round(ec["sqnr_db"] - tf["sqnr_db"], 2)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"[{case.name}] default {ec['sqnr_db']:.1f} dB, TFLM emulated {tf['sqnr_db']:.1f} dB, "
          f"delta {row['delta_db_vs_tflm']:+.1f} dB ({row['seconds']} s)", flush=True)
    return row


def cell(result: dict | None) -> str:
    if result is None:
        return "-"
    top1 = result["top1_agreement"]
    return f"{result['sqnr_db']:6.1f} / {'-' if top1 is None else f'{100 * top1:5.1f}'}"


def print_headline(rows: list[dict]) -> None:
    """edgecompile's default against the TFLM emulation; '<' marks where edgecompile is worse."""
    print("\nedgecompile default vs TFLM int8 (emulated): output SQNR dB / top-1 agreement % against float")
    print(f"{'model':18}{'edgecompile default':>22}{'no output corr.':>16}{'int8 outputs':>16}{'TFLM int8 (emul.)':>22}"
          f"{'delta dB':>10}{'constant output':>18}  inputs")
    for r in rows:
        mark = "<" if r["delta_db_vs_tflm"] < 0 else " "
        c = r["configs"]
        print(f"{r['model']:18}{cell(c[DEFAULT_LABEL]):>22}{cell(c.get(NO_CORRECTION_LABEL)):>16}"
              f"{cell(c.get(INT8_OUT_LABEL)):>16}{cell(c[TFLM_LABEL]):>22}{r['delta_db_vs_tflm']:+9.1f}{mark}"
              f"{cell(c.get(CONSTANT_LABEL)):>18}  {r['inputs']}")
    print("('<': edgecompile below TFLM)")


def column_width(labels: list[str]) -> int:
    return max(24, 2 + max(len(lab) for lab in labels))


def print_configs(rows: list[dict], labels: list[str]) -> None:
    print("\noutput SQNR dB / top-1 agreement % against the float model")
    w = column_width(labels)
    print(f"{'model':18}" + "".join(f"{lab:>{w}}" for lab in labels))
    for r in rows:
        print(f"{r['model']:18}" + "".join(f"{cell(r['configs'].get(lab)):>{w}}" for lab in labels))


def print_accuracy(rows: list[dict], labels: list[str]) -> None:
    trained = [r for r in rows if "float_accuracy" in r]
    if trained:
        print("\ntest-set accuracy % of the digits classifiers (float, then each configuration)")
        w = column_width(labels)
        print(f"{'model':18}{'float':>8}" + "".join(f"{lab:>{w}}" for lab in labels))
        for r in trained:
            cells = [f"{100 * r['configs'][lab]['accuracy']:.2f}" if lab in r["configs"] else "-" for lab in labels]
            print(f"{r['model']:18}{100 * r['float_accuracy']:8.2f}" + "".join(f"{c:>{w}}" for c in cells))


def print_memory(rows: list[dict]) -> None:
    rows = [r for r in rows if "macs" in r]
    if not rows:
        return
    print(f"\n{'model':18}{'MACs':>12}{'weights B':>11}{'arena B':>10}{'bound B':>10}{'unshared B':>12}{'export s':>10}")
    for r in rows:
        print(f"{r['model']:18}{r['macs']:12,}{r['weight_bytes']:11,}{r['arena_bytes']:10,}{r['arena_lower_bound']:10,}"
              f"{r['activations_unshared']:12,}{r['export_s']:10}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(all_models()))
    p.add_argument("--quick", action="store_true", help="only the default pipeline and the TFLM emulation")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ec-acc-") as tmp:
        for case in cases(Path(tmp), args.models.split(",")):
            rows.append(evaluate(case, Path(tmp), args.quick))
    print_headline(rows)
    labels = [DEFAULT_LABEL, NO_CORRECTION_LABEL, INT8_OUT_LABEL, TFLM_LABEL]
    if not args.quick:
        labels += [c[0] for c in CONFIGS] + [QAT_LABEL]
        print_configs(rows, labels)
    print_accuracy(rows, labels)
    print_memory(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "accuracy", "quick": args.quick, "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""Instructions per inference and per layer of whole models on QEMU Cortex-M cores, beside Arm's CMSIS-NN.

Three MLPerf-Tiny-sized models with random (seeded) weights and BatchNorm that export folds:
LeNet-5 (digits), the keyword-spotting DS-CNN and the visual-wake-words MobileNetV1-0.25.
Each is exported with the default options (64 random calibration samples) and counted with
`edgecompile bench` on every target; the figures are instructions (QEMU's TCG plugin), not
cycles.  Beside them: CMSIS-NN's instructions for the same layer shapes (see CMSIS_NN), the
ratio, instructions per MAC by kind of layer, and the project's goals, met or not.

    python benchmarks/bench_speed.py [--models lenet5,kws_dscnn,vww_mbv1]
        [--targets qemu-m4,qemu-m55,qemu-m0plus-an385] [--layers-target qemu-m4] [--quick]

Prints a table and writes JSON (benchmarks/results/bench_speed.json).  Never passes or fails.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
from cnn_zoo import DSCNN, conv_bn, randomize_batchnorm  # noqa: E402
from models import LeNet, save_program  # noqa: E402

from bench_common import count, per_mac, print_goals, write_json  # noqa: E402  (this folder)
from edgecompile.bench import bench  # noqa: E402
from edgecompile.errors import EdgeCompileError  # noqa: E402
from edgecompile.export import ExportSettings, export  # noqa: E402
from edgecompile.manifest import read_manifest  # noqa: E402

TARGETS = ["qemu-m4", "qemu-m55", "qemu-m0plus-an385"]


class MobileNetV1(nn.Module):
    """MLPerf Tiny visual wake words: MobileNetV1 at width 0.25 on 3x96x96, 13 depthwise-separable blocks."""

    BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]

    def __init__(self, classes=2):
        super().__init__()
        layers, cin = [conv_bn(3, 8, 3, 2, act=nn.ReLU())], 8
        for cout, stride in self.BLOCKS:
            layers += [conv_bn(cin, cin, 3, stride, groups=cin, act=nn.ReLU()), conv_bn(cin, cout, 1, act=nn.ReLU())]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


MODELS = {  # name -> (constructor, input shape, MACs of its convolutions and linear layers)
    "lenet5": (lambda: LeNet(batchnorm=True), (1, 28, 28), 199_968),
    "kws_dscnn": (DSCNN, (1, 49, 10), 2_656_768),
    "vww_mbv1": (MobileNetV1, (3, 96, 96), 7_489_664),
}

# CMSIS-NN (main of 2026-07-15) for the same layer shapes, instructions per inference: built with
# arm-none-eabi-gcc 12.2, -O2 -mthumb, run on QEMU 7.2 mps2-an386 (M4), mps3-an547 (M55, Helium) and
# mps2-an385 (M0+ code), every executed instruction counted by a TCG plugin around each layer;
# weights in flash, random int8 weights.  Instructions, not cycles.  None: not measured.
CMSIS_NN = {
    "lenet5": {"qemu-m4": 1_148_895, "qemu-m55": 422_288, "qemu-m0plus-an385": 2_617_131},
    "kws_dscnn": {"qemu-m4": 7_691_068, "qemu-m55": 1_806_409, "qemu-m0plus-an385": 28_981_662},
    "vww_mbv1": {"qemu-m4": 24_090_788, "qemu-m55": 6_546_452, "qemu-m0plus-an385": None},
}
CMSIS_NN_CORE = "qemu-m4"  # the core of the per-layer figures below, in layer order
CMSIS_NN_LAYERS = {
    "lenet5": [("conv1", 600_438), ("pool1", 60_358), ("conv2", 349_254), ("pool2", 17_210), ("fc1", 96_084),
               ("fc2", 23_332), ("fc3", 2_219)],
    "kws_dscnn": [("stem", 1_118_167), ("b0_dw", 560_972), ("b0_pw", 1_069_021), ("b1_dw", 560_972),
                  ("b1_pw", 1_069_021), ("b2_dw", 560_971), ("b2_pw", 1_069_021), ("b3_dw", 560_971),
                  ("b3_pw", 1_069_022), ("gap", 50_751), ("fc", 2_179)],
    "vww_mbv1": [("stem", 3_045_017), ("b0_dw", 1_469_168), ("b0_pw", 1_954_958), ("b1_dw", 700_529),
                 ("b1_pw", 1_168_734), ("b2_dw", 1_351_988), ("b2_pw", 1_589_598), ("b3_dw", 338_208),
                 ("b3_pw", 801_278), ("b4_dw", 653_576), ("b4_pw", 1_226_750), ("b5_dw", 163_486),
                 ("b5_pw", 635_454), ("b6_dw", 311_246), ("b6_pw", 1_079_358), ("b7_dw", 311_246),
                 ("b7_pw", 1_079_359), ("b8_dw", 311_246), ("b8_pw", 1_079_358), ("b9_dw", 311_246),
                 ("b9_pw", 1_079_358), ("b10_dw", 311_245), ("b10_pw", 1_079_357), ("b11_dw", 77_849),
                 ("b11_pw", 635_198), ("b12_dw", 142_682), ("b12_pw", 1_164_607), ("gap", 17_486),
                 ("fc", 1_203)],
}

# The project's goals: instructions per inference at most this many.
GOALS = {
    ("lenet5", "qemu-m4"): 450_000, ("kws_dscnn", "qemu-m4"): 3_850_000, ("vww_mbv1", "qemu-m4"): 14_500_000,
    ("kws_dscnn", "qemu-m55"): 1_810_000, ("vww_mbv1", "qemu-m55"): 6_550_000,
    ("kws_dscnn", "qemu-m0plus-an385"): 23_200_000,
}
DEPTHWISE_GOAL = ("kws_dscnn", "qemu-m4", 3.0)  # depthwise 3x3 on 64x25x5: at most 3 instructions per MAC
KINDS = ["patches", "stem conv", "depthwise", "pointwise", "general conv", "pooling", "linear"]


def save(name: str, out: Path, samples: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """The model with random weights and BatchNorm statistics, saved with torch.export (.pt2), and random
    calibration inputs."""
    make, shape, _ = MODELS[name]
    torch.manual_seed(seed)
    model = make().eval()
    randomize_batchnorm(model, seed)
    path = save_program(model, shape, out / f"{name}.pt2")
    calib = out / f"{name}_calib.npy"
    np.save(calib, np.random.default_rng(seed).standard_normal((samples,) + shape).astype(np.float32))
    return path, calib


def kind(node, first_conv: str) -> str:
    """The kind of a layer, for instructions per MAC by kind."""
    if node.op_type == "Conv2d":
        if node.name == first_conv:
            return "stem conv"
        oc, icg, kh, kw = node.weight_shape
        if node.groups > 1 and icg == 1 and node.groups == oc:
            return "depthwise"
        return "pointwise" if (kh, kw) == (1, 1) else "general conv"
    if node.op_type in ("MaxPool2d", "AvgPool2d"):
        return "pooling"
    return "linear" if node.op_type == "Linear" else node.op_type


def measure(name: str, work: Path, targets: list[str], samples: int | None, vectors: int) -> dict:
    model, calib = save(name, work)
    out = work / name
    export(ExportSettings(model, out, calib, vectors=vectors))
    graph, _ = read_manifest(out)
    nodes = {n.name: n for n in graph.nodes}
    first_conv = next(n.name for n in graph.nodes if n.op_type == "Conv2d")
    macs = sum(n.macs(graph) for n in graph.nodes if n.op_type in ("Conv2d", "Linear"))
    result = {"macs": macs, "macs_expected": MODELS[name][2], "targets": {}}
    for target in targets:
        try:
            r = bench(out, target, samples=samples)
        except EdgeCompileError as exc:
            text = str(exc)
            status = "does not fit" if "does not fit" in text else "failed"
            message = text.strip().splitlines()[0].replace(f"{out} ", "")
            result["targets"][target] = {"status": status, "message": message}
            continue
        layers = [{"name": c.name, "op": c.op, "macs": c.macs, "instructions": c.instructions,
                   "kind": "patches" if c.op == "Patches" else kind(nodes[c.name], first_conv)} for c in r.layers]
        result["targets"][target] = {"status": "ok", "instructions": r.instructions,
                                     "instructions_per_inference": r.per_inference, "bit_exact": r.bit_exact,
                                     "repeatable": r.repeatable, "arena_bytes": r.arena,
                                     "model_flash_bytes": r.model_flash, "layers": layers}
    return result


def pair_layers(name: str, layers: list[dict]) -> list[tuple[dict, str | None, int | None]]:
    """Our layers beside CMSIS-NN's, in order (None where the two lists do not line up)."""
    theirs = CMSIS_NN_LAYERS.get(name, [])
    if len(theirs) != len(layers):
        return [(layer, None, None) for layer in layers]
    return [(layer, label, count) for layer, (label, count) in zip(layers, theirs)]


def by_kind(pairs) -> dict:
    """Instructions per MAC (per window element for pooling) by kind, ours and CMSIS-NN's."""
    sums: dict[str, list[int]] = {}
    for layer, _, theirs in pairs:
        s = sums.setdefault(layer["kind"], [0, 0, 0])
        s[0] += layer["macs"]
        s[1] += layer["instructions"]
        s[2] = s[2] + theirs if theirs is not None and s[2] is not None else None
    return {k: {"macs": m, "ours_per_mac": round(o / m, 3) if m else None,
                "cmsis_nn_per_mac": round(t / m, 3) if m and t is not None else None}
            for k, (m, o, t) in sums.items()}


def goals(results: dict) -> list[dict]:
    rows = []
    for (name, target), limit in GOALS.items():
        t = results.get(name, {}).get("targets", {}).get(target)
        if t is None:
            continue
        got = t.get("instructions")
        rows.append({"goal": f"{name} on {target}", "limit": limit, "value": got,
                     "met": None if got is None else got <= limit})
    name, target, limit = DEPTHWISE_GOAL
    t = results.get(name, {}).get("targets", {}).get(target, {})
    dw = [layer["instructions"] / layer["macs"] for layer in t.get("layers", []) if layer["kind"] == "depthwise"]
    if t:
        rows.append({"goal": f"depthwise 3x3 on 64x25x5 ({name}, {target}), instr/MAC", "limit": limit,
                     "value": round(max(dw), 3) if dw else None, "met": max(dw) <= limit if dw else None})
    return rows


def _ratio(ours, theirs) -> str:
    return f"{ours / theirs:.2f}" if ours and theirs else "-"


def print_tables(results: dict, goal_rows: list[dict], layers_target: str) -> None:
    print("instructions per inference (not cycles); ratio = ours / CMSIS-NN")
    head = f"{'model':10s} {'target':18s} {'MACs':>10s} {'ours':>12s} {'CMSIS-NN':>12s} {'ratio':>6s} " \
           f"{'goal':>11s}  note"
    print(head)
    print("-" * len(head))
    for name, res in results.items():
        for target, t in res["targets"].items():
            theirs = CMSIS_NN[name].get(target)
            limit = GOALS.get((name, target))
            if t["status"] != "ok":
                print(f"{name:10s} {target:18s} {res['macs']:>10,} {t['status']:>12s} {count(theirs):>12s} "
                      f"{'-':>6s} {count(limit):>11s}  {t['message'][:90]}")
                continue
            ours = t["instructions"]
            met = "" if limit is None else ("met" if ours <= limit else "not met")
            note = ", ".join(x for x in (met, "" if t["bit_exact"] else "NOT bit-exact") if x)
            print(f"{name:10s} {target:18s} {res['macs']:>10,} {ours:>12,} {count(theirs):>12s} "
                  f"{_ratio(ours, theirs):>6s} {count(limit):>11s}  {note}")
    for name, res in results.items():
        t = res["targets"].get(layers_target)
        if not t or t["status"] != "ok":
            continue
        cmsis = layers_target == CMSIS_NN_CORE
        print(f"\n{name} on {layers_target}, per layer" + ("" if cmsis else " (CMSIS-NN per layer: M4 only)"))
        head = f"{'layer':22s} {'CMSIS-NN':9s} {'kind':12s} {'MACs':>9s} {'ours':>10s} {'/MAC':>6s} " \
               f"{'CMSIS-NN':>10s} {'/MAC':>6s} {'ratio':>6s}"
        print(head)
        print("-" * len(head))
        for layer in t["layers"]:
            ours, theirs, m = layer["instructions"], layer["cmsis_nn_instructions"], layer["macs"]
            print(f"{layer['name'][:22]:22s} {layer['cmsis_nn_layer'] or '-':9s} {layer['kind']:12s} {m:>9,} "
                  f"{ours:>10,} {per_mac(ours, m):>6s} {count(theirs):>10s} {per_mac(theirs, m):>6s} {_ratio(ours, theirs):>6s}")
        total_ours = sum(layer["instructions"] for layer in t["layers"])
        total_theirs = sum(c for _, c in CMSIS_NN_LAYERS[name]) if cmsis else None
        print(f"{'total':22s} {'':9s} {'':12s} {sum(x['macs'] for x in t['layers']):>9,} "
              f"{total_ours:>10,} {'':6s} {count(total_theirs):>10s} {'':6s} {_ratio(total_ours, total_theirs):>6s}")
    print(f"\ninstructions per MAC by kind of layer (pooling: per window element), on {layers_target}")
    print(f"{'model':10s} " + " ".join(f"{k:>17s}" for k in KINDS))
    print(f"{'':10s} " + " ".join(f"{'ours / CMSIS-NN':>17s}" for _ in KINDS))
    for name, res in results.items():
        kinds = res["by_kind"].get(layers_target, {})
        cells = ["-" if k not in kinds else f"{per_mac(kinds[k]['ours_per_mac'])} / {per_mac(kinds[k]['cmsis_nn_per_mac'])}"
                 for k in KINDS]
        print(f"{name:10s} " + " ".join(f"{c:>17s}" for c in cells))
    print_goals(goal_rows, "goals (instructions per inference unless stated)", 60)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--layers-target", default="qemu-m4", help="the target whose per-layer table is printed")
    ap.add_argument("--quick", action="store_true", help="count one inference (not 4), export 8 test vectors")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_speed.json")
    args = ap.parse_args(argv)
    targets = args.targets.split(",")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="ec-speed-") as tmp:
        for name in args.models.split(","):
            if name not in MODELS:
                ap.error(f"unknown model {name}; choose from {', '.join(MODELS)}")
            print(f"{name}: exporting and counting on {', '.join(targets)} ...", flush=True)
            res = measure(name, Path(tmp), targets, 1 if args.quick else None, 8 if args.quick else 256)
            res["by_kind"] = {}
            for target, t in res["targets"].items():
                if t["status"] == "ok":
                    pairs = pair_layers(name, t["layers"])
                    if target != CMSIS_NN_CORE:
                        pairs = [(layer, label, None) for layer, label, _ in pairs]
                    res["by_kind"][target] = by_kind(pairs)
                    for layer, label, theirs in pairs:
                        layer["cmsis_nn_layer"], layer["cmsis_nn_instructions"] = label, theirs
            res["cmsis_nn"] = CMSIS_NN[name]
            results[name] = res
    goal_rows = goals(results)
    print()
    print_tables(results, goal_rows, args.layers_target)
    doc = {"benchmark": "speed", "unit": "instructions (not cycles)", "cmsis_nn_layers_core": CMSIS_NN_CORE,
           "cmsis_nn_layers": CMSIS_NN_LAYERS, "goals": goal_rows, "models": results}
    return write_json(args.json, doc)


if __name__ == "__main__":
    sys.exit(main())

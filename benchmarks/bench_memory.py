"""Arena bytes per model under each --memory-plan: layer (every output apart from its inputs: the
layer-by-layer bound), in-place (layers write over the inputs they replace where their kernels'
order allows) and auto (in-place, and the first layers run in bands of rows when that lowers the
arena within the recompute budget), with where the peak sits, the MACs the bands recompute, and
TensorFlow Lite Micro's arena for the same model where one is known.  Prints a table and writes
JSON; no pass/fail.

Writing over an input recomputes nothing (the same kernels with other buffer offsets).  What the
bands cost in instructions, `bench_speed.py` measures (per-inference counts under QEMU).

    python benchmarks/bench_memory.py [--models kws_dscnn,vww_mbv1] [--json benchmarks/results/memory.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

# TFLM's arena for the same architectures (int8, its own planner), measured outside this repository.
TFLM_ARENA = {"kws_dscnn": 24_272, "vww_mbv1": 103_680, "mobilenetv2": 171_888}
# What the in-place plan is to reach: a fraction of TFLM's arena.
GOALS = {"kws_dscnn": 0.6, "vww_mbv1": 0.4, "mobilenetv2": 0.5}
SPEED_MODELS = ("kws_dscnn", "vww_mbv1", "lenet5")  # bench_speed.py's
ZOO_MODELS = ("mobilenetv2", "resnet8", "squeezenet", "shufflenet", "mobilenetv3_block")


def model_files(name: str, work: Path) -> tuple[Path, Path]:
    if name in SPEED_MODELS:
        import bench_speed
        return bench_speed.save(name, work)
    import cnn_zoo
    files = cnn_zoo.save(name, work)
    return files["model"], files["calib"]


def measure(name: str, work: Path) -> dict:
    import numpy as np

    from edgecompile.compiler import CompileOptions, compile_model
    from edgecompile.frontend import load_model
    from edgecompile.passes.plan_memory import plan_memory

    model, calib_path = model_files(name, work)
    calib = np.load(calib_path)
    t0 = time.perf_counter()
    compiled = compile_model(load_model(model, tuple(calib.shape[1:])), calib, CompileOptions())
    graph = compiled.graph
    t0 = time.perf_counter()
    layer, in_place = plan_memory(graph, "layer"), plan_memory(graph, "in-place")
    t0 = time.perf_counter()
    auto = plan_memory(graph, "auto")
    t_plan = time.perf_counter() - t0
    macs = sum(n.macs(graph) for n in graph.nodes)
    p = auto.patches
    row = {"model": name, "macs": macs, "layer_plan": layer.arena_size, "layer_bound": layer.layer_bound,
           "in_place_plan": in_place.arena_size, "auto_plan": auto.arena_size, "auto_bound": auto.lower_bound,
           "auto_vs_layer": auto.arena_size / layer.arena_size, "peak_layer": auto.peak,
           "layers_over_input": auto.overlapping,
           "patches": None if p is None else {"layers": p.nodes, "grid": list(p.grid), "tile_bytes": p.scratch_bytes},
           "extra_macs": 0 if p is None else p.extra_macs,
           "extra_macs_percent": 0.0 if p is None else round(100 * p.extra_macs / macs, 2),
           "auto_plan_seconds": round(t_plan, 3), "tflm_arena": TFLM_ARENA.get(name)}
    if name in TFLM_ARENA:
        row["auto_vs_tflm"] = auto.arena_size / TFLM_ARENA[name]
        row["goal_vs_tflm"] = GOALS[name]
        row["goal_met"] = row["auto_vs_tflm"] <= GOALS[name]
    return row


def print_table(rows: list[dict]) -> None:
    print(f"\n{'model':18}{'layer B':>9}{'in-place B':>11}{'auto B':>9}{'auto/layer':>11}{'TFLM B':>9}"
          f"{'auto/TFLM':>10}{'goal':>6}  {'bands':>5}{'+MACs %':>8}  {'peak at':40}")
    for r in rows:
        tflm = f"{r['tflm_arena']:,}" if r["tflm_arena"] else "-"
        ratio = f"{r['auto_vs_tflm']:.2f}" if "auto_vs_tflm" in r else "-"
        goal = ("met" if r["goal_met"] else "no") if "goal_met" in r else "-"
        bands = str(r["patches"]["grid"][0]) if r["patches"] else "-"
        print(f"{r['model']:18}{r['layer_plan']:9,}{r['in_place_plan']:11,}{r['auto_plan']:9,}"
              f"{r['auto_vs_layer']:11.2f}{tflm:>9}{ratio:>10}{goal:>6}  {bands:>5}{r['extra_macs_percent']:8.2f}  {r['peak_layer'][:40]:40}")
    print("\nlayer = --memory-plan layer (the layer-by-layer bound); in-place = no bands; auto = the default. "
          "+MACs: what the bands recompute (their halos).")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="kws_dscnn,vww_mbv1,mobilenetv2,lenet5,resnet8,squeezenet,shufflenet,"
                    "mobilenetv3_block")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"[{len(rows) + 1}/{len(args.models.split(','))}] {name}", flush=True)
            rows.append(measure(name, Path(tmp)))
    print_table(rows)
    text = json.dumps({"models": rows}, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

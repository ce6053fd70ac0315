"""Arena bytes per model: the layer-by-layer plan (every output apart from its inputs) beside
--memory-plan auto (layers write over the inputs they replace where their kernels' order allows),
with each plan's bound, where the peak sits, and TensorFlow Lite Micro's arena for the same model
where one is known.  Prints a table and writes JSON; no pass/fail.

Writing over an input recomputes nothing: the MACs, and the instructions `bench_speed.py` counts,
are the same in both plans (the C calls the same kernels with other buffer offsets).

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
    layer, auto = plan_memory(graph, "layer"), plan_memory(graph, "auto")
    t_plan = time.perf_counter() - t0
    row = {"model": name, "macs": sum(n.macs(graph) for n in graph.nodes),
           "layer_plan": layer.arena_size, "layer_bound": layer.layer_bound,
           "auto_plan": auto.arena_size, "auto_bound": auto.lower_bound, "auto_vs_layer": auto.arena_size / layer.arena_size,
           "peak_layer": auto.peak_layer(graph), "layers_over_input": auto.overlapping, "extra_macs": 0,
           "plan_seconds": round(t_plan, 3), "tflm_arena": TFLM_ARENA.get(name)}
    if name in TFLM_ARENA:
        row["auto_vs_tflm"] = auto.arena_size / TFLM_ARENA[name]
        row["goal_vs_tflm"] = GOALS[name]
        row["goal_met"] = row["auto_vs_tflm"] <= GOALS[name]
    return row


def print_table(rows: list[dict]) -> None:
    print(f"\n{'model':18}{'layer plan B':>13}{'auto plan B':>12}{'auto bound B':>13}{'auto/layer':>11}"
          f"{'TFLM B':>9}{'auto/TFLM':>10}{'goal':>6}  {'peak at':28}{'over input':>11}")
    for r in rows:
        tflm = f"{r['tflm_arena']:,}" if r["tflm_arena"] else "-"
        ratio = f"{r['auto_vs_tflm']:.2f}" if "auto_vs_tflm" in r else "-"
        goal = ("met" if r["goal_met"] else "no") if "goal_met" in r else "-"
        print(f"{r['model']:18}{r['layer_plan']:13,}{r['auto_plan']:12,}{r['auto_bound']:13,}{r['auto_vs_layer']:11.2f}"
              f"{tflm:>9}{ratio:>10}{goal:>6}  {r['peak_layer']:28}{len(r['layers_over_input']):11}")
    print("\nlayer plan = --memory-plan layer (its arena equals the layer-by-layer bound); auto = the default. "
          "Extra MACs and instructions: none (no recomputation).")


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

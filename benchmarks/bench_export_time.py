"""How long exporting the MobileNetV2-tiny zoo example (examples/cnn_zoo.py, 64 calibration samples)
takes: the `edgecompile export` command end to end, first and again (reading the ONNX conversion
the first kept, frontend/onnx_cache.py), what a new process spends importing torch and
loading the model before any compiling, export() in this process with its model import and compile
steps (Compiled.timings), and one integer-simulator evaluation on 64 samples.  Prints a
table and JSON; no pass/fail.  It imports edgecompile from this checkout.

    python benchmarks/bench_export_time.py [--model mobilenetv2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(work: Path, model: str, repeat: int) -> dict:
    import numpy as np

    import cnn_zoo
    from edgecompile import simulate
    from edgecompile.export import ExportSettings, export
    from edgecompile.frontend import load_model

    files = cnn_zoo.save(model, work / "zoo")
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    # a cache of ONNX conversions of its own (frontend/onnx_cache.py): empty for the first export
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "EDGECOMPILE_CACHE": "on",
           "EDGECOMPILE_CACHE_DIR": str(work / "cache")}
    cli_s = []
    for run_name in ("cli", "cli-again"):  # the first converts the .pt2 and keeps it, the repeat reads it
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edgecompile.cli", "export", str(files["model"]), "--calib",
                        str(files["calib"]), "-o", str(work / run_name), "-q"], check=True, env=env, capture_output=True)
        cli_s.append(time.perf_counter() - t0)
    env["EDGECOMPILE_CACHE"] = os.environ["EDGECOMPILE_CACHE"] = "off"  # below: every load converts

    # a new process: importing torch, then loading the model (torch.export.load imports much of torch)
    probe = ("import time; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); "
             "from pathlib import Path; from edgecompile.frontend import load_model; "
             f"load_model(Path({str(files['model'])!r}), {tuple(files['shape'])!r}); "
             "print(t1 - t0, time.perf_counter() - t1)")
    out = subprocess.run([sys.executable, "-c", probe], check=True, env=env, capture_output=True, text=True).stdout
    torch_s, cold_load_s = (float(v) for v in out.split()[-2:])

    t0 = time.perf_counter()
    result = export(ExportSettings(files["model"], work / "api", files["calib"]))
    export_s = time.perf_counter() - t0
    calib = np.load(files["calib"])
    load_s = best_of(lambda: load_model(files["model"], tuple(calib.shape[1:])), 1)

    graph = result.compiled.graph
    x_q = simulate.quantize_input(graph, calib[:64])
    def evaluate():
        getattr(simulate, "_outputs", {}).clear()  # a fresh evaluation, not the kept result of the last one
        simulate.run_integer(graph, x_q)
    sim_s = best_of(evaluate, repeat)
    return {"model": model, "samples": int(len(calib)), "cli_export_s": round(cli_s[0], 2),
            "cli_export_again_s": round(cli_s[1], 2),
            "new_process_import_torch_s": round(torch_s, 2), "new_process_model_import_s": round(cold_load_s, 2),
            "export_s": round(export_s, 2), "model_import_s": round(load_s, 2),
            "compile_s": {k: round(v, 2) for k, v in result.compiled.timings.items()},
            "integer_eval_64_s": round(sim_s, 3), "output_sqnr_db": round(result.summary["output_sqnr_db"], 2)}


def table(row: dict) -> str:
    lines = [f"{'':<38}seconds", f"{'edgecompile export (CLI, end to end)':<38}{row['cli_export_s']:>7.2f}",
             f"{'  again (the conversion kept)':<38}{row['cli_export_again_s']:>7.2f}",
             f"{'  a new process: import torch':<38}{row['new_process_import_torch_s']:>7.2f}",
             f"{'  a new process: then load the model':<38}{row['new_process_model_import_s']:>7.2f}",
             f"{'export() in process':<38}{row['export_s']:>7.2f}",
             f"{'  of which model import (torch)':<38}{row['model_import_s']:>7.2f}"]
    lines += [f"{'  compile: ' + k:<38}{v:>7.2f}" for k, v in row["compile_s"].items()]
    lines.append(f"{'integer simulator, 64 samples':<38}{row['integer_eval_64_s']:>7.3f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mobilenetv2", help="a model of examples/cnn_zoo.py")
    p.add_argument("--repeat", type=int, default=3, help="simulator evaluations timed (the best is reported)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        row = run(Path(tmp), args.model, args.repeat)
    print(table(row))
    print(json.dumps(row, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Streaming inference (`export --streaming`): instructions per NAME_step call against a whole NAME_run.

Two keyword spotters on 49 frames of 10 MFCCs, random (seeded) weights and BatchNorm that export
folds, 64 random calibration samples: a DS-CNN made streamable (examples/streaming_models.py:
stride 1 and no padding along time, a global pool) and an LSTM (64 hidden) on the same frames.
Each is exported with --streaming and counted with `edgecompile bench` on qemu-m4 (QEMU's TCG
plugin: instructions, not cycles): a full-window NAME_run, and NAME_step over the test vectors'
frames one after the other (every step's outputs checked against the simulator).  Beside them:
MACs per frame against the window's, and the RAM streaming adds.  The goal: a DS-CNN step at most
1/4 of the full window's instructions.

    python benchmarks/bench_streaming.py [--models dscnn,lstm] [--target qemu-m4]

Prints a table and writes JSON (benchmarks/results/bench_streaming.json).  Never passes or fails.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
from cnn_zoo import randomize_batchnorm  # noqa: E402
from streaming_models import LSTMKeyword, StreamingDSCNN  # noqa: E402

from bench_common import write_json  # noqa: E402  (this folder)
from edgecompile.bench import bench  # noqa: E402
from edgecompile.errors import EdgeCompileError  # noqa: E402
from edgecompile.export import ExportSettings, export  # noqa: E402
from edgecompile.frontend import load_module  # noqa: E402

MODELS = {"dscnn": (StreamingDSCNN, (1, 49, 10)), "lstm": (LSTMKeyword, (49, 10))}
GOAL = ("dscnn", 0.25)  # a DS-CNN step: at most this share of a full window's instructions


def measure(name: str, work: Path, target: str, seed: int = 0) -> dict:
    make, shape = MODELS[name]
    torch.manual_seed(seed)
    model = make().eval()
    randomize_batchnorm(model, seed)
    calib = np.random.default_rng(seed).standard_normal((64,) + shape).astype(np.float32)
    result = export(ExportSettings(work / f"{name}.pt", work / name, calib, vectors=4, streaming=True,
                                   loaded=load_module(model, shape, f"kws_{name}")))
    r = bench(result.out_dir, target, samples=2)
    st, s = r.extra["streaming"], result.summary
    return {"target": target, "macs_full_window": st["macs_full_window"], "macs_per_frame": st["macs_per_frame"],
            "instructions_full_window": r.instructions, "instructions_step_max": st["instructions_step_max"],
            "instructions_step_median": st["instructions_step_median"], "frames_counted": st["frames"],
            "step_share": round(st["instructions_step_max"] / r.instructions, 4),
            "state_bytes": s["streaming"]["state_bytes"], "step_arena_bytes": s["streaming"]["step_arena_bytes"],
            "run_arena_bytes": s["run_arena_bytes"], "arena_bytes": s["arena_bytes"],
            "weight_bytes": s["weight_bytes"], "bit_exact": r.bit_exact and st["bit_exact"],
            "unit": "instructions (not cycles)"}


def print_table(results: dict) -> None:
    head = ["model", "MACs window", "MACs/frame", "instr window", "instr/step (max)", "step/window", "state B",
            "arena B (run, step)", "bit-exact"]
    rows = [[name, f"{r['macs_full_window']:,}", f"{r['macs_per_frame']:,}", f"{r['instructions_full_window']:,}",
             f"{r['instructions_step_max']:,}", f"{100 * r['step_share']:.1f} %", f"{r['state_bytes']:,}",
             f"{r['run_arena_bytes']:,}, {r['step_arena_bytes']:,}", "yes" if r["bit_exact"] else "NO"]
            if "error" not in r else [name, r["error"]] + [""] * (len(head) - 2) for name, r in results.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in [head, ["-" * w for w in widths]] + rows:
        print("  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths))))
    name, share = GOAL
    if name in results and "step_share" in results[name]:
        got = results[name]["step_share"]
        print(f"\ngoal: {name} step <= {100 * share:.0f} % of the window's instructions: {100 * got:.1f} % "
              f"({'met' if got <= share else 'NOT met'})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--target", default="qemu-m4")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_streaming.json")
    args = ap.parse_args(argv)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as work:
        for name in args.models.split(","):
            try:
                results[name] = measure(name, Path(work), args.target)
            except EdgeCompileError as exc:
                results[name] = {"error": str(exc).splitlines()[0]}
    print_table(results)
    doc = {"target": args.target, "goal": {"model": GOAL[0], "max_step_share": GOAL[1]}, "models": results}
    return write_json(args.json, doc)


if __name__ == "__main__":
    sys.exit(main())

"""`edgecompile fit` on the trained digits LeNet (12 KB of weights) and the DS-CNN example
(random weights, output SQNR): search time, the chosen model against float, and how far the
Pareto front spans in flash.  Prints a table and writes JSON; no pass/fail.

    python benchmarks/bench_fit.py [--json benchmarks/results/fit.json] [--jobs N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))


def lenet(work: Path) -> dict:
    import train

    train.main(["--model", "lenet", "-o", str(work / "lenet")])
    d = work / "lenet"
    return {"name": "digits LeNet (trained)", "model": d / "lenet_digits.pt2", "calib": d / "calib.npy",
            "val": d / "test_x.npy", "labels": d / "test_y.npy", "flash": 12 * 1024}


def dscnn(work: Path) -> dict:
    import cnn_zoo

    f = cnn_zoo.save("dscnn", work / "dscnn")
    val = work / "dscnn" / "val.npy"
    np.save(val, np.random.default_rng(7).standard_normal((256,) + tuple(f["shape"])).astype(np.float32))
    return {"name": "DS-CNN (random weights)", "model": f["model"], "calib": f["calib"], "val": val,
            "labels": None, "flash": 12 * 1024}


def run(case: dict, work: Path, jobs: int) -> dict:
    from edgecompile.fit import fit

    t0 = time.perf_counter()
    r = fit(case["model"], case["calib"], case["val"], case["labels"], work / f"out_{case['model'].stem}",
            flash=case["flash"], jobs=jobs)
    seconds = time.perf_counter() - t0
    front = [p for p in r.points if p.pareto]
    return {"model": case["name"], "flash_budget": case["flash"], "seconds": round(seconds, 1),
            "dense_bytes": r.dense.weight_bytes, "chosen_bytes": r.chosen.weight_bytes,
            "chosen_arena": r.chosen.arena, "chosen_sqnr_db": round(r.chosen.sqnr_db, 2),
            "chosen_accuracy": r.chosen.accuracy, "float_accuracy": r.float_accuracy,
            "front_bytes": [p.weight_bytes for p in sorted(front, key=lambda p: p.weight_bytes)],
            "front_span": round(max(p.weight_bytes for p in front) / min(p.weight_bytes for p in front), 2),
            "candidates_measured": len(r.points), "chosen_settings": r.chosen.settings, "command": r.command}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for make in (lenet, dscnn):
            rows.append(run(make(work), work, args.jobs))
            print(f"{rows[-1]['model']}: {rows[-1]['seconds']} s", file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    from edgecompile.report import Table, fmt_db, fmt_int

    def acc(v):
        return "-" if v is None else f"{100 * v:.2f}"

    print(Table(["model", "budget B", "dense B", "chosen B", "SQNR dB", "accuracy % (float)", "front span",
                 "search s"],
                [[r["model"], fmt_int(r["flash_budget"]), fmt_int(r["dense_bytes"]), fmt_int(r["chosen_bytes"]),
                  fmt_db(r["chosen_sqnr_db"]), f"{acc(r['chosen_accuracy'])} ({acc(r['float_accuracy'])})",
                  f"{r['front_span']:.1f}x", f"{r['seconds']:.0f}"] for r in rows], {1, 2, 3, 4, 6, 7}).text())


if __name__ == "__main__":
    main()

"""Figures per example model: memory (arena vs its lower bound, weights), host code size,
export and verify time.  Prints a table and writes JSON; no pass/fail.

    python benchmarks/bench_export.py [--json benchmarks/results/export.json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

CONFIGS = [  # (example model, rank)
    ("lenet", None), ("lenet", 16), ("lenet-bn", None), ("mlp", None), ("mlp", 16),
]


def host_code_bytes(project: Path, name: str) -> int:
    """.text + .rodata of the model and its kernels compiled for the host at -O2 (no runner, no I/O)."""
    sources = [project / "src" / f"{name}.c"] + sorted((project / "runtime").glob("*.c"))
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            obj = Path(tmp) / (src.stem + ".o")
            subprocess.run(["gcc", "-std=c99", "-O2", "-c", f"-I{project / 'runtime'}", str(src), "-o", str(obj)],
                           check=True)
            out = subprocess.run(["size", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0].startswith((".text", ".rodata")) and parts[1].isdigit():
                    total += int(parts[1])
    return total


def run(work: Path) -> list[dict]:
    import train

    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    rows = []
    trained = {}
    for model, rank in CONFIGS:
        if model not in trained:
            d = work / model
            train.main(["--model", model, "-o", str(d)])
            trained[model] = d
        d = trained[model]
        pt = next(d.glob("*.pt2"))
        out = work / f"{model}-r{rank or 0}"
        t0 = time.perf_counter()
        result = export(ExportSettings(pt, out, d / "calib.npy", rank=rank))
        t_export = time.perf_counter() - t0
        t0 = time.perf_counter()
        v = verify(out)
        t_verify = time.perf_counter() - t0
        s = result.summary
        rows.append({
            "model": model, "rank": rank, "weight_bytes": s["weight_bytes"], "arena_bytes": s["arena_bytes"],
            "arena_lower_bound": s["arena_lower_bound"], "activations_unshared": s["activations_unshared"],
            "host_code_bytes": host_code_bytes(out, result.name), "macs": s["macs"],
            "export_s": round(t_export, 2), "verify_s": round(t_verify, 2),
            "bit_exact": f"{v.exact}/{v.total}", "top1_agreement": s["top1_agreement"],
            "output_sqnr_db": round(s["output_sqnr_db"], 2),
        })
    return rows


def table(rows: list[dict]) -> str:
    cols = ["model", "rank", "weight_bytes", "arena_bytes", "arena_lower_bound", "activations_unshared",
            "host_code_bytes", "macs", "export_s", "verify_s", "bit_exact", "top1_agreement", "output_sqnr_db"]
    cells = [[str(r[c]) if not isinstance(r[c], float) or c.endswith("_s") or c.endswith("db")
              else f"{100 * r[c]:.2f}%" for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "export.json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ec-bench-") as tmp:
        rows = run(Path(tmp))
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "export", "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

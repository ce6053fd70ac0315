"""Weight bytes and arena bytes of every example model per compression configuration
(dense, rank 16, pruned 70 %, pruned + rank 16), with float and int8 accuracy on the
digits test set and bit-exactness of the C.  Prints a table and writes JSON.

    python benchmarks/bench_compression.py [--json benchmarks/results/compression.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))


def main() -> None:
    import compress

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "compression.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ec-compress-") as tmp:
        for model in ("lenet", "mlp"):
            for r in compress.main(["--model", model, "-o", str(Path(tmp) / model)]):
                rows.append({"model": model, **r})
    print(f"\n{'model':6} {'config':16} {'weights B':>10} {'vs dense':>9} {'arena B':>8} {'float %':>8} "
          f"{'int8 %':>7}  bit-exact")
    dense = {r["model"]: r["weight_bytes"] for r in rows if r["config"] == "dense"}
    for r in rows:
        print(f"{r['model']:6} {r['config']:16} {r['weight_bytes']:10,} {r['weight_bytes'] / dense[r['model']]:9.1%} "
              f"{r['arena_bytes']:8,} {100 * r['float_accuracy']:8.2f} {100 * r['int8_accuracy']:7.2f}  "
              f"{r.get('bit_exact', '-')}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "compression", "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""A fuzz campaign: N random models (tests/fuzz_models.py), counted by outcome.

    python tests/fuzz_campaign.py N [--start SEED] [--save DIR]

Seeds run from --start (default: from the clock, printed so a campaign can be repeated).  Every
mismatch or crash is shrunk (fuzz_models.shrink: layers and options dropped while it fails the
same way) and saved as DIR/seed_<seed>.json (default tests/fuzz_regressions/), a spec that
test_fuzz.py replays; its traceback or numbers go in the same file."""
from __future__ import annotations

import argparse
import collections
import logging
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_models import REGRESSIONS, draw_spec, run_trial, save_regression, shrink  # noqa: E402

KINDS = ("generated", "exported", "refused", "exact", "mismatched", "crashed", "skipped")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="models to generate")
    ap.add_argument("--start", type=int, help="first seed [default: from the clock]")
    ap.add_argument("--save", type=Path, default=REGRESSIONS, help="where failing seeds go")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # PyTorch's exporters log at length
    start = args.start if args.start is not None else int(time.time()) % 2**31
    print(f"fuzz campaign: {args.n} models, seeds {start}..{start + args.n - 1}", flush=True)
    counts = collections.Counter({k: 0 for k in KINDS})
    t0 = time.perf_counter()
    for seed in range(start, start + args.n):
        spec = draw_spec(seed)
        outcome = run_trial(spec)
        counts["generated"] += 1
        counts[{"exact": "exact", "refused": "refused", "mismatch": "mismatched", "crash": "crashed",
                "skipped": "skipped"}[outcome.kind]] += 1
        counts["exported"] += outcome.kind in ("exact", "mismatch")
        if outcome.kind in ("mismatch", "crash"):
            small = shrink(spec, outcome)  # the smallest model that still fails the same way
            path = save_regression(small, run_trial(small) if small is not spec else outcome, args.save)
            print(f"seed {seed}: {outcome.kind}, shrunk from {len(spec['layers'])} to {len(small['layers'])} "
                  f"layers and {len(small['options'])} options, saved {path}\n{outcome.detail}", flush=True)
        elif outcome.kind in ("refused", "skipped"):
            print(f"seed {seed}: {outcome.kind}: {outcome.detail.splitlines()[0][:200]}", flush=True)
        if counts["generated"] % 25 == 0:
            print(f"[{time.perf_counter() - t0:7.0f}s] " + summary(counts), flush=True)
    print(summary(counts), flush=True)
    return 1 if counts["mismatched"] or counts["crashed"] else 0


def summary(counts) -> str:
    return "  ".join(f"{k} {counts[k]}" for k in KINDS)


if __name__ == "__main__":
    sys.exit(main())

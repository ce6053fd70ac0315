"""Instructions per inference of LSTM and GRU sequence models on QEMU Cortex-M cores, beside Arm's CMSIS-NN.

Two shapes, each a one-layer cell read at its last step by a Linear head (10 classes):
  big    49 steps of 10 features, hidden 64 (a keyword-spotting sized LSTM over MFCC frames)
  small  8 steps of 8 features, hidden 32
Each model has random (seeded) weights, is exported with the default options (64 random calibration
sequences) and counted with `edgecompile bench`; the figures are instructions (QEMU's TCG plugin),
not cycles.  MACs are the cell's matrix-vector products: steps x gates x hidden x (input + hidden),
the head excluded.  Beside them: CMSIS-NN's arm_lstm_unidirectional_s8 on the same LSTM shapes (its
GRU has no kernel; a GRU's goal is the LSTM's instructions per MAC), and the project's goals, met or not.

    python benchmarks/bench_recurrent.py [--models lstm_big,lstm_small,gru_big,gru_small]
        [--targets qemu-m4,qemu-m55,qemu-m0plus-an385] [--bits 8,4,2] [--quick]

--bits: each model also exported with --bits b (b <= 4: the cell's W and U packed two or four per
byte, ec_dual_linear_sparse_s8 / ec_gated_linear_sparse_s8), listed as NAME_Bbit with its weight bytes.

Prints a table and writes JSON (benchmarks/results/bench_recurrent.json).  Never passes or fails.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_common import count, per_mac, print_goals, write_json  # noqa: E402  (this folder)
from edgecompile.bench import bench  # noqa: E402
from edgecompile.errors import EdgeCompileError  # noqa: E402
from edgecompile.export import ExportSettings, export  # noqa: E402
from edgecompile.frontend import load_module  # noqa: E402

TARGETS = ["qemu-m4", "qemu-m55", "qemu-m0plus-an385"]
SHAPES = {"big": (49, 10, 64), "small": (8, 8, 32)}  # steps, input features, hidden
GATES = {"LSTM": 4, "GRU": 3}
MODELS = {f"{kind.lower()}_{shape}": (kind, shape) for kind in GATES for shape in SHAPES}

# CMSIS-NN's arm_lstm_unidirectional_s8 (main of 2026-07-15), instructions per inference: int8 weights
# and activations, int16 cell state, every recurrent MAC done; arm-none-eabi-gcc 12.2, -O2 -mthumb,
# QEMU 7.2 (mps2-an386 M4, mps3-an547 M55 with Helium, mps2-an385 M0+ code), every executed
# instruction counted by a TCG plugin.  Instructions, not cycles.  None: not measured.
CMSIS_NN = {
    "lstm_big": {"qemu-m4": 3_657_284, "qemu-m55": 1_329_958, "qemu-m0plus-an385": 9_613_594},
    "lstm_small": {"qemu-m4": 235_239, "qemu-m55": 100_189, "qemu-m0plus-an385": 599_561},
}
# Instructions per inference before the fast cell kernels (the reference loop ec_dual_linear_s8 and the
# byte-at-a-time elementwise kernels), measured by this script at -O2.
BEFORE = {
    ("lstm_big", "qemu-m4"): 5_779_125, ("lstm_big", "qemu-m55"): 4_784_873,
    ("lstm_big", "qemu-m0plus-an385"): 8_241_873, ("lstm_small", "qemu-m4"): 301_797,
    ("lstm_small", "qemu-m55"): 255_016, ("lstm_small", "qemu-m0plus-an385"): 435_750,
    ("gru_big", "qemu-m4"): 3_959_163, ("gru_big", "qemu-m55"): 2_937_401,
    ("gru_big", "qemu-m0plus-an385"): 6_390_315, ("gru_small", "qemu-m4"): 215_745,
    ("gru_small", "qemu-m55"): 164_524, ("gru_small", "qemu-m0plus-an385"): 356_280,
}
# A GRU before its n gate became one GatedDualLinear pass (W_n x + b_in + r (U_n h + b_hn): two linear
# layers, a product and an add before) and its update one Lerp pass (h' = n + z (h - n): two adds and a
# product before), measured by this script at -O2.
PREVIOUS = {("gru_big", "qemu-m4"): 1_563_400, ("gru_big", "qemu-m55"): 787_398,
            ("gru_big", "qemu-m0plus-an385"): 5_564_553, ("gru_small", "qemu-m4"): 89_678,
            ("gru_small", "qemu-m55"): 56_462, ("gru_small", "qemu-m0plus-an385"): 310_678}
# The project's goals: instructions per inference at most this many.
GOALS = {("lstm_big", "qemu-m4"): 1_830_000, ("lstm_big", "qemu-m55"): 1_330_000,
         ("lstm_small", "qemu-m4"): 118_000}
# A GRU at about an LSTM's instructions per MAC: its goal is the LSTM goal's rate times its MACs.
for (_name, _target), _limit in list(GOALS.items()):
    _shape = _name.split("_")[1]
    GOALS[(f"gru_{_shape}", _target)] = round(_limit * GATES["GRU"] / GATES["LSTM"], -3)


class Sequence(nn.Module):
    """A one-layer LSTM or GRU over (N, T, D), its last step's hidden state into a Linear head."""

    def __init__(self, kind: str, d: int, h: int, classes: int = 10):
        super().__init__()
        self.rnn = getattr(nn, kind)(d, h, batch_first=True)
        self.fc = nn.Linear(h, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def cell_macs(name: str) -> int:
    kind, shape = MODELS[name]
    steps, d, h = SHAPES[shape]
    return steps * GATES[kind] * h * (d + h)


def measure(name: str, work: Path, targets: list[str], samples: int | None, vectors: int, bits: int = 8) -> dict:
    kind, shape = MODELS[name]
    steps, d, h = SHAPES[shape]
    torch.manual_seed(0)
    model = Sequence(kind, d, h).eval()
    calib = np.random.default_rng(0).standard_normal((64, steps, d)).astype(np.float32)
    out = work / f"{name}_{bits}"
    exported = export(ExportSettings(work / f"{name}.pt", out, calib, loaded=load_module(model, (steps, d), name),
                                     vectors=vectors, bits=str(bits)))
    result = {"kind": kind, "steps": steps, "input": d, "hidden": h, "macs": cell_macs(name), "bits": bits,
              "weight_bytes": exported.summary["weight_bytes"], "targets": {}}
    for target in targets:
        try:
            r = bench(out, target, samples=samples)
        except EdgeCompileError as exc:
            text = str(exc)
            result["targets"][target] = {"status": "does not fit" if "does not fit" in text else "failed",
                                         "message": text.strip().splitlines()[0].replace(f"{out} ", "")}
            continue
        result["targets"][target] = {
            "status": "ok", "instructions": r.instructions, "instructions_per_inference": r.per_inference,
            "instructions_per_mac": round(r.instructions / result["macs"], 3), "bit_exact": r.bit_exact,
            "repeatable": r.repeatable, "arena_bytes": r.arena, "model_flash_bytes": r.model_flash,
            "layers": [{"name": c.name, "op": c.op, "macs": c.macs, "instructions": c.instructions}
                       for c in r.layers]}
    return result


def goals(results: dict) -> list[dict]:
    rows = []
    for (name, target), limit in GOALS.items():
        t = results.get(name, {}).get("targets", {}).get(target)
        if t is None:
            continue
        got = t.get("instructions")
        rows.append({"goal": f"{name} on {target}", "limit": int(limit), "value": got,
                     "met": None if got is None else got <= limit})
    return rows


def print_table(results: dict, goal_rows: list[dict]) -> None:
    print("instructions per inference (not cycles); /MAC over the cell's MACs; ratio = ours / CMSIS-NN")
    head = (f"{'model':16s} {'weights B':>9s} {'target':18s} {'MACs':>9s} {'before':>10s} {'ours':>10s} {'/MAC':>5s} "
            f"{'CMSIS-NN':>10s} {'/MAC':>5s} {'ratio':>5s} {'goal':>10s}  note")
    print(head)
    print("-" * len(head))
    for name, res in results.items():
        m, wb = res["macs"], f"{res['weight_bytes']:,}"
        for target, t in res["targets"].items():
            theirs = CMSIS_NN.get(name, {}).get(target)
            before = BEFORE.get((name, target))
            limit = GOALS.get((name, target))
            if t["status"] != "ok":
                print(f"{name:16s} {wb:>9s} {target:18s} {m:>9,} {count(before):>10s} {t['status']:>10s}  "
                      f"{t['message'][:80]}")
                continue
            ours = t["instructions"]
            met = "" if limit is None else ("met" if ours <= limit else "not met")
            was = PREVIOUS.get((name, target))
            note = ", ".join(x for x in (met, "" if t["bit_exact"] else "NOT bit-exact",
                                         "" if was is None else f"was {was:,}") if x)
            ratio = f"{ours / theirs:.2f}" if theirs else "-"
            goal = count(None if limit is None else int(limit))
            print(f"{name:16s} {wb:>9s} {target:18s} {m:>9,} {count(before):>10s} {ours:>10,} {per_mac(ours, m):>5s} "
                  f"{count(theirs):>10s} {per_mac(theirs, m):>5s} {ratio:>5s} {goal:>10s}  {note}")
    print_goals(goal_rows, "goals (instructions per inference)", 30)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--bits", default="8", help="comma-separated weight widths, e.g. 8,4,2 (other than 8: NAME_Bbit)")
    ap.add_argument("--quick", action="store_true", help="count one inference (not 4), export 8 test vectors")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_recurrent.json")
    args = ap.parse_args(argv)
    targets = args.targets.split(",")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="ec-recurrent-") as tmp:
        for name in args.models.split(","):
            if name not in MODELS:
                ap.error(f"unknown model {name}; choose from {', '.join(MODELS)}")
            for bits in (int(b) for b in args.bits.split(",")):
                key = name if bits == 8 else f"{name}_{bits}bit"  # CMSIS-NN, before and goals: 8 bits
                print(f"{key}: exporting and counting on {', '.join(targets)} ...", flush=True)
                results[key] = measure(name, Path(tmp), targets, 1 if args.quick else None, 8 if args.quick else 64,
                                       bits)
                results[key]["cmsis_nn"] = CMSIS_NN.get(key, {})
    goal_rows = goals(results)
    print()
    print_table(results, goal_rows)
    doc = {"benchmark": "recurrent", "unit": "instructions (not cycles)", "goals": goal_rows,
           "before": {f"{n} {t}": v for (n, t), v in BEFORE.items()},
           "previous": {f"{n} {t}": v for (n, t), v in PREVIOUS.items()}, "models": results}
    return write_json(args.json, doc)


if __name__ == "__main__":
    sys.exit(main())

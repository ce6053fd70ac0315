"""Accuracy of an exported project on a labelled test set: float model vs the integer
model (the simulator, which the C matches bit for bit).

    python examples/evaluate.py build/demo/out --model build/demo/lenet_digits.pt2 \
        --test-x build/demo/test_x.npy --test-y build/demo/test_y.npy
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def evaluate(project: Path, model: Path, test_x: Path, test_y: Path) -> dict:
    import torch

    from edgecompile import simulate
    from edgecompile.manifest import read_manifest

    x, y = np.load(test_x), np.load(test_y)
    from models import load_float_model

    net = load_float_model(model)
    with torch.no_grad():
        float_pred = net(torch.from_numpy(x)).argmax(1).numpy()
    graph, doc = read_manifest(project)
    int_pred = simulate.run_dequantized(graph, x).reshape(len(x), -1).argmax(1)
    s = doc["summary"]
    return {"samples": int(len(x)), "float_accuracy": float(np.mean(float_pred == y)),
            "int8_accuracy": float(np.mean(int_pred == y)), "agreement": float(np.mean(float_pred == int_pred)),
            "weight_bytes": s["weight_bytes"], "arena_bytes": s["arena_bytes"],
            "arena_lower_bound": s["arena_lower_bound"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="float vs integer accuracy of an exported project")
    p.add_argument("project", type=Path)
    p.add_argument("--model", type=Path, required=True, help="the TorchScript model that was exported")
    p.add_argument("--test-x", type=Path, required=True)
    p.add_argument("--test-y", type=Path, required=True)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    r = evaluate(args.project, args.model, args.test_x, args.test_y)
    print(f"test set: {r['samples']} images")
    print(f"  float accuracy  {100 * r['float_accuracy']:6.2f} %")
    print(f"  int8 accuracy   {100 * r['int8_accuracy']:6.2f} %  (C == simulator, bit for bit)")
    print(f"  difference      {100 * (r['int8_accuracy'] - r['float_accuracy']):+6.2f} points; "
          f"top-1 agreement {100 * r['agreement']:.2f} %")
    print(f"  weights {r['weight_bytes']} B flash, arena {r['arena_bytes']} B RAM "
          f"(lower bound {r['arena_lower_bound']} B)")
    if args.json:
        args.json.write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()

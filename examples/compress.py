"""Compression that the generated code exploits: the digits LeNet (or MLP) dense, factorized to
rank 16, pruned to 70 % (global magnitude pruning + a short fine-tune), and
both; for each, float and int8 accuracy on the held-out test set, weight flash and
arena bytes of the exported C, and a bit-exact check of that C on the host.

    python examples/compress.py [-o build/compress] [--sparsity 0.7] [--no-verify]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import digits_28x28  # noqa: E402
from models import MLP, LeNet, save_program  # noqa: E402
from train import accuracy, train  # noqa: E402


def prunable(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def global_magnitude_masks(model: nn.Module, sparsity: float) -> list[torch.Tensor]:
    """Masks keeping the largest |w| over all conv/linear weights together (global pruning)."""
    weights = prunable(model)
    magnitudes = torch.cat([w.detach().abs().reshape(-1) for w in weights])
    k = int(sparsity * magnitudes.numel())
    threshold = torch.kthvalue(magnitudes, k).values if k > 0 else torch.tensor(-1.0)
    return [(w.detach().abs() > threshold).float() for w in weights]


def apply_masks(model: nn.Module, masks: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for w, m in zip(prunable(model), masks):
            w.mul_(m)


def fine_tune_pruned(model, masks, x, y, epochs=12, lr=2e-3):
    """Train with the masks re-applied after every step, so pruned weights stay exactly zero."""
    train(model, x, y, epochs, lr=lr, seed=None, after_step=lambda: apply_masks(model, masks), verbose=False)


def export_config(name, model_path, calib, out_root, rank, sparse, x_test, y_test, do_verify):
    from edgecompile import simulate
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    result = export(ExportSettings(model_path, out_root / name, calib, rank=rank, sparse=sparse, vectors=64))
    g = result.compiled.graph
    float_acc = float(np.mean(g.run_float(x_test).argmax(1) == y_test))  # after factorization, before rounding
    int_acc = float(np.mean(simulate.run_dequantized(g, x_test).argmax(1) == y_test))
    row = {"config": name, "float_accuracy": float_acc, "int8_accuracy": int_acc,
           "weight_bytes": result.summary["weight_bytes"], "arena_bytes": result.summary["arena_bytes"],
           "sparse_layers": {d.layer: f"{d.format} {100 * d.density:.0f}%" for d in result.compiled.sparsity
                             if d.format != "dense"}}
    if do_verify:
        v = verify(result.out_dir)
        row["bit_exact"] = f"{v.exact}/{v.total}"
    return row


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", type=Path, default=Path("build/compress"))
    p.add_argument("--model", choices=["lenet", "mlp"], default="lenet")
    p.add_argument("--sparsity", type=float, default=0.7)
    p.add_argument("--no-verify", action="store_true", help="skip building and running the C")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x_train, y_train, x_test, y_test = digits_28x28()
    args.out.mkdir(parents=True, exist_ok=True)
    model = LeNet() if args.model == "lenet" else MLP()
    train(model, x_train, y_train, epochs=15)
    dense_path = save_program(model, x_train.shape[1:], args.out / f"{args.model}_dense.pt2")
    print(f"dense float accuracy {100 * accuracy(model, x_test, y_test):.2f} %")
    masks = global_magnitude_masks(model, args.sparsity)
    apply_masks(model, masks)
    print(f"pruned to {100 * args.sparsity:.0f} % zeros: float accuracy before fine-tuning "
          f"{100 * accuracy(model, x_test, y_test):.2f} %")
    fine_tune_pruned(model, masks, x_train, y_train)
    zeros = sum(int((w == 0).sum()) for w in prunable(model)) / sum(w.numel() for w in prunable(model))
    print(f"after fine-tuning: float accuracy {100 * accuracy(model, x_test, y_test):.2f} %, "
          f"{100 * zeros:.1f} % zeros")
    pruned_path = save_program(model, x_train.shape[1:], args.out / f"{args.model}_pruned.pt2")
    calib = args.out / "calib.npy"
    np.save(calib, x_train[:512])
    rows = [export_config(name, path, calib, args.out, rank, sparse, x_test, y_test, not args.no_verify)
            for name, path, rank, sparse in (("dense", dense_path, None, "off"), ("rank-16", dense_path, 16, "off"),
                                             ("pruned", pruned_path, None, "auto"),
                                             ("pruned+rank-16", pruned_path, 16, "auto"))]
    print(f"\n{'config':16} {'float %':>8} {'int8 %':>8} {'weights B':>10} {'arena B':>8}  bit-exact  sparse layers")
    for r in rows:
        print(f"{r['config']:16} {100 * r['float_accuracy']:8.2f} {100 * r['int8_accuracy']:8.2f} "
              f"{r['weight_bytes']:10,} {r['arena_bytes']:8,}  {r.get('bit_exact', '-'):9}  "
              f"{', '.join(f'{k} {v}' for k, v in r['sparse_layers'].items()) or '-'}")
    (args.out / "compress.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()

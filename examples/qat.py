"""Quantization-aware training that the C matches bit for bit: the digits LeNet (and the
MobileNet-style digits net) at 8, 6, 4 and 2 bits, accuracy after post-training quantization
and after a few epochs of QAT (edgecompile.qat), printed as a table and saved as a plot.
Each QAT model is exported and its C checked against the QAT forward pass.

    python examples/qat.py [-o build/qat] [--model lenet|mobilenet] [--bits 8,6,4,2] [--epochs 3]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import digits_28x28  # noqa: E402
from models import LeNet, TinyMobileNet  # noqa: E402
from train import accuracy, train  # noqa: E402


def fine_tune(model, x, y, epochs: int, lr: float = 5e-4) -> None:
    """The usual training loop on the QAT model: the float weights learn, the forward pass is integer."""
    train(model, x, y, epochs, lr=lr, seed=None, schedule=False, verbose=False)


def check_c_matches(qat_model, out_dir: Path, x: np.ndarray) -> bool:
    """Export, run the C on x, compare every int8 with the QAT forward pass."""
    from edgecompile import simulate
    from edgecompile.verify import verify

    result = qat_model.export(out_dir, vectors=16)
    qat_model.eval()
    with torch.no_grad():
        q_qat = qat_model(torch.from_numpy(x), integers=True).numpy().astype(np.int64)
    q_sim = simulate.run_integer(result.compiled.graph, simulate.quantize_input(result.compiled.graph, x))
    np.save(out_dir.parent / f"{out_dir.name}_x.npy", x)
    c = verify(result.out_dir, inputs=out_dir.parent / f"{out_dir.name}_x.npy")
    return bool(np.array_equal(q_qat, q_sim) and c.ok and np.array_equal(c.outputs.reshape(q_sim.shape), q_sim))


def main(argv=None) -> list[dict]:
    from edgecompile import qat

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", type=Path, default=Path("build/qat"))
    p.add_argument("--model", choices=["lenet", "mobilenet"], default="lenet")
    p.add_argument("--bits", default="8,6,4,2")
    p.add_argument("--epochs", type=int, default=3, help="QAT epochs")
    p.add_argument("--no-verify", action="store_true", help="skip exporting and running the C")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x_train, y_train, x_test, y_test = digits_28x28()
    args.out.mkdir(parents=True, exist_ok=True)
    model = LeNet() if args.model == "lenet" else TinyMobileNet()
    train(model, x_train, y_train, epochs=15 if args.model == "lenet" else 30)
    float_acc = accuracy(model, x_test, y_test)
    calib = x_train[:512]
    rows = []
    for bits in [int(b) for b in args.bits.split(",")]:
        qmodel = qat.prepare(model, calib, bits=bits)
        ptq = accuracy(qmodel, x_test, y_test)
        fine_tune(qmodel, x_train, y_train, args.epochs)
        after = accuracy(qmodel, x_test, y_test)
        row = {"bits": bits, "float_accuracy": float_acc, "ptq_accuracy": ptq, "qat_accuracy": after}
        if not args.no_verify:
            row["c_matches_qat"] = check_c_matches(qmodel, args.out / f"{args.model}_{bits}bit", x_test[:64])
        rows.append(row)
        print(f"{bits}-bit: float {100 * float_acc:.2f} %, PTQ {100 * ptq:.2f} %, QAT ({args.epochs} epochs) "
              f"{100 * after:.2f} %" + (f", C == QAT: {row['c_matches_qat']}" if "c_matches_qat" in row else ""),
              flush=True)
    (args.out / f"qat_{args.model}.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, args.out / f"qat_{args.model}.png", args.model)
    print(f"wrote {args.out / f'qat_{args.model}.json'} and {args.out / f'qat_{args.model}.png'}")
    return rows


def plot(rows, path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bits = [r["bits"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axhline(100 * rows[0]["float_accuracy"], color="k", ls="--", lw=1, label="float")
    ax.plot(bits, [100 * r["ptq_accuracy"] for r in rows], "o-", label="post-training quantization")
    ax.plot(bits, [100 * r["qat_accuracy"] for r in rows], "s-", label="quantization-aware training")
    ax.set_xlabel("weight bits")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(bits)
    ax.invert_xaxis()
    ax.set_title(f"{model} on digits: accuracy vs weight bits")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()

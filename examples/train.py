"""Train an example model on real data that ships with scikit-learn (or a Fashion-MNIST folder)
and save what `edgecompile export` needs.

    python examples/train.py --model lenet -o build/lenet
    python examples/train.py --model mlp --fashion-mnist ~/data/fashion -o build/mlp

Writes, in the output folder:
    <model>.pt2       the trained model as a torch.export program (loads without pickle)
    calib.npy         512 training inputs for calibration
    test_x.npy, test_y.npy   the held-out test set
    float_accuracy.txt
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import digits_28x28, fashion_mnist  # noqa: E402
from models import MLP, LeNet, TinyMobileNet, save_program  # noqa: E402


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 2e-3, seed: int | None = 0,
          batch: int = 64, after_step=None, schedule: bool = True, verbose: bool = True) -> None:
    """Adam on cross-entropy, cosine learning-rate schedule; `after_step` runs after every
    optimizer step (e.g. re-applying pruning masks).  Leaves the model in eval mode."""
    if seed is not None:
        torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs) if schedule else None
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt))
        total = 0.0
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            total += loss.item() * len(idx)
        if sched is not None:
            sched.step()
        if verbose:
            print(f"  epoch {epoch + 1:2d}/{epochs}: loss {total / len(xt):.4f}", flush=True)
    model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float(np.mean(pred == y))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["lenet", "lenet-bn", "mlp", "mobilenet"], default="lenet")
    p.add_argument("--fashion-mnist", metavar="DIR", help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("-o", "--out", default="build/example", help="output folder")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)  # same weights every run
    data = fashion_mnist(args.fashion_mnist) if args.fashion_mnist else digits_28x28()
    x_train, y_train, x_test, y_test = data
    dataset = "fashion-mnist" if args.fashion_mnist else "digits"
    model = {"lenet": lambda: LeNet(), "lenet-bn": lambda: LeNet(batchnorm=True), "mlp": lambda: MLP(),
             "mobilenet": lambda: TinyMobileNet()}[args.model]()
    epochs = args.epochs or (3 if args.fashion_mnist else 15)
    print(f"training {args.model} on {dataset}: {len(x_train)} train / {len(x_test)} test images, {epochs} epochs")
    t0 = time.perf_counter()
    train(model, x_train, y_train, epochs)
    acc = accuracy(model, x_test, y_test)
    print(f"float test accuracy {100 * acc:.2f} % ({time.perf_counter() - t0:.1f} s)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{args.model.replace('-', '_')}_{dataset.replace('-', '_')}"
    save_program(model, x_train.shape[1:], out / f"{name}.pt2")
    rng = np.random.default_rng(0)
    np.save(out / "calib.npy", x_train[rng.permutation(len(x_train))[:512]])
    np.save(out / "test_x.npy", x_test)
    np.save(out / "test_y.npy", y_test)
    (out / "float_accuracy.txt").write_text(f"{acc:.6f}\n")
    print(f"saved {out / (name + '.pt2')}, calib.npy, test_x.npy, test_y.npy")


if __name__ == "__main__":
    main()

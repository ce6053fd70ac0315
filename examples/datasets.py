"""Data for the examples: scikit-learn's bundled digits (ships with the package, no
download), or a Fashion-MNIST folder of IDX files when the user has one."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def digits_28x28(seed: int = 0):
    """sklearn's 8x8 digits (1797 images) upsampled to 28x28, scaled to [0, 1], split 80/20.

    Returns (x_train, y_train, x_test, y_test), x of shape (N, 1, 28, 28) float32.
    Upsampling: nearest neighbour to 24x24 (3x), then 2 pixels of zero border,
    which keeps the 28x28 LeNet unchanged.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32) / 16.0
    x = np.repeat(np.repeat(x, 3, axis=1), 3, axis=2)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    return x[:split], y[:split], x[split:], y[split:]


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no {stem}[.gz] (expected the Fashion-MNIST IDX files)")


def fashion_mnist(folder: str | Path):
    """A Fashion-MNIST (or MNIST) folder of IDX files -> (x_train, y_train, x_test, y_test)."""
    folder = Path(folder)
    xs = [_read_idx(_find(folder, f"{p}-images-idx3-ubyte")) for p in ("train", "t10k")]
    ys = [_read_idx(_find(folder, f"{p}-labels-idx1-ubyte")) for p in ("train", "t10k")]
    norm = [(x.astype(np.float32) / 255.0)[:, None] for x in xs]
    return norm[0], ys[0].astype(np.int64), norm[1], ys[1].astype(np.int64)

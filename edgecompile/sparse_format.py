"""Sparse storage of pruned int8 weight matrices (one row per output channel).

Two formats; the smaller one wins, and dense stays where neither saves flash:

bitmap   one bit per weight (bit k of byte j = column 8j + k, each row starting
         on a byte), then the nonzero values in row order:
             rows * ceil(K / 8) + nnz bytes.
         Best for moderate sparsity: 70 % pruning costs 0.125 + 0.3 = 0.425
         bytes per weight against 1 dense.
delta    per nonzero a uint8 gap (columns skipped since the previous nonzero)
         and its int8 value, per row a uint16 count of entries:
             2 * rows + 2 * entries bytes.
         Best when very sparse (density below about 1/8).  A gap longer than
         255 is bridged by a filler entry of value 0 (it adds 0 * x: exact).

Both kernels add exactly the products the dense kernel adds (the skipped ones
are 0 * x), so they are bit-exact with it; the int32 bound proven for the dense
layer holds for every partial sum, whatever the order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMATS = ("dense", "bitmap", "delta")
MAX_GAP = 255


@dataclass
class Encoded:
    format: str
    arrays: dict[str, np.ndarray]  # C array name suffix -> values (dtype = C type)

    @property
    def nbytes(self) -> int:
        return int(sum(a.size * a.itemsize for a in self.arrays.values()))


def encode_bitmap(w: np.ndarray) -> Encoded:
    w = np.asarray(w).reshape(np.shape(w)[0], -1)
    rows, k = w.shape
    per_row = (k + 7) // 8
    bits = np.zeros((rows, per_row * 8), dtype=np.uint8)
    bits[:, :k] = w != 0
    mask = np.packbits(bits, axis=1, bitorder="little")
    return Encoded("bitmap", {"mask": mask.reshape(-1).astype(np.uint8),
                              "values": w[w != 0].astype(np.int8)})


def encode_delta(w: np.ndarray) -> Encoded:
    w = np.asarray(w).reshape(np.shape(w)[0], -1)
    counts, gaps, values = [], [], []
    for row in w:
        prev, n = -1, 0
        for col in np.flatnonzero(row):
            gap = int(col) - prev - 1
            while gap > MAX_GAP:  # filler: jump MAX_GAP + 1 columns with a zero weight
                gaps.append(MAX_GAP)
                values.append(0)
                prev += MAX_GAP + 1
                gap -= MAX_GAP + 1
                n += 1
            gaps.append(gap)
            values.append(int(row[col]))
            prev = int(col)
            n += 1
        counts.append(n)
    return Encoded("delta", {"counts": np.array(counts, dtype=np.uint16),
                             "gaps": np.array(gaps, dtype=np.uint8),
                             "values": np.array(values, dtype=np.int8)})


def decode(enc: Encoded, rows: int, k: int) -> np.ndarray:
    """The dense matrix back (for tests: the formats are lossless)."""
    w = np.zeros((rows, k), dtype=np.int64)
    values = iter(enc.arrays["values"].tolist())
    if enc.format == "bitmap":
        mask = np.unpackbits(enc.arrays["mask"].reshape(rows, -1), axis=1, bitorder="little")[:, :k]
        for r, c in zip(*np.nonzero(mask)):
            w[r, c] = next(values)
        return w
    gaps = iter(enc.arrays["gaps"].tolist())
    for r, n in enumerate(enc.arrays["counts"].tolist()):
        col = -1
        for _ in range(n):
            col += next(gaps) + 1
            w[r, col] += next(values)
    return w


def density(w: np.ndarray) -> float:
    return float(np.count_nonzero(w) / max(np.size(w), 1))


def choose(w: np.ndarray, mode: str, dense_bytes: int | None = None) -> Encoded | None:
    """The sparse encoding to use under --sparse MODE, or None for dense.

    auto: the smallest of dense/bitmap/delta (dense_bytes: what dense storage costs, e.g. less
    than one byte per weight when packed); on: the smaller sparse format even if dense is
    smaller; off: dense."""
    if mode == "off":
        return None
    best = min((encode_bitmap(w), encode_delta(w)), key=lambda e: e.nbytes)
    if mode == "on" or best.nbytes < (np.size(w) if dense_bytes is None else dense_bytes):
        return best
    return None

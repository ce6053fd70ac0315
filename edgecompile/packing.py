"""Sub-8-bit weights packed into bytes (--bits 2..4).

A b-bit weight (b <= 4) is stored in a field of 4 bits (b = 3, 4: two per byte)
or 2 bits (b = 2: four per byte), two's complement, lowest field first:
    byte = w0 & 0xF | (w1 & 0xF) << 4            4-bit fields
    byte = w0 & 3 | (w1 & 3) << 2 | ... << 6     2-bit fields
Each output channel's row starts on a byte boundary (the last byte of a row is
padded with zero fields), so a kernel finds row r at r * row_bytes.  Weights of
5 to 8 bits stay one per byte.  runtime_c/ec_packed.c reads this format.
"""
from __future__ import annotations

import numpy as np


def field_bits(bits: int) -> int:
    """Bits of storage per weight: 2, 4 or 8."""
    return 2 if bits <= 2 else 4 if bits <= 4 else 8


def row_bytes(k: int, bits: int) -> int:
    per_byte = 8 // field_bits(bits)
    return (k + per_byte - 1) // per_byte


def pack(weight: np.ndarray, bits: int) -> np.ndarray:
    """(rows, ...) int weights of `bits` bits -> the packed uint8 stream."""
    w = np.asarray(weight, dtype=np.int64).reshape(np.shape(weight)[0], -1)
    f = field_bits(bits)
    if f == 8:
        return w.astype(np.int8).view(np.uint8).reshape(-1)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if w.size and (w.min() < lo or w.max() > hi):
        raise ValueError(f"weights outside the {bits}-bit range")
    per_byte = 8 // f
    rows, k = w.shape
    padded = np.zeros((rows, row_bytes(k, bits) * per_byte), dtype=np.int64)
    padded[:, :k] = w & ((1 << f) - 1)
    fields = padded.reshape(rows, -1, per_byte)
    packed = sum(fields[:, :, j] << (f * j) for j in range(per_byte))
    return packed.astype(np.uint8).reshape(-1)


def unpack(packed: np.ndarray, rows: int, k: int, bits: int) -> np.ndarray:
    """The inverse of pack (for tests)."""
    f = field_bits(bits)
    if f == 8:
        return np.asarray(packed, dtype=np.uint8).view(np.int8).reshape(rows, k).astype(np.int64)
    per_byte = 8 // f
    b = np.asarray(packed, dtype=np.int64).reshape(rows, -1)
    fields = np.stack([(b >> (f * j)) & ((1 << f) - 1) for j in range(per_byte)], axis=2).reshape(rows, -1)[:, :k]
    return np.where(fields >= 1 << (f - 1), fields - (1 << f), fields)

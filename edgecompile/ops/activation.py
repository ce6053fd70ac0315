"""Activations that fuse into a preceding conv/linear as a clamp of its output.

A clamp activation is exact in fixed point: ReLU is max(y, 0), so on the
integer output it is just a raised lower saturation bound (rule 3 of the
numerics contract) and costs nothing at run time.
"""
from __future__ import annotations

import numpy as np

from .. import numerics

CLAMP_ACTIVATIONS = ("relu",)


def apply_float(act: str | None, y: np.ndarray) -> np.ndarray:
    if act is None:
        return y
    if act == "relu":
        return np.maximum(y, 0)
    raise ValueError(f"unknown activation {act}")


def clamp_bounds(act: str | None, bits: int) -> tuple[int, int]:
    """Integer saturation bounds of a layer's output with this fused activation."""
    lo, hi = numerics.qrange(bits)
    if act is None:
        return lo, hi
    if act == "relu":
        return 0, hi
    raise ValueError(f"unknown activation {act}")

"""Activations that fuse into the layer before them as a clamp of its output.

A clamp activation (ReLU, ReLU6, hardtanh / Clip) is exact in fixed point: on
the integer output it is just tighter saturation bounds (rule 3 of the
numerics contract), so it costs nothing at run time.  An activation is stored
in a node's attrs["act"] as {"name": ..., "min": float or None, "max": float
or None}; None means no activation.  Nonlinear activations (h-swish, sigmoid,
tanh...) are table lookups instead: see ops/lut.py.
"""
from __future__ import annotations

import numpy as np

from .. import numerics


def clip(name: str, lo: float | None = None, hi: float | None = None) -> dict:
    return {"name": name, "min": None if lo is None else float(lo), "max": None if hi is None else float(hi)}


RELU = clip("relu", 0.0)
RELU6 = clip("relu6", 0.0, 6.0)


def named_clip(lo: float | None, hi: float | None) -> dict:
    """Clip(lo, hi) under its usual name (ReLU6 from Clip(0, 6), as exporters write it)."""
    if lo == 0.0 and hi is None:
        return RELU
    if lo == 0.0 and hi == 6.0:
        return RELU6
    return clip("clip", lo, hi)


def combine(first: dict | None, then: dict | None) -> dict | None:
    """The clamp of applying `first`, then `then` (their ranges intersect)."""
    if first is None or then is None:
        return then or first
    lo = max((v for v in (first["min"], then["min"]) if v is not None), default=None)
    hi = min((v for v in (first["max"], then["max"]) if v is not None), default=None)
    if lo is not None and hi is not None and hi < lo:
        hi = lo
    return named_clip(lo, hi) if (lo, hi) in ((0.0, None), (0.0, 6.0)) else clip(f"{first['name']}+{then['name']}",
                                                                                    lo, hi)


def describe(act: dict | None) -> str:
    if act is None:
        return ""
    if act["name"] == "clip":
        return f" +clip({act['min']:g},{act['max']:g})" if act["min"] is not None and act["max"] is not None \
            else f" +clip({act['min']},{act['max']})"
    return f" +{act['name']}"


def apply_float(act: dict | None, y: np.ndarray) -> np.ndarray:
    if act is None:
        return y
    lo = -np.inf if act["min"] is None else act["min"]
    hi = np.inf if act["max"] is None else act["max"]
    return np.clip(y, lo, hi)


def code_bounds(act: dict | None, frac_bits: int, bits: int, zero_point: int) -> tuple[int, int]:
    """The saturation bounds of an output's codes q = v + z: the activation's bounds on the value
    v (clamp_bounds, over a range one bit wider when z != 0: v may reach 2^bits - 1 for z = -128)
    moved by z, within the signed `bits`-bit code range."""
    lo, hi = clamp_bounds(act, frac_bits, bits + (zero_point != 0))
    qlo, qhi = numerics.qrange(bits)
    return max(lo + zero_point, qlo), min(hi + zero_point, qhi)


def clamp_bounds(act: dict | None, frac_bits: int, bits: int) -> tuple[int, int]:
    """Integer saturation bounds of an output with frac bits `frac_bits` and this activation.

    A bound b becomes q = round_half_up(b * 2^f) (rule 4), e.g. ReLU6 at f = 4 clamps at 96."""
    lo, hi = numerics.qrange(bits)
    if act is None:
        return lo, hi
    wide = 1 << 40
    if act["min"] is not None:
        lo = max(lo, int(numerics.quantize_float(act["min"], frac_bits, -wide, wide)))
    if act["max"] is not None:
        hi = min(hi, int(numerics.quantize_float(act["max"], frac_bits, -wide, wide)))
    return min(lo, hi), hi

"""The torch pieces the ops' QAT forward passes share (edgecompile.qat runs them).

Each op's `qat_forward` redoes its simulator step (`run_int`) in torch on integer-valued
float64 tensors, which hold every int32 exactly, with straight-through gradients.  This
module imports torch, so op files import it inside `qat_forward` only: importing
edgecompile.ops must not import torch.  It imports nothing above the ops.
"""
from __future__ import annotations

import numpy as np
import torch

DTYPE = torch.float64  # exact for every integer below 2^53, so for every int32 accumulator


def straight_through(value: torch.Tensor, exact: torch.Tensor, lo=None, hi=None) -> torch.Tensor:
    """`exact` (an integer-valued tensor computed from `value`) in the forward pass, the gradient of
    `value` in the backward pass, none where `exact` saturated at lo/hi."""
    grad = value - value.detach()  # exactly 0 in value, d(value) in gradient
    if lo is not None or hi is not None:
        inside = torch.ones_like(value, dtype=torch.bool)
        if lo is not None:
            inside &= value.detach() > lo - 0.5
        if hi is not None:
            inside &= value.detach() < hi + 0.5
        grad = grad * inside
    return exact.detach() + grad


def round_half_up(v: torch.Tensor) -> torch.Tensor:
    """Rule 2 / rule 4 on exact float64 values: floor(v + 1/2)."""
    return torch.floor(v + 0.5)


def requantize(acc: torch.Tensor, shifts, lo: int, hi: int, channel_axis: int = 1) -> torch.Tensor:
    """sat(floor(acc * 2^-s + 1/2)) per channel, straight-through."""
    s = torch.as_tensor(np.asarray(shifts, dtype=np.float64), dtype=DTYPE)
    shape = [1] * acc.ndim
    if s.numel() > 1:
        shape[channel_axis] = -1
    scaled = acc * torch.pow(2.0, -s).reshape(shape)
    return straight_through(scaled, torch.clamp(round_half_up(scaled), lo, hi), lo, hi)


def align(x: torch.Tensor, k: int) -> torch.Tensor:
    """numerics.align: x * 2^k, exact for k >= 0, rounded half up (straight-through) for k < 0."""
    if k >= 0:
        return x * float(1 << k)
    scaled = x * 2.0 ** k
    return straight_through(scaled, round_half_up(scaled))


def as_tensor(values: np.ndarray) -> torch.Tensor:
    """An integer array (a table, quantized weights) as exact float64."""
    return torch.as_tensor(np.asarray(values).astype(np.float64), dtype=DTYPE)


class Surrogate(torch.autograd.Function):
    """Forward: exact(x), the op's integer rule (tables, softmax); backward: gradient(x, grad), the
    derivative of the real function that rule approximates."""

    @staticmethod
    def forward(ctx, x, exact, gradient):
        ctx.save_for_backward(x)
        ctx.gradient = gradient
        return exact(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ctx.gradient(x, grad), None, None


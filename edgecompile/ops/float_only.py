"""Ops that exist only in the float graph: passes remove them before quantization.

BatchNorm is folded into the conv/linear before it (passes/fold_batchnorm.py);
Identity (also Dropout in evaluation) is dropped (passes/cleanup.py).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import Op, register


@register
class BatchNorm(Op):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (axis 1)."""

    op_type = "BatchNorm"

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def scale_and_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """BN as y = a * x + c per channel, in float64."""
        p = {k: np.asarray(v, dtype=np.float64) for k, v in self.params.items()}
        a = p["gamma"] / np.sqrt(p["var"] + float(self.attrs["eps"]))
        return a, p["beta"] - a * p["mean"]

    def run_float(self, x: np.ndarray) -> np.ndarray:
        a, c = self.scale_and_shift()
        extra = (1,) * (np.ndim(x) - 2)
        return x * a.reshape((1, -1) + extra) + c.reshape((1, -1) + extra)


@register
class Identity(Op):
    """Identity, and Dropout in inference mode."""

    op_type = "Identity"

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return x

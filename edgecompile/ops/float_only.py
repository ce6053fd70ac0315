"""Ops that exist only in the float graph: passes remove them before quantization.

BatchNorm is folded into the conv/linear before it (passes/fold_batchnorm.py);
Identity (also Dropout in evaluation) is dropped (passes/cleanup.py); a zero Pad
is folded into the convolution after it (passes/fold_pad.py).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import Op, register


@register
class BatchNorm(Op):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (axis 1)."""

    op_type = "BatchNorm"
    onnx_ops = ("BatchNormalization",)
    float_only = "passes/fold_batchnorm.py folds it into the conv/linear before it"
    not_trainable = "float-only: folded into the layer before it, before quantization"

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
    onnx_ops = ("Identity", "Dropout")
    float_only = "passes/cleanup.py drops it"
    not_trainable = "float-only: removed before quantization"

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return x


@register
class Pad(Op):
    """Zero padding of the spatial axes; folded into the convolution after it."""

    op_type = "Pad"
    onnx_ops = ("Pad",)
    float_only = "passes/fold_pad.py folds it into the convolution after it"
    not_trainable = "float-only: folded into the convolution after it, before quantization"

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        c, h, w = graph.shape(self.inputs[0])
        pt, pl, pb, pr = self.attrs["pads"]
        return (c, h + pt + pb, w + pl + pr)

    def run_float(self, x: np.ndarray) -> np.ndarray:
        pt, pl, pb, pr = self.attrs["pads"]
        return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))

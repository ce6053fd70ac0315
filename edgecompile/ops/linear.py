"""Linear: y = W x + b on a 1-D input (a flattened feature vector).

params: weight (out, in), bias (out).  attrs: act (fused clamp).
C kernel: ec_linear_s8 in runtime_c/ec_linear.c.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from . import activation
from .base import register
from .weighted import WeightedOp


@register
class Linear(WeightedOp):
    op_type = "Linear"
    runtime_files = ("ec_linear",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        shape = graph.shape(self.inputs[0])
        out_f, in_f = self.weight_shape
        if len(shape) != 1 or shape[0] != in_f:
            raise ValueError(f"linear {self.name}: expects a vector of {in_f} features, input has shape {shape}")
        return (out_f,)

    def describe(self) -> str:
        out_f, in_f = self.weight_shape
        text = f"{in_f}->{out_f}"
        return text + activation.describe(self.attrs.get("act"))

    def macs(self, graph: Graph) -> int:
        return int(np.prod(self.weight_shape))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, dtype=np.float64) @ np.asarray(self.params["weight"], dtype=np.float64).T
        if "bias" in self.params:
            y = y + np.asarray(self.params["bias"], dtype=np.float64)
        return self.run_float_act(y)

    def accumulate(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        w = self.qparams["weight"].astype(np.int64)
        return np.asarray(x_q, dtype=np.int64) @ w.T

    def emit_c(self, em) -> None:
        w, b, s, clamp = self.emit_requant_args(em)
        out_f, in_f = self.weight_shape
        em.call(f"ec_linear_s8({em.buffer(self.inputs[0])}, {in_f}, {w}, {b}, {s}, {out_f}, "
                f"{em.buffer(self.outputs[0])}, {clamp})")

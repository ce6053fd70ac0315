"""Reshape (Flatten, view): the same bytes under another shape.

In (C, H, W) element order a reshape moves no data, so it emits no code and
its output shares the input's buffer (the memory planner merges them).
attrs: shape (target shape without the batch axis).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import Op, register


@register
class Reshape(Op):
    op_type = "Reshape"
    onnx_ops = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")
    preserves_format = True
    keeps_codes = True
    is_alias = True

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        size = int(np.prod(graph.shape(self.inputs[0])))
        shape = tuple(int(d) for d in self.attrs["shape"])
        if int(np.prod(shape)) != size:
            raise ValueError(f"reshape {self.name}: cannot view {size} elements as {shape}")
        return shape

    def describe(self) -> str:
        return "x".join(str(d) for d in self.attrs["shape"])

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return np.reshape(x, (np.shape(x)[0],) + tuple(self.attrs["shape"]))

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        return np.reshape(x_q, (np.shape(x_q)[0],) + tuple(self.attrs["shape"]))

    def qat_forward(self, model, x):
        return x.reshape((x.shape[0],) + tuple(self.attrs["shape"]))

    def emit_c(self, em) -> None:
        em.comment(f"{self.name}: reshape to {self.describe()} is a view, no code")

"""ReLU that could not be fused into a preceding conv/linear: y = max(x, 0).

Keeps the input's Q-format; exact in fixed point.
C kernel: ec_relu_s8 in runtime_c/ec_elementwise.c.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import Op, register


@register
class Relu(Op):
    op_type = "Relu"
    onnx_ops = ("Relu",)
    preserves_format = True
    in_place = True
    same_position = True
    runtime_files = ("ec_elementwise",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def macs(self, graph: Graph) -> int:
        return int(np.prod(graph.shape(self.inputs[0])))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        return np.maximum(np.asarray(x_q, dtype=np.int64), 0)

    def qat_forward(self, model, x):
        import torch

        return torch.clamp(x, min=0)

    def emit_c(self, em) -> None:
        size = int(np.prod(em.graph.shape(self.inputs[0])))
        if self.is_wide(em.graph):  # a ReLU is a clamp at 0 and the type's top
            top = (1 << (em.graph.tensors[self.outputs[0]].bits - 1)) - 1
            em.call(f"ec_clamp_any({em.arg(self.inputs[0], True)}, {em.arg(self.outputs[0], True)}, {size}, 0, {top})")
            return
        em.call(f"ec_relu_s8({em.buffer(self.inputs[0])}, {em.buffer(self.outputs[0])}, {size})")

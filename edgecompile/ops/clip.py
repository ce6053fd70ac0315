"""Clip (ReLU6, hardtanh) that could not be fused into a preceding layer: a clamp.

Keeps the input's Q-format; the bounds are quantized with it (ops/activation.py).
C kernel: ec_clamp_s8 in runtime_c/ec_elementwise.c (works in place).
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from . import activation
from .base import Op, register


@register
class Clip(Op):
    op_type = "Clip"
    onnx_ops = ("Clip",)
    preserves_format = True
    in_place = True
    same_position = True
    runtime_files = ("ec_elementwise",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def describe(self) -> str:
        return activation.describe(self.attrs["act"]).strip()

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return activation.apply_float(self.attrs["act"], x)

    def quantize(self, graph: Graph, options) -> None:
        t = graph.tensors[self.inputs[0]]
        lo, hi = activation.clamp_bounds(self.attrs["act"], t.frac_bits, t.bits)
        self.qattrs = {"act_min": lo, "act_max": hi}

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        return numerics.saturate(x_q, self.qattrs["act_min"], self.qattrs["act_max"])

    def qat_forward(self, model, x):
        import torch

        return torch.clamp(x, self.qattrs["act_min"], self.qattrs["act_max"])

    def emit_c(self, em) -> None:
        size = int(np.prod(em.graph.shape(self.inputs[0])))
        wide = self.is_wide(em.graph)
        em.call(f"ec_clamp_{'any' if wide else 's8'}({em.arg(self.inputs[0], wide)}, {em.arg(self.outputs[0], wide)}, "
                f"{size}, {self.qattrs['act_min']}, {self.qattrs['act_max']})")

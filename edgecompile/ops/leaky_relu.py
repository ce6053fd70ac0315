"""LeakyRelu: y = x for x >= 0, alpha * x below, with the slope as a fixed-point multiplier.

alpha becomes m = round_half_up(alpha * 2^g) with g = 14 (ops/add.py's multiplier: +-1 stays
exact, m = +-1 and g = 0), and the output keeps the input's Q-format:
    y = x                                      x >= 0
    y = sat(rounding_shift(x * m, g))          x < 0     (rules 2, 3)
|x * m| <= 2^7 * 2^22 for |alpha| <= 256 (the frontend refuses steeper slopes): the product
fits int32 with room to spare.  attrs: alpha (ONNX's, default 0.01).
C kernel: ec_leaky_relu_s8 in runtime_c/ec_leaky_relu.c (works in place).
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from .add import multiplier
from .base import Op, register

MAX_ALPHA = 256.0  # |x * m| <= 2^7 * 2^22 < 2^31


@register
class LeakyRelu(Op):
    op_type = "LeakyRelu"
    onnx_ops = ("LeakyRelu",)
    preserves_format = True
    in_place = True
    same_position = True
    int8_only = True  # one int8 kernel; the multiplier's bound assumes |x| <= 2^7
    runtime_files = ("ec_leaky_relu",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def describe(self) -> str:
        return f"alpha {self.attrs['alpha']:g}"

    def macs(self, graph: Graph) -> int:
        return int(np.prod(graph.shape(self.inputs[0])))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.where(x >= 0, x, self.attrs["alpha"] * x)

    def quantize(self, graph: Graph, options) -> None:
        alpha = float(self.attrs["alpha"])
        assert abs(alpha) <= MAX_ALPHA, "the frontend refuses steeper slopes (int32 bound above)"
        m, g = multiplier(alpha)
        lo, hi = numerics.qrange(graph.tensors[self.outputs[0]].bits)
        self.qattrs = {"mult": m, "shift": g, "act_min": lo, "act_max": hi}

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        q = self.qattrs
        x = np.asarray(x_q, np.int64)
        return np.where(x >= 0, x, numerics.requantize(x * q["mult"], q["shift"], q["act_min"], q["act_max"]))

    def qat_forward(self, model, x):
        import torch

        from .qat_support import requantize

        q = self.qattrs
        return torch.where(x >= 0, x, requantize(x * q["mult"], [q["shift"]], q["act_min"], q["act_max"]))

    def emit_c(self, em) -> None:
        q = self.qattrs
        size = int(np.prod(em.graph.shape(self.inputs[0])))
        em.call(f"ec_leaky_relu_s8({em.buffer(self.inputs[0])}, {em.buffer(self.outputs[0])}, {size}, {q['mult']}, "
                f"{q['shift']})")

"""Add of two activations (residual connections), each in its own Q-format.

Both operands are aligned to a common format F = the finer of the two
(numerics.align: exact left shifts; F is capped at 23 bits above the coarser
one, where the finer operand is rounded instead), added in int32, then
requantized to the output's calibrated format like any layer:
    y = sat(rounding_shift(align(a, F - f_a) + align(b, F - f_b), F - f_out))
A ReLU after the add fuses as the output clamp.  C kernel: ec_add_s8.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from . import activation
from .base import Op, register

MAX_ALIGN = 23  # 128 * 2^23 = 2^30: two aligned int8 operands still sum inside int32


@register
class Add(Op):
    op_type = "Add"
    in_place = True
    runtime_files = ("ec_elementwise",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        a, b = (graph.shape(t) for t in self.inputs)
        if a != b:
            raise ValueError(f"add {self.name}: shapes {a} and {b} differ (broadcasting adds are not supported)")
        return a

    def describe(self) -> str:
        return activation.describe(self.attrs.get("act")).strip()

    def fuse_activation(self, act: dict) -> None:
        self.attrs["act"] = activation.combine(self.attrs.get("act"), act)

    def macs(self, graph: Graph) -> int:
        return int(np.prod(graph.shape(self.outputs[0])))

    def run_float(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return activation.apply_float(self.attrs.get("act"), np.asarray(a, np.float64) + b)

    def quantize(self, graph: Graph, options) -> None:
        fa, fb = (graph.tensors[t].frac_bits for t in self.inputs)
        y = graph.tensors[self.outputs[0]]
        common = min(max(fa, fb), min(fa, fb) + MAX_ALIGN)
        # the output shift obeys the same limits as a layer's (see ops/weighted.py)
        y.frac_bits = min(max(y.frac_bits, common - numerics.MAX_SHIFT), common + 31 - y.bits)
        lo, hi = activation.clamp_bounds(self.attrs.get("act"), y.frac_bits, y.bits)
        self.qattrs = {"shift_a": common - fa, "shift_b": common - fb, "shift_out": common - y.frac_bits,
                       "act_min": lo, "act_max": hi}

    def run_int(self, graph: Graph, a_q: np.ndarray, b_q: np.ndarray) -> np.ndarray:
        q = self.qattrs
        acc = numerics.align(a_q, q["shift_a"]) + numerics.align(b_q, q["shift_b"])
        return numerics.requantize(acc, q["shift_out"], q["act_min"], q["act_max"])

    def formats(self, graph: Graph) -> str:
        fa, fb = (graph.tensors[t].frac_bits for t in self.inputs)
        return f"a:{fa} b:{fb} y:{graph.tensors[self.outputs[0]].frac_bits} >>{self.qattrs.get('shift_out')}"

    def emit_c(self, em) -> None:
        q = self.qattrs
        size = int(np.prod(em.graph.shape(self.outputs[0])))
        a, b = (em.buffer(t) for t in self.inputs)
        em.call(f"ec_add_s8({a}, {b}, {em.buffer(self.outputs[0])}, {size}, {q['shift_a']}, {q['shift_b']}, "
                f"{q['shift_out']}, {q['act_min']}, {q['act_max']})")

"""Affine map by constants, y = scale * x + offset (FastGRNN's zeta (1 - z) + nu).

scale becomes m = round(scale * 2^14) (exact +-1 stays +-1), offset an int32 with the
product's frac bits f_x + 14, then the usual requantization:
    y = sat(rounding_shift(x * m + c, f_x + g - f_out))       |x * m| <= 2^22
attrs: scale, offset.  C kernel: ec_affine_s8 in runtime_c/ec_elementwise.c.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from .add import multiplier
from .base import Op, register


@register
class Affine(Op):
    op_type = "Affine"
    made_by = "the recurrent cell builders (frontend/recurrent.py), inside a Recurrent's body"
    not_trainable = "only inside a recurrent cell, which QAT does not train"
    in_place = True
    same_position = True
    runtime_files = ("ec_elementwise",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def describe(self) -> str:
        return f"{self.attrs['scale']:.4g}*x{self.attrs['offset']:+.4g}"

    def macs(self, graph: Graph) -> int:
        return int(np.prod(graph.shape(self.inputs[0])))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return self.attrs["scale"] * np.asarray(x, np.float64) + self.attrs["offset"]

    def quantize(self, graph: Graph, options) -> None:
        x = graph.tensors[self.inputs[0]]
        y = graph.tensors[self.outputs[0]]
        m, g = multiplier(float(self.attrs["scale"]))
        f_acc = x.frac_bits + g
        y.frac_bits = min(max(y.frac_bits, f_acc - numerics.MAX_SHIFT), f_acc + 31 - y.bits)
        c = int(numerics.quantize_float(float(self.attrs["offset"]), f_acc, numerics.ACC_MIN // 2,
                                        numerics.ACC_MAX // 2))
        lo, hi = numerics.qrange(y.bits)
        self.qattrs = {"mult": m, "offset": c, "shift": f_acc - y.frac_bits, "act_min": lo, "act_max": hi}

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        q = self.qattrs
        acc = np.asarray(x_q, np.int64) * q["mult"] + q["offset"]
        return numerics.requantize(acc, q["shift"], q["act_min"], q["act_max"])

    def emit_c(self, em) -> None:
        q = self.qattrs
        size = int(np.prod(em.graph.shape(self.inputs[0])))
        wide = self.is_wide(em.graph)
        em.call(f"ec_affine_{'any' if wide else 's8'}({em.arg(self.inputs[0], wide)}, {em.arg(self.outputs[0], wide)}, "
                f"{size}, {q['mult']}, {q['offset']}, {q['shift']}, {q['act_min']}, {q['act_max']})")

"""Mul of two activations, the second broadcast over trailing axes (squeeze-excite's
channel gate x * g with g of shape (C, 1, 1) or (C,), or a scalar).

    y = sat(rounding_shift((a - z_a) * (b - z_b), f_a + f_b - f_out))
Its operands may carry zero points (the ReLU6 output a squeeze-excite gate scales keeps its
unsigned codes, one bit finer); |x - z_x| <= 255 for int8 codes, so |product| < 2^16, and int16
operands have none (|a * b| <= 2^30).  Its output is signed, z = 0: measured on the digits
MobileNet-style net, a zero-pointed product lost 2 dB further on.  C kernel: ec_mul_mve_s8
(runtime_c/ec_elementwise_mve.c: same-shape signed products fast, the rest through the reference
ec_mul_s8), ec_mul_any for int16 tensors.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from . import activation
from .base import Op, register


@register
class Mul(Op):
    op_type = "Mul"
    onnx_ops = ("Mul",)
    in_place = True
    same_position = True
    runtime_files = ("ec_elementwise",)

    def _broadcast(self, graph: Graph) -> tuple[int, int, int, int]:
        """(outer, inner, b_outer_stride, b_inner_stride) of the C loop."""
        a = graph.shape(self.inputs[0])
        b = graph.shape(self.inputs[1])
        size_a, size_b = int(np.prod(a)), int(np.prod(b))
        if tuple(b) == tuple(a):
            return 1, size_a, 0, 1
        if size_b == 1:
            return 1, size_a, 0, 0
        if a and size_b == a[0] and all(d == 1 for d in b[1:]):
            return a[0], size_a // a[0], 1, 0
        raise ValueError(f"mul {self.name}: cannot broadcast {b} over {a} (same shape, per-channel or scalar)")

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        self._broadcast(graph)
        return graph.shape(self.inputs[0])

    def macs(self, graph: Graph) -> int:
        return int(np.prod(graph.shape(self.outputs[0])))

    def fuse_activation(self, act: dict) -> None:
        self.attrs["act"] = activation.combine(self.attrs.get("act"), act)

    def run_float(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        b = np.asarray(b, np.float64)
        b = b.reshape(b.shape + (1,) * (np.ndim(a) - np.ndim(b)))
        return activation.apply_float(self.attrs.get("act"), np.asarray(a, np.float64) * b)

    def quantize(self, graph: Graph, options) -> None:
        fa, fb = (graph.tensors[t].frac_bits for t in self.inputs)
        y = graph.tensors[self.outputs[0]]
        y.frac_bits = min(max(y.frac_bits, fa + fb - numerics.MAX_SHIFT), fa + fb + 31 - y.bits)
        lo, hi = activation.clamp_bounds(self.attrs.get("act"), y.frac_bits, y.bits)
        za, zb = (int(graph.tensors[t].zero_point) for t in self.inputs)
        self.qattrs = {"shift": fa + fb - y.frac_bits, "zero_a": za, "zero_b": zb, "act_min": lo, "act_max": hi}

    def run_int(self, graph: Graph, a_q: np.ndarray, b_q: np.ndarray) -> np.ndarray:
        q = self.qattrs
        b = np.asarray(b_q, np.int64) - q.get("zero_b", 0)
        b = b.reshape(b.shape + (1,) * (np.ndim(a_q) - np.ndim(b)))
        return numerics.requantize((np.asarray(a_q, np.int64) - q.get("zero_a", 0)) * b, q["shift"], q["act_min"],
                                   q["act_max"])

    def qat_forward(self, model, a, b):
        from .qat_support import requantize

        q = self.qattrs
        b = (b - q.get("zero_b", 0)).reshape(tuple(b.shape) + (1,) * (a.ndim - b.ndim))
        return requantize((a - q.get("zero_a", 0)) * b, [q["shift"]], q["act_min"], q["act_max"])

    def emit_c(self, em) -> None:
        outer, inner, so, si = self._broadcast(em.graph)
        wide = self.is_wide(em.graph)
        a, b = (em.arg(t, wide) for t in self.inputs)
        q = self.qattrs
        if not wide:  # int8: the Helium / plain-loop kernel for same-shape products, ec_mul_s8 for the rest
            em.runtime.update(("ec_elementwise_mve", "ec_fast"))
        em.call(f"ec_mul_{'any' if wide else 'mve_s8'}({a}, {q.get('zero_a', 0)}, {b}, {q.get('zero_b', 0)}, "
                f"{em.arg(self.outputs[0], wide)}, {outer}, {inner}, {so}, {si}, {q['shift']}, {q['act_min']}, "
                f"{q['act_max']})")

"""Add of two activations (residual connections), each in its own Q-format, optionally
with constant weights: y = scale_a * a + scale_b * b (subtraction, and the blends of
recurrent cells such as FastRNN's sigmoid(alpha) h~ + sigmoid(beta) h).

A weight of +-1 is exact; any other becomes m = round(scale * 2^14), so a * m has
f_a + 14 frac bits.  Both products are aligned to a common format F, the finer of the
two, capped where a left shift would leave int32's headroom (numerics.align: exact left
shifts, rule-2 rounding otherwise), added in int32, and requantized like any layer:
    y = sat(rounding_shift(align((a - z_a) * m_a, F - f_a') + align((b - z_b) * m_b, F - f_b'), F - f_out) + z_y)
z_a, z_b, z_y are the tensors' zero points (int8 codes: 0 for signed codes, -128 for unsigned
ones, anything between for a tensor placed by its range, numerics.py): an operand's code minus its
zero point is its integer value (|a - z_a| <= 255 for any zero point, which the headroom accounts
for), and the output zero point is added after the rounding shift, the clamp bounds [lo, hi]
being code-space (activation.code_bounds: a fused ReLU/ReLU6 clamps the value at 0 and the
code at z_y).  The C computes (a - z_a) * m_a as
a * m_a + o_a with o_a = -z_a * m_a (one multiply-accumulate, as cheap as the multiply alone),
and sat(v + z_y) as ec_requantize(acc, F - f_out, lo - z_y, hi - z_y) + z_y (clamp(v + z, lo, hi)
== clamp(v, lo - z, hi - z) + z for integers); zero points of 0 make it the plain signed add.
A ReLU after the add fuses as the output clamp.  C kernel: ec_add_s8 (ec_add_mve_s8 on Helium
cores, ec_add_any for int16 tensors).
attrs: act, scale_a, scale_b (default 1).
qattrs: mult_a, mult_b, shift_a, shift_b, shift_out, zero_a, zero_b, zero_y, act_min, act_max.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from . import activation
from .base import Op, register

# Each aligned operand stays below 2^30 in magnitude, so their sum fits int32: |(x - z) * m| * 2^shift
# <= 2^30 - 1, where |x - z| <= 2^(bits-1) for a signed operand and <= 255 < 2^bits for one with a
# zero point (both int8 codes); the offset -z * m rides inside that product, so no partial sum in C exceeds it.
HEADROOM = (1 << 30) - 1
SCALE_FRAC_BITS = 14


def multiplier(scale: float) -> tuple[int, int]:
    """(m, g): the integer m with g frac bits that stands for `scale` (exact for +-1)."""
    if scale in (1.0, -1.0):
        return int(scale), 0
    return int(np.floor(scale * (1 << SCALE_FRAC_BITS) + 0.5)), SCALE_FRAC_BITS


@register
class Add(Op):
    op_type = "Add"
    onnx_ops = ("Add", "Sum")
    in_place = True
    same_position = True
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
        sa, sb = self.attrs.get("scale_a", 1.0), self.attrs.get("scale_b", 1.0)
        return activation.apply_float(self.attrs.get("act"), sa * np.asarray(a, np.float64) + sb * np.asarray(b))

    def quantize(self, graph: Graph, options) -> None:
        y = graph.tensors[self.outputs[0]]
        terms = []
        for t, key in zip(self.inputs, ("scale_a", "scale_b")):
            x = graph.tensors[t]
            m, g = multiplier(float(self.attrs.get(key, 1.0)))
            magnitude = (1 << (x.bits - 1 + (x.zero_point != 0))) * max(abs(m), 1)  # |x - z| bound
            left_room = int(np.floor(np.log2(HEADROOM / magnitude)))  # largest exact left shift
            terms.append((m, x.frac_bits + g, left_room))
        common = min(max(f for _, f, _ in terms), *(f + room for _, f, room in terms))
        # the output shift obeys the same limits as a layer's (see ops/weighted.py)
        y.frac_bits = min(max(y.frac_bits, common - numerics.MAX_SHIFT), common + 31 - y.bits)
        # code-space clamp: the activation's on the value q - z, within the codes (as WeightedOp.quantize)
        lo, hi = activation.code_bounds(self.attrs.get("act"), y.frac_bits, y.bits, int(y.zero_point))
        (ma, fa, _), (mb, fb, _) = terms
        za, zb = (int(graph.tensors[t].zero_point) for t in self.inputs)
        self.qattrs = {"mult_a": ma, "mult_b": mb, "shift_a": common - fa, "shift_b": common - fb,
                       "shift_out": common - y.frac_bits, "zero_a": za, "zero_b": zb, "zero_y": int(y.zero_point),
                       "act_min": lo, "act_max": hi}

    def run_int(self, graph: Graph, a_q: np.ndarray, b_q: np.ndarray) -> np.ndarray:
        q = self.qattrs
        za, zb, zy = q.get("zero_a", 0), q.get("zero_b", 0), q.get("zero_y", 0)
        # (x - z) * m as the C computes it: x * m + o, o = -z * m
        acc = (numerics.align(np.asarray(a_q, np.int64) * q["mult_a"] - za * q["mult_a"], q["shift_a"])
               + numerics.align(np.asarray(b_q, np.int64) * q["mult_b"] - zb * q["mult_b"], q["shift_b"]))
        assert acc.size == 0 or (acc.max() <= numerics.ACC_MAX and acc.min() >= numerics.ACC_MIN)
        # sat(v + z_y, lo, hi) == sat(v, lo - z_y, hi - z_y) + z_y, the C's form
        return numerics.requantize(acc, q["shift_out"], q["act_min"] - zy, q["act_max"] - zy) + zy

    def qat_forward(self, model, a, b):
        from .qat_support import align, requantize

        q = self.qattrs
        acc = align(a * q["mult_a"], q["shift_a"]) + align(b * q["mult_b"], q["shift_b"])
        return requantize(acc, [q["shift_out"]], q["act_min"], q["act_max"])

    def formats(self, graph: Graph) -> str:
        fa, fb = (self.format_of(graph, t) for t in self.inputs)
        return f"a:{fa} b:{fb} y:{self.format_of(graph, self.outputs[0])} >>{self.qattrs.get('shift_out')}"

    def emit_c(self, em) -> None:
        q = self.qattrs
        size = int(np.prod(em.graph.shape(self.outputs[0])))
        wide = self.is_wide(em.graph)
        a, b = (em.arg(t, wide) for t in self.inputs)
        if not wide:  # int8: the Helium kernel on cores that have it, ec_add_s8 elsewhere
            em.runtime.update(("ec_elementwise_mve", "ec_fast"))
        em.call(f"ec_add_{'any' if wide else 'mve_s8'}({a}, {b}, {em.arg(self.outputs[0], wide)}, {size}, {q['mult_a']}, "
                f"{q['shift_a']}, {q.get('zero_a', 0)}, {q['mult_b']}, {q['shift_b']}, {q.get('zero_b', 0)}, "
                f"{q['shift_out']}, {q.get('zero_y', 0)}, {q['act_min']}, {q['act_max']})")

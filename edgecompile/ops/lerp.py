"""Lerp: y = a + g * (b - a), elementwise (a GRU's update h' = n + z (h - n), a = n, b = h, g = z).

One pass and one rounding instead of an add, a product and another add, each rounding to 8 bits.
a, b are brought to one format F (the finer of the two, at most 8 bits finer than the coarser:
exact left shifts; beyond that the finer one is rounded, rule 2), g keeps its own f_g >= 0:
    x = align(a, F - f_a),  y = align(b, F - f_b)
    out = sat(rounding_shift(x * 2^f_g + g * (y - x), F + f_g - f_out))
The compiler (quantize) proves max|x| * 2^f_g + 128 (max|x| + max|y|) <= 2^31 - 1 (lowering F while it
does not hold), so every product and sum is exact in int32.  Signed codes only (a cell's tensors).
attrs: act.  C kernel: ec_lerp_mve_s8 (runtime_c/ec_elementwise_mve.c: Helium, or two
multiply-accumulates and one shift per element; anything else through the reference ec_lerp_s8).
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..errors import EdgeCompileError
from ..ir import Graph
from . import activation
from .base import Op, register

MAX_GAP = 8  # how much finer than the coarser operand F may be (exact left shifts up to this)


def _aligned_bound(k: int) -> int:
    """max |align(q, k)| over int8 codes q."""
    return 128 << k if k >= 0 else (128 + (1 << (-k - 1))) >> -k


@register
class Lerp(Op):
    op_type = "Lerp"
    made_by = "the recurrent cell builders (frontend/recurrent.py): a GRU's h' = n + z (h - n)"
    not_trainable = "only inside a recurrent cell, which QAT does not train"
    in_place = True
    same_position = True
    int8_only = True
    runtime_files = ("ec_elementwise", "ec_elementwise_mve", "ec_fast")

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        shapes = [graph.shape(t) for t in self.inputs]
        if len(set(shapes)) != 1:
            raise ValueError(f"lerp {self.name}: shapes {shapes} differ")
        return shapes[0]

    def macs(self, graph: Graph) -> int:
        return int(np.prod(graph.shape(self.outputs[0])))

    def fuse_activation(self, act: dict) -> None:
        self.attrs["act"] = activation.combine(self.attrs.get("act"), act)

    def run_float(self, a: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float64)
        return activation.apply_float(self.attrs.get("act"), a + np.asarray(g, np.float64) * (np.asarray(b) - a))

    def quantize(self, graph: Graph, options) -> None:
        xa, xb, xg = (graph.tensors[t] for t in self.inputs)
        y = graph.tensors[self.outputs[0]]
        if any(t.zero_point for t in (xa, xb, xg, y)) or any(t.bits != 8 for t in (xa, xb, xg, y)):
            raise EdgeCompileError(f"layer '{self.name}': lerp takes signed int8 codes only")
        fg = xg.frac_bits
        if fg < 0:
            raise EdgeCompileError(f"layer '{self.name}': the lerp's weight has {fg} frac bits (at least 0)")
        common = min(max(xa.frac_bits, xb.frac_bits), min(xa.frac_bits, xb.frac_bits) + MAX_GAP)
        while True:
            sa, sb = common - xa.frac_bits, common - xb.frac_bits
            ba, bb = _aligned_bound(sa), _aligned_bound(sb)
            bound = ba * (1 << fg) + 128 * (ba + bb)
            if bound <= numerics.ACC_MAX and min(sa, sb) >= -numerics.MAX_SHIFT:
                break
            if min(sa, sb) <= -numerics.MAX_SHIFT:
                raise EdgeCompileError(f"layer '{self.name}': no format keeps the lerp inside int32")
            common -= 1
        f = common + fg
        y.frac_bits = min(max(y.frac_bits, f - numerics.MAX_SHIFT), f + 31 - y.bits)
        lo, hi = activation.clamp_bounds(self.attrs.get("act"), y.frac_bits, y.bits)
        self.qattrs = {"shift_a": sa, "shift_b": sb, "shift_g": fg, "shift_out": f - y.frac_bits, "act_min": lo,
                       "act_max": hi, "acc_bound": bound}

    def run_int(self, graph: Graph, a_q: np.ndarray, b_q: np.ndarray, g_q: np.ndarray) -> np.ndarray:
        q = self.qattrs
        x = numerics.align(np.asarray(a_q, np.int64), q["shift_a"])
        y = numerics.align(np.asarray(b_q, np.int64), q["shift_b"])
        acc = x * (1 << q["shift_g"]) + np.asarray(g_q, np.int64) * (y - x)
        return numerics.requantize(acc, q["shift_out"], q["act_min"], q["act_max"])

    def formats(self, graph: Graph) -> str:
        fa, fb, fg = (graph.tensors[t].frac_bits for t in self.inputs)
        return f"a:{fa} b:{fb} g:{fg} y:{graph.tensors[self.outputs[0]].frac_bits} >>{self.qattrs.get('shift_out')}"

    def round_folded(self) -> int:
        """Bit 0 when the output's rounding constant may join the sum (bound + 2^(s - 1) within int32, s >= 0)."""
        q = self.qattrs
        s = q["shift_out"]
        return int(s >= 0 and q["acc_bound"] + ((1 << (s - 1)) if s > 0 else 0) <= numerics.ACC_MAX)

    def emit_c(self, em) -> None:
        q = self.qattrs
        a, b, g = (em.buffer(t) for t in self.inputs)
        size = int(np.prod(em.graph.shape(self.outputs[0])))
        em.call(f"ec_lerp_mve_s8({a}, {b}, {g}, {em.buffer(self.outputs[0])}, {size}, {q['shift_a']}, "
                f"{q['shift_b']}, {q['shift_g']}, {q['shift_out']}, {q['act_min']}, {q['act_max']}, "
                f"{self.round_folded()})")

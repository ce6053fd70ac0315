"""A gated pair of matrix-vector products: y = Wa a + bias_a + g * (Wb b + bias_b).

A GRU's n gate as PyTorch (and ONNX's linear_before_reset = 1) computes it: W_n x + b_in +
r * (U_n h + b_hn), the reset gate r multiplying the hidden state's product with its bias.  One
op and one kernel pass instead of two linear layers, a product and an add, each rounding to 8
bits.  Inputs a (Da,), b (Db,), g (out,) in their own formats f_a, f_b, f_g; weights Wa, Wb with
f_wa, f_wb frac bits.  Integer rule (every step exact in int32, rule 2 for each rounding):
    u = Wb b + bias_b                                    (Fb = f_b + f_wb frac bits, exact)
    v = rounding_shift(u, shift_b)                       (|v| <= 2^23, Fb - shift_b frac bits)
    p = g * v                                            (|p| <= 2^30, Fp = f_g + Fb - shift_b)
    y = sat(rounding_shift(align(Wa a, -down_a) + align(p, -down_p) + bias_a, shift_out))
with F = min(Fa, Fp) (Fa = f_a + f_wa) the common format of the sum, down_a = Fa - F,
down_p = Fp - F, bias_a stored with F frac bits.  The compiler (quantize) proves per row:
|Wb b| + |bias_b| + 2^(shift_b - 1) <= 2^31 - 1 (shift_b is the smallest that keeps |v| <= 2^23),
and |Wa a| + |p| + |bias_a| <= acc_bound <= 2^31 - 1 (each aligned term bounded by its unrounded
bound, rounded), lowering the finer format while either fails.  Only the output's format is
calibrated: v keeps the hidden product at up to 24 bits, no 8-bit rounding in between.
params: weight_a (out, Da), bias_a (out), weight_b (out, Db), bias_b (out).  attrs: act.
C kernel: ec_gated_linear_fast_s8 in runtime_c/ec_linear_fast.c (the gates' packed weights, 4 rows
per pass, both products and the gate in registers, the tanh table in the same pass inside a cell),
bit-exact with the reference ec_gated_linear_s8 in runtime_c/ec_recurrent.c.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..errors import EdgeCompileError
from ..ir import Graph
from . import activation
from .base import register
from .dual_linear import DualLinear

V_BITS = 23  # |v| <= 2^23, so |g v| <= 2^30 for an int8 gate


def _half(s: int) -> int:
    """The rounding constant of a shift by s >= 0 (rule 2)."""
    return (1 << (s - 1)) if s > 0 else 0


def _rounded_bound(bound, s: int):
    """A bound of |rounding_shift(x, s)| for |x| <= bound, s >= 0."""
    return (np.asarray(bound, np.int64) + _half(s)) >> s


@register
class GatedDualLinear(DualLinear):  # its weights' shapes, MACs and fused activation
    op_type = "GatedDualLinear"
    made_by = "the recurrent cell builders (frontend/recurrent.py): a GRU's n gate, inside a Recurrent's body"
    not_trainable = "only inside a recurrent cell, which QAT does not train"
    runtime_files = ("ec_linear_fast", "ec_linear_mve", "ec_fast")

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        (oa, da), (ob, db) = self._shape("weight_a"), self._shape("weight_b")
        a, b, g = (graph.shape(t) for t in self.inputs)
        if oa != ob or a != (da,) or b != (db,) or g != (oa,):
            raise ValueError(f"gated linear {self.name}: weights {oa}x{da}, {ob}x{db} do not fit inputs {a}, {b} "
                             f"and gate {g}")
        return (oa,)

    def describe(self) -> str:
        (o, da), (_, db) = self._shape("weight_a"), self._shape("weight_b")
        return f"{da}+g*{db}->{o}" + activation.describe(self.attrs.get("act"))

    def param_count(self) -> int:
        return int(sum(np.size(v) for v in self.params.values())) or int(
            sum(np.size(v) for v in self.qparams.values()))

    def run_float(self, a: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
        p = self.params
        hb = np.asarray(b, np.float64) @ np.asarray(p["weight_b"], np.float64).T + np.asarray(p["bias_b"], np.float64)
        y = (np.asarray(a, np.float64) @ np.asarray(p["weight_a"], np.float64).T
             + np.asarray(p["bias_a"], np.float64) + np.asarray(g, np.float64) * hb)
        return activation.apply_float(self.attrs.get("act"), y)

    def quantize(self, graph: Graph, options) -> None:
        xa, xb, xg = (graph.tensors[t] for t in self.inputs)
        y = graph.tensors[self.outputs[0]]
        bits = options.weight_bits_for(self.name)
        lo_w, hi_w = numerics.qrange(bits)
        wa = np.asarray(self.params["weight_a"], np.float64)
        wb = np.asarray(self.params["weight_b"], np.float64)
        fwa, fwb = numerics.frac_bits_for_values(wa, bits), numerics.frac_bits_for_values(wb, bits)
        extra = 0  # shift_b beyond the smallest that bounds v: lowers Fp
        in_a, in_b, in_g = (1 << (t.bits - 1) for t in (xa, xb, xg))  # the largest |code| of each input
        for _ in range(200):
            fa, fb = xa.frac_bits + fwa, xb.frac_bits + fwb
            qa = numerics.quantize_float(wa, fwa, lo_w, hi_w)
            qb = numerics.quantize_float(wb, fwb, lo_w, hi_w)
            bias_b = numerics.quantize_float(np.asarray(self.params["bias_b"], np.float64), fb, numerics.ACC_MIN,
                                             numerics.ACC_MAX)
            bound_b = np.abs(qb).sum(1) * in_b + np.abs(bias_b)
            shift_b = extra
            while _rounded_bound(bound_b, shift_b).max(initial=0) > (1 << V_BITS):
                shift_b += 1
            if int(bound_b.max(initial=0)) + _half(shift_b) > numerics.ACC_MAX:
                fwb -= 1  # u's rounding constant must fit with it
                continue
            fp = xg.frac_bits + fb - shift_b
            common = min(fa, fp)
            down_a, down_p = fa - common, fp - common
            bias_a = numerics.quantize_float(np.asarray(self.params["bias_a"], np.float64), common, numerics.ACC_MIN,
                                             numerics.ACC_MAX)
            p_bound = _rounded_bound(bound_b, shift_b) * in_g
            bound = int((_rounded_bound(np.abs(qa).sum(1) * in_a, down_a) + _rounded_bound(p_bound, down_p)
                         + np.abs(bias_a)).max(initial=0))
            if bound <= numerics.ACC_MAX and max(down_a, down_p, shift_b) <= numerics.MAX_SHIFT - 1:
                break
            # every term is in the common format: lower the finer of the two (both when equal)
            if fa >= fp:
                fwa -= 1
            if fp >= fa:
                extra = shift_b + 1
        else:
            raise EdgeCompileError(f"layer '{self.name}': no formats keep the gated products inside int32")
        y.frac_bits = min(max(y.frac_bits, common - numerics.MAX_SHIFT), common + 31 - y.bits)
        lo, hi = activation.clamp_bounds(self.attrs.get("act"), y.frac_bits, y.bits)
        self.qparams = {"weight_a": qa.astype(np.int8), "bias_a": bias_a.astype(np.int32),
                        "weight_b": qb.astype(np.int8), "bias_b": bias_b.astype(np.int32)}
        self.qattrs = {"weight_bits": bits, "weight_frac_bits": [fwa, fwb], "shift_b": shift_b, "down_a": down_a,
                       "down_p": down_p, "shift_out": common - y.frac_bits, "act_min": lo, "act_max": hi,
                       "acc_bound": bound, "p_bound": int(p_bound.max(initial=0))}

    def run_int(self, graph: Graph, a_q: np.ndarray, b_q: np.ndarray, g_q: np.ndarray) -> np.ndarray:
        q, w = self.qattrs, self.qparams
        u = np.asarray(b_q, np.int64) @ w["weight_b"].astype(np.int64).T + w["bias_b"].astype(np.int64)
        p = np.asarray(g_q, np.int64) * numerics.rounding_shift(u, q["shift_b"])
        acc = (numerics.align(np.asarray(a_q, np.int64) @ w["weight_a"].astype(np.int64).T, -q["down_a"])
               + numerics.align(p, -q["down_p"]) + w["bias_a"].astype(np.int64))
        return numerics.requantize(acc, q["shift_out"], q["act_min"], q["act_max"])

    def formats(self, graph: Graph) -> str:
        fa, fb, fg = (graph.tensors[t].frac_bits for t in self.inputs)
        wa, wb = self.qattrs.get("weight_frac_bits", ["?", "?"])
        return (f"x:{fa},{fb} g:{fg} w:{wa},{wb} y:{graph.tensors[self.outputs[0]].frac_bits} "
                f">>{self.qattrs.get('shift_b')},{self.qattrs.get('shift_out')}")

    def round_folded(self) -> int:
        """ec_gated_linear_fast_s8's flags: bit 0 when the output's rounding constant 2^(shift_out - 1) may
        start the accumulator (the proven bound plus it within int32, the shift not negative); bit 1
        when down_p > 0 and max |g v| + 2^(down_p - 1) is within int32 (p's rounding is then one shift)."""
        q = self.qattrs
        s = q["shift_out"]
        flags = int(s >= 0 and q["acc_bound"] + _half(s) <= numerics.ACC_MAX)
        if q["down_p"] > 0:
            flags |= 2 * int(q["p_bound"] + _half(q["down_p"]) <= numerics.ACC_MAX)
        return flags

    def emit_c(self, em, lut=None) -> None:
        q = self.qattrs
        (o, da), (_, db) = self._shape("weight_a"), self._shape("weight_b")
        wa, wb = self.packed_weights(em)
        ba, bb = (em.const_array(f"{self.name}_{key}", "int32_t", self.qparams[key]) for key in ("bias_a", "bias_b"))
        a_in, b_in, g_in = (em.buffer(t) for t in self.inputs)
        table, out = self.table_and_output(em, lut)
        em.call(f"ec_gated_linear_fast_s8({a_in}, {da}, {wa}, {q['down_a']}, {ba}, {b_in}, {db}, {wb}, {bb}, "
                f"{q['shift_b']}, {g_in}, {q['down_p']}, {o}, {q['shift_out']}, {out}, {q['act_min']}, "
                f"{q['act_max']}, {self.round_folded()}, {table})")

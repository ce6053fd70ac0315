"""Two matrix-vector products summed into one accumulator: y = Wa a + Wb b + bias.

The gates of recurrent cells (W x_t + U h_{t-1} + b) read the input and the hidden
state, which have different formats.  Each product is computed exactly in int32
(acc_a with f_a + f_wa frac bits, acc_b with f_b + f_wb), both are rounded (rule 2)
down to the coarser of the two, F, the bias (stored with F frac bits) is added, and the
sum is requantized to the output's format:
    y = sat(rounding_shift(align(acc_a, F - Fa) + align(acc_b, F - Fb) + bias, F - f_out))
The compiler proves |acc_a| + |acc_b| + |bias| <= 2^31 - 1 from the weights.
params: weight_a (out, Da), weight_b (out, Db), bias (out).  attrs: act.
C kernel: ec_dual_linear_fast_s8 in runtime_c/ec_linear_fast.c (the linear layer's packed weights,
4 rows per pass, SMLAD on DSP cores, Helium on the M55), bit-exact with the reference
ec_dual_linear_s8 in runtime_c/ec_recurrent.c.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from . import activation
from .base import Op, register


@register
class DualLinear(Op):
    op_type = "DualLinear"
    made_by = "the recurrent cell builders (frontend/recurrent.py), inside a Recurrent's body"
    not_trainable = "only inside a recurrent cell, which QAT does not train"
    runtime_files = ("ec_linear_fast", "ec_linear_mve", "ec_fast")

    def _shape(self, key: str) -> tuple[int, int]:
        w = self.params.get(key)
        return tuple(np.shape(w if w is not None else self.qparams[key]))

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        (oa, da), (ob, db) = self._shape("weight_a"), self._shape("weight_b")
        if oa != ob or graph.shape(self.inputs[0]) != (da,) or graph.shape(self.inputs[1]) != (db,):
            raise ValueError(f"dual linear {self.name}: weights {oa}x{da}, {ob}x{db} do not fit inputs "
                             f"{graph.shape(self.inputs[0])}, {graph.shape(self.inputs[1])}")
        return (oa,)

    def describe(self) -> str:
        (o, da), (_, db) = self._shape("weight_a"), self._shape("weight_b")
        return f"{da}+{db}->{o}" + activation.describe(self.attrs.get("act"))

    def param_count(self) -> int:
        return int(sum(np.size(v) for v in self.params.values())) or int(
            sum(np.size(self.qparams[k]) for k in ("weight_a", "weight_b", "bias") if k in self.qparams))

    def macs(self, graph: Graph) -> int:
        return int(np.prod(self._shape("weight_a")) + np.prod(self._shape("weight_b")))

    def fuse_activation(self, act: dict) -> None:
        self.attrs["act"] = activation.combine(self.attrs.get("act"), act)

    def run_float(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        y = (np.asarray(a, np.float64) @ np.asarray(self.params["weight_a"], np.float64).T
             + np.asarray(b, np.float64) @ np.asarray(self.params["weight_b"], np.float64).T)
        if "bias" in self.params:
            y = y + np.asarray(self.params["bias"], np.float64)
        return activation.apply_float(self.attrs.get("act"), y)

    def quantize(self, graph: Graph, options) -> None:
        xa, xb = (graph.tensors[t] for t in self.inputs)
        y = graph.tensors[self.outputs[0]]
        bits = options.weight_bits_for(self.name)
        lo_w, hi_w = numerics.qrange(bits)
        wa = np.asarray(self.params["weight_a"], np.float64)
        wb = np.asarray(self.params["weight_b"], np.float64)
        fwa, fwb = numerics.frac_bits_for_values(wa, bits), numerics.frac_bits_for_values(wb, bits)
        while True:
            fa, fb = xa.frac_bits + fwa, xb.frac_bits + fwb
            common = min(fa, fb)
            qa = numerics.quantize_float(wa, fwa, lo_w, hi_w)
            qb = numerics.quantize_float(wb, fwb, lo_w, hi_w)
            bias = numerics.quantize_float(np.asarray(self.params.get("bias", np.zeros(len(wa))), np.float64),
                                           common, numerics.ACC_MIN, numerics.ACC_MAX)
            bound = int((np.abs(qa).sum(1) * (1 << (xa.bits - 1)) + np.abs(qb).sum(1) * (1 << (xb.bits - 1))
                         + np.abs(bias)).max())
            if bound <= numerics.ACC_MAX and max(fa, fb) - common <= numerics.MAX_SHIFT:
                break
            # lower the finer weights (or both) until the sum is provably inside int32
            if fa >= fb:
                fwa -= 1
            else:
                fwb -= 1
        y.frac_bits = min(max(y.frac_bits, common - numerics.MAX_SHIFT), common + 31 - y.bits)
        lo, hi = activation.clamp_bounds(self.attrs.get("act"), y.frac_bits, y.bits)
        self.qparams = {"weight_a": qa.astype(np.int8), "weight_b": qb.astype(np.int8), "bias": bias.astype(np.int32)}
        self.qattrs = {"weight_bits": bits, "weight_frac_bits": [fwa, fwb], "down_a": fa - common,
                       "down_b": fb - common, "shift_out": common - y.frac_bits, "act_min": lo, "act_max": hi,
                       "acc_bound": bound}

    def run_int(self, graph: Graph, a_q: np.ndarray, b_q: np.ndarray) -> np.ndarray:
        q = self.qattrs
        acc_a = np.asarray(a_q, np.int64) @ self.qparams["weight_a"].astype(np.int64).T
        acc_b = np.asarray(b_q, np.int64) @ self.qparams["weight_b"].astype(np.int64).T
        acc = (numerics.align(acc_a, -q["down_a"]) + numerics.align(acc_b, -q["down_b"])
               + self.qparams["bias"].astype(np.int64))
        return numerics.requantize(acc, q["shift_out"], q["act_min"], q["act_max"])

    def formats(self, graph: Graph) -> str:
        fa, fb = (graph.tensors[t].frac_bits for t in self.inputs)
        wa, wb = self.qattrs.get("weight_frac_bits", ["?", "?"])
        return f"x:{fa},{fb} w:{wa},{wb} y:{graph.tensors[self.outputs[0]].frac_bits} >>{self.qattrs.get('shift_out')}"

    def round_folded(self) -> int:
        """ec_dual_linear_fast_s8's flags: bit 0 when the output's rounding constant 2^(shift_out - 1) may
        start the accumulator (ec_fast.h: the proven bound plus it stays within int32, and the shift is
        not negative); bit 1 when exactly one product is rounded down, by d, and its largest |W x|
        (sum |w| * 128, int8 inputs) plus 2^(d - 1) stays within int32, so its rounding constant may
        start that product's accumulator (rule 2 is then one shift)."""
        q = self.qattrs
        s = q["shift_out"]
        flags = int(s >= 0 and q["acc_bound"] + (1 << max(s - 1, 0)) * (s > 0) <= numerics.ACC_MAX)
        downs = [(q["down_a"], "weight_a"), (q["down_b"], "weight_b")]
        rounded = [(d, key) for d, key in downs if d > 0]
        if len(rounded) == 1:
            d, key = rounded[0]
            bound = int(np.abs(self.qparams[key].astype(np.int64)).sum(1).max(initial=0)) * 128
            flags |= 2 * int(bound + (1 << (d - 1)) <= numerics.ACC_MAX)
        return flags

    def packed_weights(self, em) -> tuple[str, str]:
        """The C arrays of weight_a and weight_b in the order the fast gate kernels read (fast_kernels.py)."""
        from .fast_kernels import LINEAR_GROUP, LINEAR_WORD_ORDER, pack_rows
        return tuple(em.const_array(f"{self.name}_{key}", "int8_t",
                                    pack_rows(self.qparams[key], LINEAR_GROUP, word_order=LINEAR_WORD_ORDER), align=4)
                     for key in ("weight_a", "weight_b"))

    def table_and_output(self, em, lut) -> tuple[str, str]:
        """The kernel's table argument and output buffer: lut, the table lookup (a Lut op) that alone reads
        this op's output, is done by the same kernel pass (Recurrent.emit_step fuses them): the output
        then goes to the Lut's buffer, through its table."""
        if lut is None:
            return "(const int8_t *)0", em.buffer(self.outputs[0])
        return em.const_array(f"{lut.name}_table", "int8_t", lut.qparams["table"]), em.buffer(lut.outputs[0])

    def emit_c(self, em, lut=None) -> None:
        q = self.qattrs
        (o, da), (_, db) = self._shape("weight_a"), self._shape("weight_b")
        wa, wb = self.packed_weights(em)
        b = em.const_array(f"{self.name}_bias", "int32_t", self.qparams["bias"])
        a_in, b_in = (em.buffer(t) for t in self.inputs)
        table, out = self.table_and_output(em, lut)
        em.call(f"ec_dual_linear_fast_s8({a_in}, {da}, {wa}, {q['down_a']}, {b_in}, {db}, {wb}, {q['down_b']}, {b}, "
                f"{o}, {q['shift_out']}, {out}, {q['act_min']}, {q['act_max']}, {self.round_folded()}, {table})")

"""Shared quantization of the ops that compute acc = bias + W . x (conv, linear).

Per output channel c the integer layer computes
    acc_c = b_q[c] + sum(w_q[c, ...] * x_q)          (int32, rule 1)
    y_q[c] = sat(rounding_shift(acc_c, s_c), lo, hi)  (rules 2, 3)
with s_c = f_in + f_w[c] - f_out and the bias stored with f_in + f_w[c] frac
bits, so it adds straight into the accumulator.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..formats import TensorRange, frac_bits_for
from ..ir import Graph
from . import activation
from .base import Op


# float64 holds every integer of magnitude below 2^53 exactly, and so every partial sum of W . x
# while sum|w_row| * max|x| stays below it (int8 weights, int16 inputs: rows of up to 2^31 weights).
FLOAT64_EXACT = 1 << 53


def exact_integer_products(products, x_q: np.ndarray, w_q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """W . x of integers through `products` (a float64 function of (x, w): BLAS-fast), exact: the
    bound above is checked, and beyond it the same function runs on int64 (slow, never inexact)."""
    x_max = int(np.abs(x_q).max()) if np.size(x_q) else 0
    row_sum = int(np.abs(rows.astype(np.int64)).sum(axis=1).max()) if rows.size else 0
    if x_max * row_sum < FLOAT64_EXACT:
        return products(np.asarray(x_q, np.float64), np.asarray(w_q, np.float64)).astype(np.int64)
    return products(np.asarray(x_q, np.int64), np.asarray(w_q, np.int64))


def shifts_left(qparams: dict) -> bool:
    """Whether a quantized layer's parameters requantize a channel with a left shift (s < 0).
    Bit-exact like any other shift, but the fast kernels fold no rounding then and store each
    output out of line (runtime_c/ec_fast.h, EC_RQ_EXACT): passes that only trade accuracy avoid
    creating one."""
    shift = qparams.get("shift")
    return shift is not None and int(np.min(shift)) < 0


class WeightedOp(Op):
    """Base of conv/linear: params 'weight' (out channel first) and optional 'bias'."""

    def param_count(self) -> int:
        return int(np.prod(self.weight_shape) + self.weight_shape[0] * ("bias" in self.params or "bias" in self.qparams))

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Geometry from the float weights, or the integer ones in a graph read from a manifest."""
        w = self.params.get("weight")
        return tuple(np.shape(w if w is not None else self.qparams["weight"]))

    #: The axis of the output channels in a batched output (conv: 1; linear: the last).
    channel_axis = 1

    @property
    def out_channels(self) -> int:
        return int(self.weight_shape[0])

    def fuse_activation(self, act: dict) -> None:
        self.attrs["act"] = activation.combine(self.attrs.get("act"), act)

    def run_float_act(self, y: np.ndarray) -> np.ndarray:
        return activation.apply_float(self.attrs.get("act"), y)

    # -- quantization ------------------------------------------------------------
    def wants_per_channel(self, options) -> bool:
        """Per-channel weight formats unless per-tensor is asked for: BatchNorm folding scales every
        output channel on its own, and the measurements in README ("Choosing formats") favour it."""
        return True if options.per_channel is None else bool(options.per_channel)

    def quantize(self, graph: Graph, options) -> None:
        x = graph.tensors[self.inputs[0]]
        y = graph.tensors[self.outputs[0]]
        bits = options.weight_bits_for(self.name)
        weight = np.asarray(self.params["weight"], dtype=np.float64)
        bias = self.params.get("bias")
        n = self.out_channels
        rows = weight.reshape(n, -1)
        # f_w per output channel: the largest with no clipping of that channel's weights;
        # per tensor, all channels take the smallest (the channel with the largest weights).
        f_w = self._rows_frac_bits(rows, bits, options)
        per_channel = self.wants_per_channel(options)
        if not per_channel:
            f_w[:] = f_w.min()
        # Shifts must stay in C's legal range: a too-large right shift means the
        # weights carry more frac bits than the output can use, so drop some.
        f_w = np.minimum(f_w, numerics.MAX_SHIFT + y.frac_bits - x.frac_bits)
        # A left shift of more than 31 - out_bits would overflow before
        # saturating: give the output fewer frac bits instead (coarser but exact).
        min_shift = -(31 - y.bits)
        if y.zero_point:  # the output's zero point enters the bias as z * 2^s: an integer needs s >= -7
            min_shift = max(min_shift, -7)  # and z a multiple of 2^-s (below)
        if x.frac_bits + int(f_w.min()) - y.frac_bits < min_shift:
            y.frac_bits = x.frac_bits + int(f_w.min()) - min_shift
            options.refit_zero_point(y)
            graph.notes.append(f"{self.name}: output frac bits lowered to {y.frac_bits} to keep the shift legal")
        x_max = 1 << (x.bits - 1)
        lowered = False
        while True:
            if y.zero_point and int((x.frac_bits + f_w - y.frac_bits).min()) < -7:
                y.frac_bits = x.frac_bits + int(f_w.min()) + 7  # lowering f_w moved a shift below -7
                options.refit_zero_point(y)
            left = -int((x.frac_bits + f_w - y.frac_bits).min())
            if y.zero_point and left > 0:  # a left shift by k: z must be a multiple of 2^k (-128 is, k <= 7)
                y.zero_point = numerics.nearest_multiple_code(y.zero_point, left, y.bits)
            w_q = self._quantize_weights(weight, f_w, bits)
            # the bias as it is before int32 saturation, with the zero points folded in: a bias that
            # does not fit lowers f_w like an accumulator that might not, rather than being clipped
            b_q = np.zeros(n, dtype=np.int64) if bias is None else numerics.quantize_float(
                np.ldexp(np.asarray(bias, dtype=np.float64), x.frac_bits + f_w), 0, -(2 ** 62), 2 ** 62)
            b_q = b_q + self.zero_point_offsets(w_q, x.zero_point, y.zero_point, x.frac_bits + f_w - y.frac_bits)
            bounds = np.abs(w_q.reshape(n, -1)).sum(axis=1) * x_max + np.abs(b_q)
            over = bounds > numerics.ACC_MAX
            if not over.any():
                break
            # Halving a channel's weight scale halves its bound; the layer stays exact in int32.
            f_w = f_w - (over if per_channel else 1)
            lowered = True
        if lowered:
            graph.notes.append(f"{self.name}: weight frac bits lowered so that the int32 bias fits and the "
                               f"accumulator cannot overflow")
        shifts = x.frac_bits + f_w - y.frac_bits
        # the clamp on codes: the activation's on the value q - z, within int8 (an unsigned output,
        # z = -128, clamps its code u in 0..255, stored as u - 128)
        lo, hi = activation.code_bounds(self.attrs.get("act"), y.frac_bits, y.bits, int(y.zero_point))
        # One shift per output channel, stored once when they all agree (it costs a byte each).
        uniform = bool(np.all(shifts == shifts[0]))
        self.qparams = {"weight": w_q.astype(np.int8),
                        "shift": (shifts[:1] if uniform else shifts).astype(np.int8)}
        if bias is not None or b_q.any():
            self.qparams["bias"] = b_q.astype(np.int32)
        self.qattrs = {"weight_bits": bits, "weight_frac_bits": (f_w[:1] if uniform else f_w).tolist(),
                       "act_min": lo, "act_max": hi, "acc_bound": int(bounds.max())}

    @staticmethod
    def zero_point_offsets(w_q: np.ndarray, z_in: int, z_out: int, shifts: np.ndarray) -> np.ndarray:
        """What the int32 bias absorbs of the zero points, per output channel.

        An input stored as q = u + z_in (u the unsigned code) gives sum(w * u) = sum(w * q) - z_in * sum(w):
        add -z_in * sum(w).  An output stored as u + z_out wants round(acc * 2^-s) + z_out, which is
        round((acc + z_out * 2^s) * 2^-s) exactly, as z_out * 2^s is an integer multiple of 2^s (s >= -7
        and, for s < 0, z_out a multiple of 2^-s: quantize() keeps them so)."""
        n = len(w_q)
        offsets = -int(z_in) * w_q.reshape(n, -1).astype(np.int64).sum(axis=1)
        if z_out:
            s = np.broadcast_to(np.asarray(shifts, dtype=np.int64), (n,))
            assert s.min() >= -7 and int(z_out) % (1 << max(-int(s.min()), 0)) == 0, \
                "a zero-pointed output needs shifts >= -7 and z a multiple of 2^-s (quantize() keeps them so)"
            offsets = offsets + np.where(s >= 0, int(z_out) << np.maximum(s, 0), int(z_out) >> np.maximum(-s, 0))
        return offsets

    @classmethod
    def _rows_frac_bits(cls, rows: np.ndarray, bits: int, options) -> np.ndarray:
        """_weight_frac_bits of every row of a 2-D array; for minmax all rows at once (the same f each)."""
        if getattr(options, "weight_method", "minmax") == "minmax":
            return numerics.frac_bits_for_intervals(rows.min(axis=1), rows.max(axis=1), bits)
        return np.array([cls._weight_frac_bits(r, bits, options) for r in rows], dtype=np.int64)

    @staticmethod
    def _weight_frac_bits(row: np.ndarray, bits: int, options) -> int:
        """f of one channel's weights by --weight-method (default minmax: clip no weight)."""
        method = getattr(options, "weight_method", "minmax")
        if method == "minmax":
            return numerics.frac_bits_for_values(row, bits)
        return frac_bits_for(TensorRange.of(row), bits, method, options.percentile)

    @staticmethod
    def _quantize_weights(weight, f_w, bits):
        """Integer weights, channel c with f_w[c] frac bits (the bias: see quantize)."""
        lo, hi = numerics.qrange(bits)
        per_row = np.asarray(f_w).reshape((weight.shape[0],) + (1,) * (weight.ndim - 1))
        return numerics.quantize_float(np.ldexp(weight, per_row), 0, lo, hi)

    def channel_shifts(self) -> np.ndarray:
        """The requantization shift of every output channel."""
        return np.broadcast_to(self.qparams["shift"], (self.out_channels,))

    # -- integer kernel ------------------------------------------------------------
    def accumulate(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        """W . x in int64 (exact), output channel on axis 1; run_int adds the bias."""
        raise NotImplementedError

    def float_products(self, graph: Graph, x_q: np.ndarray, w: np.ndarray, dtype) -> np.ndarray:
        """W . x of the integers x_q, w computed in the float `dtype`, output channel on channel_axis, a
        new array.  The sums may be taken in any order: the caller proves them exact (run_int)."""
        raise NotImplementedError

    def pad_value(self, graph: Graph) -> int:
        """The code read for an input position outside the input (a padded conv: its zero point)."""
        return 0

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        """The integer layer, computed in float32 (float64 if need be) where that is provably exact, which
        is nearly always; else by run_int_reference, whose int64 steps spell the same arithmetic out.

        Channel c's partial sums are bounded by sum|w_c| * x_max (x_max: the largest |input| or |pad
        code|), and with its bias and rounding half h_c = 2^(s_c - 1) (s_c > 0) every value the float
        path holds is an integer (times a power of two) of magnitude at most
            need_c = sum|w_c| * x_max + |b_c| + h_c,
        exact in a float type with p significand bits while need_c < 2^p (numerics.requantize_float).
        need_c <= ACC_MAX also proves rule 1 (the int32 accumulator) without looking at the data."""
        x_q = np.asarray(x_q)
        w = self.qparams["weight"]
        n = len(w)
        shifts = self.channel_shifts().astype(np.int64)
        bias = self.qparams["bias"].astype(np.int64) if "bias" in self.qparams else np.zeros(n, np.int64)
        if x_q.size == 0 or shifts.min() < -numerics.MAX_SHIFT or shifts.max() > numerics.MAX_SHIFT:
            return self.run_int_reference(graph, x_q)
        x_max = max(abs(int(x_q.min())), abs(int(x_q.max())), abs(self.pad_value(graph)))
        row_sums = np.abs(w.reshape(n, -1).astype(np.int64)).sum(axis=1)
        need = int((row_sums * x_max + np.abs(bias) + np.where(shifts > 0, 1 << np.maximum(shifts - 1, 0), 0)).max())
        if need > numerics.ACC_MAX:  # an accumulator beyond int32 (or a shift near 31): the asserting reference
            return self.run_int_reference(graph, x_q)
        dtype = np.float32 if need < 1 << 24 else np.float64
        acc = self.float_products(graph, x_q, w, dtype)
        return numerics.requantize_float(acc, bias, shifts, self.qattrs["act_min"], self.qattrs["act_max"],
                                         self.channel_axis % acc.ndim)

    def run_int_reference(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        """The integer layer step by step in int64 (rules 1-3): what run_int computes faster."""
        acc = self.accumulate(graph, x_q)
        axis = self.channel_axis % acc.ndim
        if "bias" in self.qparams:
            shape = [1] * acc.ndim
            shape[axis] = -1
            acc = acc + self.qparams["bias"].astype(np.int64).reshape(shape)
        # Rule 1 holds by the proof in quantize(); assert it so a bug cannot hide.
        assert acc.size == 0 or (acc.max() <= numerics.ACC_MAX and acc.min() >= numerics.ACC_MIN)
        shifted = numerics.rounding_shift_per_channel(acc, self.channel_shifts(), axis=axis)
        return numerics.saturate(shifted, self.qattrs["act_min"], self.qattrs["act_max"])

    # -- quantization-aware training ------------------------------------------------
    def qat_forward(self, model, x):
        """acc = W . x + b on the integers the compiler's weight rule gives the current float weights
        (self.quantize ran on them: QATModel.forward), then requantize; sparse and packed layers
        compute the same integers."""
        import torch

        from .qat_support import DTYPE, requantize, straight_through

        q = self.qparams
        n = self.out_channels
        f_w = np.array(np.broadcast_to(np.asarray(self.qattrs["weight_frac_bits"], dtype=np.float64), (n,)))
        w = model.weights[self.name] * model.masks[self.name]
        w_scaled = w * torch.pow(2.0, torch.as_tensor(f_w, dtype=DTYPE)).reshape((n,) + (1,) * (w.ndim - 1))
        lo, hi = -(1 << (self.qattrs["weight_bits"] - 1)), (1 << (self.qattrs["weight_bits"] - 1)) - 1
        w_int = straight_through(w_scaled, torch.as_tensor(q["weight"].astype(np.float64), dtype=DTYPE), lo, hi)
        acc = self.qat_products(x, w_int)
        if "bias" in q:
            f_in = model.graph.tensors[self.inputs[0]].frac_bits
            b = model.biases[self.name] * torch.pow(2.0, torch.as_tensor(f_in + f_w, dtype=DTYPE))
            b_int = straight_through(b, torch.as_tensor(q["bias"].astype(np.float64), dtype=DTYPE))
            shape = [1] * acc.ndim
            shape[self.channel_axis % acc.ndim] = n
            acc = acc + b_int.reshape(shape)
        return requantize(acc, self.channel_shifts(), self.qattrs["act_min"], self.qattrs["act_max"],
                          self.channel_axis % acc.ndim)

    def qat_products(self, x, w_int):
        """W . x in torch (float64, exact), output channel on channel_axis."""
        raise NotImplementedError

    def formats(self, graph: Graph) -> str:
        fi, fo = self.format_of(graph, self.inputs[0]), self.format_of(graph, self.outputs[0])
        fw = sorted(set(self.qattrs.get("weight_frac_bits", [])))
        fw_text = ",".join(str(v) for v in fw) if len(fw) <= 2 else f"{fw[0]}..{fw[-1]}"
        shifts = sorted(set(int(s) for s in self.qparams.get("shift", [])))
        s_text = ",".join(str(v) for v in shifts) if len(shifts) <= 2 else f"{shifts[0]}..{shifts[-1]}"
        return f"x:{fi} w:{fw_text} y:{fo} >>{s_text}"

    def emit_requant_args(self, em, emit_weight: bool = True) -> tuple[str, str, str, str]:
        """C arguments: weight array, bias array (or a null pointer), "shift array, per-channel flag",
        and the activation clamp."""
        w = em.const_array(f"{self.name}_weight", "int8_t", self.qparams["weight"]) if emit_weight else ""
        b = em.const_array(f"{self.name}_bias", "int32_t", self.qparams["bias"]) \
            if "bias" in self.qparams else "(const int32_t *)0"
        s = em.const_array(f"{self.name}_shift", "int8_t", self.qparams["shift"])
        per_channel = int(self.qparams["shift"].size > 1)
        return w, b, f"{s}, {per_channel}", f"{self.qattrs['act_min']}, {self.qattrs['act_max']}"

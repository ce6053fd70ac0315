"""MaxPool2d and AvgPool2d over (C, H, W).  MaxPool keeps the input's Q-format.

attrs: kernel [kh, kw], stride [sh, sw], pads [top, left, bottom, right];
AvgPool2d also count_include_pad (divide by the full window or by the number
of in-bounds elements, as PyTorch and ONNX define it).
C kernels: ec_maxpool2d_fast_s8, ec_avgpool2d_fast_s8 in runtime_c/ec_pool2d_fast.c, bit-exact with
the reference ec_maxpool2d_s8, ec_avgpool2d_s8 in runtime_c/ec_pool2d.c.
"""
from __future__ import annotations

import numpy as np

from .. import access_order, numerics
from ..ir import Graph
from .base import Op, SlidingWindow, register
from .conv2d import conv_output_size, patches


class Pool2d(SlidingWindow, Op):
    preserves_format = True
    runtime_files = ("ec_pool2d_fast", "ec_pool2d_mve", "ec_fast")

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        c, h, w = graph.shape(self.inputs[0])
        kh, kw = self.attrs["kernel"]
        sh, sw = self.attrs["stride"]
        pt, pl, pb, pr = self.attrs["pads"]
        return (c, conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr))

    def describe(self) -> str:
        kh, kw = self.attrs["kernel"]
        text = f"{kh}x{kw} s{self.attrs['stride'][0]}"
        return text + (f" p{self.attrs['pads'][0]}" if any(self.attrs["pads"]) else "")

    def macs(self, graph: Graph) -> int:
        """Comparisons/additions, counted like MACs for the tables."""
        kh, kw = self.attrs["kernel"]
        return int(np.prod(graph.shape(self.outputs[0])) * kh * kw)

    def window(self) -> tuple:
        return self.attrs["kernel"], self.attrs["stride"], self.attrs["pads"], (1, 1)

    def overwrite_orders(self, graph: Graph) -> list | None:
        """ec_maxpool2d_fast_s8 / ec_avgpool2d_fast_s8 (access_order.py): channel by channel, output
        pixels in raster order, each window read before its output is written.  (Helium's 2x2 path
        reads sixteen windows, then writes their outputs: reads earlier, writes later, both safe.)
        The int16 kernels: not declared."""
        if self.is_wide(graph):
            return None
        return [access_order.channel_group_order(graph.shape(self.inputs[0]), graph.shape(self.outputs[0]),
                                                 self.attrs["kernel"], self.attrs["stride"], self.attrs["pads"],
                                                 group=1, widen=0)]

    def _c_geometry(self, em) -> tuple[str, str, str, str]:
        """C arguments: input buffer, "channels, in_h, in_w, k_h, k_w, stride_h, stride_w, pad_top,
        pad_left", output buffer, "out_h, out_w"."""
        c, h, w = em.graph.shape(self.inputs[0])
        _, oh, ow = em.graph.shape(self.outputs[0])
        kh, kw = self.attrs["kernel"]
        sh, sw = self.attrs["stride"]
        pt, pl = self.attrs["pads"][:2]
        return (em.buffer(self.inputs[0]), f"{c}, {h}, {w}, {kh}, {kw}, {sh}, {sw}, {pt}, {pl}",
                em.buffer(self.outputs[0]), f"{oh}, {ow}")


@register
class MaxPool2d(Pool2d):
    op_type = "MaxPool2d"
    onnx_ops = ("MaxPool",)
    keeps_codes = True  # the max of codes is the code of the max, for any zero point

    def run_float(self, x: np.ndarray) -> np.ndarray:
        win = patches(np.asarray(x, dtype=np.float64), *self.attrs["kernel"], self.attrs["stride"],
                      self.attrs["pads"], fill=-np.inf)
        return win.max(axis=(4, 5))

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        # Padding never wins a max: fill with the smallest integer there is.
        win = patches(np.asarray(x_q, dtype=np.int64), *self.attrs["kernel"], self.attrs["stride"],
                      self.attrs["pads"], fill=np.iinfo(np.int64).min)
        return win.max(axis=(4, 5))

    def qat_forward(self, model, x):
        import torch.nn.functional as F

        pt, pl, pb, pr = self.attrs["pads"]
        xp = F.pad(x, (pl, pr, pt, pb), value=-float(1 << 20))  # below every code: padding never wins
        return F.max_pool2d(xp, tuple(self.attrs["kernel"]), tuple(self.attrs["stride"]))

    def emit_c(self, em) -> None:
        x, geometry, y, out_size = self._c_geometry(em)
        if self.is_wide(em.graph):
            em.runtime.add("ec_pool2d")
            em.call(f"ec_maxpool2d_any({x}, {em.element_bytes(self.inputs[0])}, {geometry}, {y}, {out_size})")
            return
        em.call(f"ec_maxpool2d_fast_s8({x}, {geometry}, {y}, {out_size})")


@register
class AvgPool2d(Pool2d):
    """Average pooling that also rescales: y = sat(round_half_up(sum * 2^k / n) + offset), k = f_out - f_in
    (for k < 0, into a narrower output: round_half_up(sum / (n * 2^-k))).

    offset = z_out - z_in * 2^k carries the zero points (numerics.py): an unpadded pool over
    codes q = u + z_in sums q = sum(u) + n * z_in, and
    round_half_up((sum(u) + n * z_in) * 2^k / n) = round_half_up(sum(u) * 2^k / n) + z_in * 2^k
    exactly when z_in * 2^k is an integer (k >= 0, or z_in = -128 and k >= -7: a signed output of
    unsigned codes is one bit coarser); subtracting it and adding the output's zero point gives
    the output's code.  Signed codes have offset 0.  A padded window would read the fill 0 as a
    code that is not real zero, so zero_point_tensors never gives a padded pool such an input.

    Averaging shrinks values (a global pool of N(0,1) data has spread 1/sqrt(n)),
    so the output gets its own calibrated frac bits instead of the input's;
    the rescale costs nothing extra since the division rounds anyway.
    """

    op_type = "AvgPool2d"
    onnx_ops = ("AveragePool", "GlobalAveragePool", "ReduceMean")
    preserves_format = False

    def _divisors(self, h: int, w: int) -> np.ndarray:
        """Per output position (OH, OW): how many elements the average divides by."""
        kh, kw = self.attrs["kernel"]
        ones = np.ones((1, 1, h, w), dtype=np.int64)
        valid = patches(ones, kh, kw, self.attrs["stride"], self.attrs["pads"], fill=0).sum(axis=(4, 5))[0, 0]
        if self.attrs.get("count_include_pad", True):
            return np.full_like(valid, kh * kw)
        return valid

    def _window_sums(self, x: np.ndarray, dtype) -> np.ndarray:
        win = patches(np.asarray(x, dtype=dtype), *self.attrs["kernel"], self.attrs["stride"],
                      self.attrs["pads"], fill=0)
        return win.sum(axis=(4, 5))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return self._window_sums(x, np.float64) / self._divisors(*np.shape(x)[2:])

    def quantize(self, graph: Graph, options) -> None:
        x = graph.tensors[self.inputs[0]]
        y = graph.tensors[self.outputs[0]]
        kh, kw = self.attrs["kernel"]
        window = kh * kw
        # 2 * |sum| * 2^k + n must stay below 2^31 in C: |sum| <= 2^(bits-1) * window.
        k_max = 0
        while (2 * (1 << (x.bits - 1)) * window << (k_max + 1)) + window < numerics.ACC_MAX:
            k_max += 1
        if y.frac_bits - x.frac_bits > k_max:
            y.frac_bits = x.frac_bits + k_max
            graph.notes.append(f"{self.name}: output frac bits limited to {y.frac_bits} (int32 headroom)")
        # An average never exceeds its inputs, so the input's format always fits a same-width output
        # (k >= 0); a narrower output needs (x.bits - y.bits) fewer frac bits at most (k < 0), and a
        # signed output of an input with a zero point one fewer (its codes span 2^bits values).
        coarsest = x.frac_bits - (x.bits - y.bits) - (x.zero_point != 0 and y.zero_point == 0)
        if y.frac_bits < coarsest:
            y.frac_bits = coarsest
            options.refit_zero_point(y)
        lo, hi = numerics.qrange(y.bits)
        k = y.frac_bits - x.frac_bits
        # z_in * 2^k must be an integer (see the class docstring): zero_point_tensors gives a pool an
        # input with a zero point only when it is -128 (k >= -7 here) or the output has one (k >= 0)
        assert not x.zero_point or (not any(self.attrs["pads"]) and int(x.zero_point) % (1 << max(-k, 0)) == 0), \
            "a zero-pointed input: unpadded, z_in * 2^k an integer"
        offset = int(y.zero_point) - (int(x.zero_point) << k if k >= 0 else int(x.zero_point) >> -k)
        self.qattrs = {"scale_shift": k, "offset": offset, "act_min": lo, "act_max": hi}

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        k = int(self.qattrs["scale_shift"])  # k < 0 only into a narrower output, see quantize()
        total = self._window_sums(x_q, np.int64) << max(k, 0)
        n = self._divisors(*np.shape(x_q)[2:]) << max(-k, 0)
        # Rule 5 per position: round half up of (sum * 2^k) / n, then rule 3.
        mean = numerics.round_half_up_div(total, n) + self.qattrs.get("offset", 0)
        return numerics.saturate(mean, self.qattrs["act_min"], self.qattrs["act_max"])

    def _qat_window_sum(self, x):
        import torch.nn.functional as F

        pt, pl, pb, pr = self.attrs["pads"]
        return F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), tuple(self.attrs["kernel"]), tuple(self.attrs["stride"]),
                            divisor_override=1)

    def qat_forward(self, model, x):
        import torch

        from .qat_support import straight_through

        k = int(self.qattrs["scale_shift"])
        total = self._qat_window_sum(x) * float(1 << max(k, 0))
        if self.attrs.get("count_include_pad", True):
            n = float(self.attrs["kernel"][0] * self.attrs["kernel"][1])
        else:
            n = self._qat_window_sum(torch.ones_like(x[:1, :1]))
        n = n * float(1 << max(-k, 0))
        exact = torch.div(2 * total + n, 2 * n, rounding_mode="floor")  # rule 5, exact below 2^53
        q = self.qattrs
        return straight_through(total / n, torch.clamp(exact, q["act_min"], q["act_max"]), q["act_min"],
                                q["act_max"])

    def formats(self, graph: Graph) -> str:
        return super().formats(graph) + f" *2^{self.qattrs.get('scale_shift', 0)}"

    def emit_c(self, em) -> None:
        include = 1 if self.attrs.get("count_include_pad", True) else 0
        x, geometry, y, out_size = self._c_geometry(em)
        if self.is_wide(em.graph):
            em.runtime.add("ec_pool2d")
            em.call(f"ec_avgpool2d_any({x}, {em.element_bytes(self.inputs[0])}, {geometry}, {y}, "
                    f"{em.element_bytes(self.outputs[0])}, {out_size}, {include}, {self.qattrs['scale_shift']}, "
                    f"{self.qattrs.get('offset', 0)})")
            return
        em.call(f"ec_avgpool2d_fast_s8({x}, {geometry}, {y}, {out_size}, {include}, {self.qattrs['scale_shift']}, "
                f"{self.qattrs.get('offset', 0)})")

"""Conv2d: 2-D convolution over (C, H, W) with padding, groups and dilation.

The padding is real zero: its integer code is the input's zero point (0, or -128 for an
unsigned ReLU output, passes/quantize.py), which the simulator and every C kernel read for a
tap outside the input (the kernels' pad_value argument).

attrs: stride [sh, sw], pads [top, left, bottom, right], groups (1; in_c for
depthwise), dilation [dh, dw] (default 1), act (fused clamp).
params: weight (OC, IC / groups, KH, KW), bias (OC).
C kernels: ec_conv2d_fast_s8 (groups = 1, no dilation; runtime_c/ec_conv2d_fast.c, bit-exact with
the reference ec_conv2d_s8 in runtime_c/ec_conv2d.c) and its pointwise path ec_conv2d_1x1_fast_s8
(1x1, no padding), ec_conv2d_grouped_fast_s8 (any groups and dilation; runtime_c/ec_depthwise_fast.c,
bit-exact with the reference ec_conv2d_grouped_s8 in runtime_c/ec_conv2d_grouped.c; a grouped conv
with several input channels per group calls ec_conv2d_fast_s8 once per group instead), and for int16
activations ec_conv2d_any.  On cores with Helium, ec_conv2d_grouped_fast_s8 runs depthwise layers
(groups = in_c = out_c, no dilation) through ec_depthwise_mve_s8 (runtime_c/ec_depthwise_mve.c).
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import access_order
from ..ir import Graph
from . import activation
from .base import SlidingWindow, register
from .weighted import WeightedOp, exact_integer_products


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def patches(x: np.ndarray, kh: int, kw: int, stride, pads, fill=0, dilation=(1, 1)) -> np.ndarray:
    """(N, C, H, W) -> (N, C, OH, OW, KH, KW) windows, padding with `fill`."""
    pt, pl, pb, pr = pads
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return win[:, :, ::stride[0], ::stride[1], ::dh, ::dw]


TAP_CHUNK = 1 << 15  # output values per group of samples in tap_sum: its working set stays in cache
SHORT_ROWS = 4  # tap_sum works channels-last when the output rows are this many times shorter than the channels


def padded(x: np.ndarray, pads, fill, dtype, channels_last: bool = False) -> np.ndarray:
    """x (N, C, H, W) as `dtype` inside a border of `fill` (pads: top, left, bottom, right): one copy.
    `channels_last`: the copy's memory is (N, H, W, C) (the array is its (N, C, H, W) view)."""
    pt, pl, pb, pr = pads
    n, c, h, w = x.shape
    if not any(pads) and not channels_last:
        return np.asarray(x, dtype=dtype)
    if channels_last:
        xp = np.empty((n, h + pt + pb, w + pl + pr, c), dtype=dtype).transpose(0, 3, 1, 2)
    else:
        xp = np.empty((n, c, h + pt + pb, w + pl + pr), dtype=dtype)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    xp[:, :, :pt], xp[:, :, pt + h:] = fill, fill  # the border alone: the inside is written once
    xp[:, :, pt:pt + h, :pl], xp[:, :, pt:pt + h, pl + w:] = fill, fill
    return xp


def tap_sum(xp: np.ndarray, w: np.ndarray, out_size, stride, dilation) -> np.ndarray:
    """sum over taps (i, j) of w[c, i, j] * xp[:, c] shifted by that tap, in tap order: (N, C, OH, OW).
    xp is the padded input.  Each output value is its own chain of float operations, so working a
    few samples at a time (for the cache), or channels-last (short rows), gives the same values."""
    (oh, ow), (sh, sw), (dh, dw) = out_size, stride, dilation
    n, c = xp.shape[:2]
    dtype = np.result_type(xp, w)
    if ow * SHORT_ROWS < c:  # numpy's loops would run over rows of a few pixels: run over the channels
        x = np.ascontiguousarray(xp.transpose(0, 2, 3, 1))
        out = np.zeros((n, oh, ow, c), dtype=dtype)
        term = np.empty_like(out)
        for i in range(w.shape[1]):
            for j in range(w.shape[2]):
                plane = x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw, :]
                out += np.multiply(plane, w[:, i, j], out=term)
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    out = np.zeros((n, c, oh, ow), dtype=dtype)
    term = np.empty_like(out)
    step = max(1, TAP_CHUNK // max(c * oh * ow, 1))
    for b in range(0, n, step):
        o, t, x = out[b:b + step], term[b:b + step], xp[b:b + step]
        for i in range(w.shape[1]):
            for j in range(w.shape[2]):
                plane = x[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
                o += np.multiply(plane, w[None, :, i, j, None, None], out=t)
    return out


def is_channels_last(x: np.ndarray) -> bool:
    """Whether an (N, C, H, W) array's memory is (N, H, W, C) (and not also (N, C, H, W))."""
    return x.transpose(0, 2, 3, 1).flags.c_contiguous and not x.flags.c_contiguous


def torch_conv2d(xp: np.ndarray, w: np.ndarray, stride, dilation, groups: int) -> np.ndarray:
    """The convolution of the padded input xp (N, C, H, W) by w (OC, C / groups, KH, KW), in their
    float type, by PyTorch's direct convolution: 4-13x faster than numpy's multiply-add per tap on
    depthwise layers, 1.5-4x than a matrix product per tap on the others (measured on MobileNetV2's).
    Exact on integers held in floats whose every partial sum is below 2^24 (float32) or 2^53 (float64):
    each sum is then exact in whatever order it is taken."""
    import torch

    with warnings.catch_warnings():  # a read-only input (a kept evaluation's) is fine: conv2d only reads it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        if is_channels_last(xp):
            x = torch.from_numpy(xp.transpose(0, 2, 3, 1)).permute(0, 3, 1, 2)
        else:
            x = torch.from_numpy(np.ascontiguousarray(xp))
    with torch.no_grad():
        y = torch.nn.functional.conv2d(x, torch.from_numpy(np.ascontiguousarray(w)), stride=tuple(stride),
                                       dilation=tuple(dilation), groups=groups)
    return y.numpy()


@register
class Conv2d(SlidingWindow, WeightedOp):
    op_type = "Conv2d"
    onnx_ops = ("Conv",)
    runtime_files = ("ec_conv2d_fast", "ec_conv2d_mve", "ec_fast")

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight_shape[2]), int(self.weight_shape[3])

    @property
    def groups(self) -> int:
        return int(self.attrs.get("groups", 1))

    @property
    def dilation(self) -> tuple[int, int]:
        return tuple(int(d) for d in self.attrs.get("dilation", (1, 1)))

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        c, h, w = graph.shape(self.inputs[0])
        oc, ic, kh, kw = self.weight_shape
        if ic * self.groups != c or oc % self.groups:
            raise ValueError(f"conv {self.name}: weight {self.weight_shape} with {self.groups} groups does not fit "
                             f"{c} input channels")
        sh, sw = self.attrs["stride"]
        pt, pl, pb, pr = self.attrs["pads"]
        dh, dw = self.dilation
        return (oc, conv_output_size(h, kh, sh, pt, pb, dh), conv_output_size(w, kw, sw, pl, pr, dw))

    def describe(self) -> str:
        kh, kw = self.kernel
        sh, sw = self.attrs["stride"]
        text = f"{kh}x{kw} s{sh}" + ("" if sh == sw else f",{sw}")
        pads = [int(v) for v in self.attrs["pads"]]  # top, left, bottom, right
        if any(pads):
            text += f" p{pads[0]}" if len(set(pads)) == 1 else " p" + ",".join(str(v) for v in pads)
        if self.groups > 1:
            text += " dw" if self.groups == self.weight_shape[0] == self.groups * self.weight_shape[1] \
                else f" g{self.groups}"
        if self.dilation != (1, 1):
            text += f" d{self.dilation[0]}"
        return text + activation.describe(self.attrs.get("act"))

    def macs(self, graph: Graph) -> int:
        oc, oh, ow = graph.shape(self.outputs[0])
        return int(oc * oh * ow * np.prod(self.weight_shape[1:]))

    def _windows(self, x: np.ndarray, dtype) -> np.ndarray:
        kh, kw = self.kernel
        return patches(np.asarray(x, dtype=dtype), kh, kw, self.attrs["stride"], self.attrs["pads"],
                       dilation=self.dilation)

    def _products(self, x: np.ndarray, w: np.ndarray, fill: int = 0) -> np.ndarray:
        """sum over (ic, ky, kx) of window * weight, in the inputs' dtype: (N, OC, OH, OW), the
        padding read as `fill` (the input's zero point: the code of real zero).

        Floats (the float model) go through torch_conv2d.  Integers (the int64 reference): depthwise
        convs take a multiply-add per kernel tap; the others, group by group, one matrix product per
        tap: (OC, C) weights times the input planes shifted by that tap (no im2col copy)."""
        n, c = x.shape[:2]
        oc, cpg, kh, kw = w.shape
        g = self.groups
        if np.issubdtype(x.dtype, np.floating):  # the float model: any order of the sums will do
            depthwise = g > 1 and cpg == 1  # channels-last: see float_products
            return torch_conv2d(padded(x, self.attrs["pads"], fill, x.dtype, channels_last=depthwise), w.astype(x.dtype),
                                self.attrs["stride"], self.dilation, g)
        if g > 1 and cpg == 1:  # depthwise (with channel multiplier oc // c)
            return self._tap_products(np.repeat(x, oc // c, axis=1) if oc != c else x, w[:, 0], fill)
        (sh, sw), (pt, pl, pb, pr), (dh, dw) = self.attrs["stride"], self.attrs["pads"], self.dilation
        xp = (np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill) if any((pt, pl, pb, pr))
              else x).transpose(1, 0, 2, 3)
        oh = conv_output_size(x.shape[2], kh, sh, pt, pb, dh)
        ow = conv_output_size(x.shape[3], kw, sw, pl, pr, dw)
        out = np.zeros((oc, n * oh * ow), dtype=x.dtype)
        ocg = oc // g
        for i in range(kh):
            for j in range(kw):
                plane = xp[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
                plane = np.ascontiguousarray(plane).reshape(c, -1)
                for k in range(g):
                    out[k * ocg:(k + 1) * ocg] += w[k * ocg:(k + 1) * ocg, :, i, j] @ plane[k * cpg:(k + 1) * cpg]
        return out.reshape(oc, n, oh, ow).transpose(1, 0, 2, 3)

    def _tap_products(self, x: np.ndarray, w: np.ndarray, fill: int = 0) -> np.ndarray:
        """Depthwise: out[:, c] = sum over taps (i, j) of w[c, i, j] * the input plane shifted by that tap."""
        (sh, sw), (pt, pl, pb, pr), (dh, dw) = self.attrs["stride"], self.attrs["pads"], self.dilation
        oh = conv_output_size(x.shape[2], w.shape[1], sh, pt, pb, dh)
        ow = conv_output_size(x.shape[3], w.shape[2], sw, pl, pr, dw)
        return tap_sum(padded(x, (pt, pl, pb, pr), fill, x.dtype), w, (oh, ow), (sh, sw), (dh, dw))

    def float_products(self, graph: Graph, x_q: np.ndarray, w: np.ndarray, dtype) -> np.ndarray:
        """W . x for run_int's exact float path: (N, OC, OH, OW) in `dtype`, a new array, padding read as
        the input's zero point.  Depthwise: torch_conv2d; 1x1 unpadded: one matrix
        product per sample; else one per sample and group on the im2col columns."""
        fill = self.pad_value(graph)
        n, c = x_q.shape[:2]
        oc, cpg, kh, kw = w.shape
        g = self.groups
        (sh, sw), pads, (dh, dw) = self.attrs["stride"], self.attrs["pads"], self.dilation
        oh = conv_output_size(x_q.shape[2], kh, sh, pads[0], pads[2], dh)
        ow = conv_output_size(x_q.shape[3], kw, sw, pads[1], pads[3], dw)
        w = w.astype(dtype)
        if g > 1 and cpg == 1:  # depthwise (with channel multiplier oc // c)
            # channels-last: PyTorch's depthwise convolution is faster on it (MobileNetV2-tiny's depthwise
            # products, 32 samples, one thread: 29 -> 16 ms)
            xp = padded(x_q if oc == c else np.repeat(x_q, oc // c, axis=1), pads, fill, dtype, channels_last=True)
            return torch_conv2d(xp, w, (sh, sw), (dh, dw), oc)
        if g == 1 and (kh, kw) == (1, 1) and not any(pads):
            if is_channels_last(x_q):  # (a depthwise conv's output) one product per sample, channels-last
                x = np.ascontiguousarray(x_q[:, :, ::sh, ::sw].transpose(0, 2, 3, 1), dtype=dtype)
                return np.matmul(x.reshape(n, oh * ow, c), w.reshape(oc, c).T).reshape(n, oh, ow, oc).transpose(0, 3, 1, 2)
            x = np.ascontiguousarray(x_q[:, :, ::sh, ::sw], dtype=dtype).reshape(n, c, oh * ow)
            return np.matmul(w.reshape(oc, c), x).reshape(n, oc, oh, ow)
        win = patches(padded(x_q, pads, fill, dtype), kh, kw, (sh, sw), (0, 0, 0, 0), dilation=(dh, dw))
        cols = win.reshape(n, g, cpg, oh, ow, kh, kw).transpose(0, 1, 2, 5, 6, 3, 4).reshape(n, g, -1, oh * ow)
        return np.matmul(w.reshape(g, oc // g, -1), cols).reshape(n, oc, oh, ow)

    def run_float(self, x: np.ndarray) -> np.ndarray:
        # In float32, the type the model was trained and is run in, and the type Graph.evaluate keeps every
        # tensor in: PyTorch has no fast float64 convolution (MobileNetV2-tiny's float model on 64 samples:
        # 0.48 s in float64, 0.20 s), and the float model is the compiler's inner loop (calibration,
        # equalization, snapping, format search).  Its sums differ from float64's by ~1e-7 relative, far
        # below any quantization step.  The bias and the clamp too (a float64 copy of each output only to
        # round it back cost as much again).
        y = self._products(np.asarray(x, np.float32), np.asarray(self.params["weight"], np.float32))
        if "bias" in self.params:
            y += np.asarray(self.params["bias"], dtype=np.float32)[None, :, None, None]
        return self.run_float_act(y)

    def qat_products(self, x, w_int):
        import torch.nn.functional as F

        pt, pl, pb, pr = self.attrs["pads"]
        return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w_int, None, tuple(self.attrs["stride"]), 0, self.dilation,
                        self.groups)

    def accumulate(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        w = self.qparams["weight"]
        fill = graph.tensors[self.inputs[0]].zero_point  # padding is real zero: the zero point's code
        return exact_integer_products(lambda x, w_: self._products(x, w_, fill), x_q, w, w.reshape(len(w), -1))

    def _per_group_dense(self, graph: Graph) -> bool:
        """A grouped conv with several input channels per group (ShuffleNet's grouped 1x1): each group is
        an ordinary convolution, run by ec_conv2d_fast_s8 (or its pointwise path) on the group's planes."""
        return self.groups > 1 and self.weight_shape[1] > 1 and self.dilation == (1, 1) and not self.is_wide(graph)

    def scratch_bytes(self, graph: Graph) -> int:
        """The fast kernel's scratch: accumulators and im2col columns, plus for ec_conv2d_fast_s8 the
        tap offsets and padded band."""
        from .fast_kernels import conv_scratch_bytes, grouped_scratch_bytes, is_pointwise, pointwise_scratch_bytes
        if self.is_wide(graph):
            return 0
        if self._per_group_dense(graph):  # one group at a time, the scratch reused
            (c, h, w), (oc, oh, ow) = graph.shape(self.inputs[0]), graph.shape(self.outputs[0])
            cpg, ocpg = c // self.groups, oc // self.groups
            if is_pointwise(self.kernel, self.attrs["pads"]):
                return pointwise_scratch_bytes(cpg, ocpg)
            return conv_scratch_bytes((cpg, h, w), (ocpg, oh, ow), self.kernel, self.attrs["stride"],
                                      self.attrs["pads"])
        if self.groups > 1 or self.dilation != (1, 1):  # ec_conv2d_grouped_fast_s8's padded plane
            return grouped_scratch_bytes(graph.shape(self.inputs[0])[0], self.groups, graph.shape(self.outputs[0]),
                                         self.kernel, self.attrs["stride"], self.dilation)
        if is_pointwise(self.kernel, self.attrs["pads"]):
            return pointwise_scratch_bytes(graph.shape(self.inputs[0])[0], self.out_channels)
        return conv_scratch_bytes(graph.shape(self.inputs[0]), graph.shape(self.outputs[0]), self.kernel,
                                  self.attrs["stride"], self.attrs["pads"])

    def window(self) -> tuple:
        return self.kernel, self.attrs["stride"], self.attrs["pads"], self.dilation

    def overwrite_orders(self, graph: Graph) -> list | None:
        """The fast int8 kernels' orders (access_order.py): ec_conv2d_fast_s8 and its pointwise path
        a pair of pixels at a time; a depthwise layer a plane at a time (portable, DSP) and four
        channels' pixels at a time (Helium).  Per-group calls, other grouped or dilated convs and
        int16 activations read their input in no order that allows it."""
        if self.is_wide(graph) or self._per_group_dense(graph):
            return None
        x_shape, y_shape = graph.shape(self.inputs[0]), graph.shape(self.outputs[0])
        stride, pads = self.attrs["stride"], self.attrs["pads"]
        if self.groups == 1 and self.dilation == (1, 1):
            return [access_order.pixel_pair_order(x_shape, y_shape, self.kernel, stride, pads)]
        if self.groups == x_shape[0] == y_shape[0]:  # depthwise, one output channel per input channel
            orders = [access_order.plane_order(x_shape, y_shape)]
            if self.dilation == (1, 1):
                orders.append(access_order.channel_group_order(x_shape, y_shape, self.kernel, stride, pads))
            return orders
        return None

    def pad_value(self, graph: Graph) -> int:
        """The code the C kernels read for a tap in the padding: the input's zero point."""
        return int(graph.tensors[self.inputs[0]].zero_point)

    def c_geometry(self, em, bytes_after_buffers: bool = False) -> tuple[str, str, str]:
        """The C arguments every conv kernel takes: "input, in_c, in_h, in_w",
        "out_c, k_h, k_w, stride_h, stride_w, pad_top, pad_left, pad_value" and "output, out_h, out_w"
        (with bytes_after_buffers, each buffer is followed by its element size, for _any kernels)."""
        c, h, wd = em.graph.shape(self.inputs[0])
        oc, oh, ow = em.graph.shape(self.outputs[0])
        kh, kw = self.kernel
        sh, sw = self.attrs["stride"]
        pt, pl = self.attrs["pads"][:2]
        x, y = em.buffer(self.inputs[0]), em.buffer(self.outputs[0])
        if bytes_after_buffers:
            x, y = f"{x}, {em.element_bytes(self.inputs[0])}", f"{y}, {em.element_bytes(self.outputs[0])}"
        return (f"{x}, {c}, {h}, {wd}", f"{oc}, {kh}, {kw}, {sh}, {sw}, {pt}, {pl}, {self.pad_value(em.graph)}",
                f"{y}, {oh}, {ow}")

    def emit_c(self, em) -> None:
        from .fast_kernels import CONV_GROUP, is_pointwise, weighted_args
        if self._per_group_dense(em.graph):
            self._emit_per_group(em)
            return
        if self.groups > 1 or self.dilation != (1, 1) or self.is_wide(em.graph):
            self._emit_grouped(em)
            return
        w, b, s, requant = weighted_args(self, em, CONV_GROUP, paired_tails=True)
        x, kernel, y = self.c_geometry(em)
        if is_pointwise(self.kernel, self.attrs["pads"]):
            sh, sw = self.attrs["stride"]
            em.call(f"ec_conv2d_1x1_fast_s8({x}, {w}, {b}, {s}, {self.out_channels}, {sh}, {sw}, {y}, {requant}, "
                    f"{em.scratch(self)})")
            return
        em.call(f"ec_conv2d_fast_s8({x}, {w}, {b}, {s}, {kernel}, {y}, {requant}, {em.scratch(self)})")

    def _emit_per_group(self, em) -> None:
        """A grouped conv with in_c / groups > 1: one fast conv call per group, on the group's input
        planes, weights (packed per group, each array aligned), biases, shifts and output planes."""
        from .fast_kernels import CONV_GROUP, is_pointwise, pack_rows, round_folded
        (c, h, wd), (oc, oh, ow) = em.graph.shape(self.inputs[0]), em.graph.shape(self.outputs[0])
        g = self.groups
        cpg, ocpg = c // g, oc // g
        q = self.qparams
        weight = np.asarray(q["weight"]).reshape(oc, -1)
        bias = q.get("bias")
        shifts = self.channel_shifts()
        _, b, s, clamp = self.emit_requant_args(em, emit_weight=False)
        shift_array, per_channel = s.rsplit(", ", 1)
        x, y = em.buffer(self.inputs[0]), em.buffer(self.outputs[0])
        kh, kw = self.kernel
        sh, sw = self.attrs["stride"]
        pt, pl = self.attrs["pads"][:2]
        for i in range(g):
            rows = slice(i * ocpg, (i + 1) * ocpg)
            w = em.const_array(f"{self.name}_weight_g{i}", "int8_t",
                               pack_rows(weight[rows], CONV_GROUP, paired_tails=True), align=4)
            b_i = f"{b} + {i * ocpg}" if bias is not None else b
            s_i = f"{shift_array} + {i * ocpg}, 1" if per_channel == "1" else s
            folded = round_folded(weight[rows], None if bias is None else bias[rows], shifts[rows])
            x_i = f"{x} + {i * cpg * h * wd}, {cpg}, {h}, {wd}"
            y_i = f"{y} + {i * ocpg * oh * ow}, {oh}, {ow}"
            if is_pointwise(self.kernel, self.attrs["pads"]):
                em.call(f"ec_conv2d_1x1_fast_s8({x_i}, {w}, {b_i}, {s_i}, {ocpg}, {sh}, {sw}, {y_i}, {clamp}, "
                        f"{folded}, {em.scratch(self)})")
            else:
                em.call(f"ec_conv2d_fast_s8({x_i}, {w}, {b_i}, {s_i}, {ocpg}, {kh}, {kw}, {sh}, {sw}, {pt}, {pl}, "
                        f"{self.pad_value(em.graph)}, {y_i}, {clamp}, {folded}, {em.scratch(self)})")

    def _emit_grouped(self, em) -> None:
        """Grouped, depthwise or dilated: ec_conv2d_grouped_fast_s8 (weights in their logical order);
        with int16 activations the general kernel ec_conv2d_any."""
        from .fast_kernels import round_folded
        wide = self.is_wide(em.graph)
        w, b, s, clamp = self.emit_requant_args(em)
        x, kernel, y = self.c_geometry(em, bytes_after_buffers=wide)
        dh, dw = self.dilation
        if wide:
            em.runtime.add("ec_conv2d_grouped")
            em.call(f"ec_conv2d_any({x}, {w}, {b}, {s}, {kernel}, {dh}, {dw}, {self.groups}, {y}, {clamp})")
            return
        em.runtime.add("ec_depthwise_fast")
        if self.groups == self.out_channels == self.groups * self.weight_shape[1] and self.dilation == (1, 1):
            # depthwise: ec_conv2d_grouped_fast_s8 hands it to the Helium kernel on cores with MVE
            em.runtime.add("ec_depthwise_mve")
        q = self.qparams
        folded = round_folded(q["weight"], q.get("bias"), self.channel_shifts())
        scratch = em.scratch(self) if self.scratch_bytes(em.graph) else "0"
        em.call(f"ec_conv2d_grouped_fast_s8({x}, {w}, {b}, {s}, {kernel}, {dh}, {dw}, {self.groups}, {y}, {clamp}, "
                f"{folded}, {scratch})")

"""Conv2d: 2-D convolution over (C, H, W) with zero padding, groups = 1.

attrs: stride [sh, sw], pads [top, left, bottom, right], act (fused clamp).
params: weight (OC, IC, KH, KW), bias (OC).
C kernel: ec_conv2d_s8 in runtime_c/ec_conv2d.c.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import register
from .weighted import WeightedOp


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    return (size + pad_before + pad_after - kernel) // stride + 1


def patches(x: np.ndarray, kh: int, kw: int, stride, pads, fill=0) -> np.ndarray:
    """(N, C, H, W) -> (N, C, OH, OW, KH, KW) windows, padding with `fill`."""
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return win[:, :, ::stride[0], ::stride[1]]


@register
class Conv2d(WeightedOp):
    op_type = "Conv2d"
    runtime_files = ("ec_conv2d",)

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight_shape[2]), int(self.weight_shape[3])

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        c, h, w = graph.shape(self.inputs[0])
        oc, ic, kh, kw = self.weight_shape
        if ic != c:
            raise ValueError(f"conv {self.name}: weight expects {ic} input channels, input has {c}")
        sh, sw = self.attrs["stride"]
        pt, pl, pb, pr = self.attrs["pads"]
        return (oc, conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr))

    def describe(self) -> str:
        kh, kw = self.kernel
        text = f"{kh}x{kw} s{self.attrs['stride'][0]}"
        if any(self.attrs["pads"]):
            text += f" p{self.attrs['pads'][0]}"
        return text + (f" +{self.attrs['act']}" if self.attrs.get("act") else "")

    def macs(self, graph: Graph) -> int:
        oc, oh, ow = graph.shape(self.outputs[0])
        return int(oc * oh * ow * np.prod(self.weight_shape[1:]))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        kh, kw = self.kernel
        win = patches(np.asarray(x, dtype=np.float64), kh, kw, self.attrs["stride"], self.attrs["pads"])
        y = np.einsum("nchwij,ocij->nohw", win, np.asarray(self.params["weight"], dtype=np.float64),
                      optimize=True)
        if "bias" in self.params:
            y = y + np.asarray(self.params["bias"], dtype=np.float64)[None, :, None, None]
        return self.run_float_act(y)

    def accumulate(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        kh, kw = self.kernel
        win = patches(np.asarray(x_q, dtype=np.int64), kh, kw, self.attrs["stride"], self.attrs["pads"])
        n, c, oh, ow = win.shape[:4]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n, oh, ow, c * kh * kw)
        w = self.qparams["weight"].astype(np.int64).reshape(self.out_channels, -1)
        return (cols @ w.T).transpose(0, 3, 1, 2)

    def emit_c(self, em) -> None:
        w, b, s, clamp = self.emit_requant_args(em)
        c, h, wd = em.graph.shape(self.inputs[0])
        oc, oh, ow = em.graph.shape(self.outputs[0])
        kh, kw = self.kernel
        sh, sw = self.attrs["stride"]
        pt, pl = self.attrs["pads"][:2]
        em.call(f"ec_conv2d_s8({em.buffer(self.inputs[0])}, {c}, {h}, {wd}, {w}, {b}, {s}, "
                f"{oc}, {kh}, {kw}, {sh}, {sw}, {pt}, {pl}, "
                f"{em.buffer(self.outputs[0])}, {oh}, {ow}, {clamp})")

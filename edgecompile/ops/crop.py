"""Crop: a spatial window of a (C, H, W) tensor, every channel.  Keeps the codes and the Q-format.

Patch-based execution (passes/patches.py) uses it where a layer reads a smaller region of a
tensor than the tile holds (a residual add beside a 3x3 conv's halo).
attrs: offset [y0, x0] and size [h, w] of the window.
C kernel: ec_crop_s8 in runtime_c/ec_layout.c (row copies).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import Op, register


@register
class Crop(Op):
    op_type = "Crop"
    preserves_format = True
    keeps_codes = True
    runtime_files = ("ec_layout",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return (graph.shape(self.inputs[0])[0],) + tuple(self.attrs["size"])

    def describe(self) -> str:
        (y0, x0), (h, w) = self.attrs["offset"], self.attrs["size"]
        return f"{h}x{w} at {y0},{x0}"

    def _window(self):
        (y0, x0), (h, w) = self.attrs["offset"], self.attrs["size"]
        return (Ellipsis, slice(y0, y0 + h), slice(x0, x0 + w))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)[self._window()]

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        return np.asarray(x_q)[self._window()]

    def emit_c(self, em) -> None:
        c, h, w = em.graph.shape(self.inputs[0])
        _, oh, ow = em.graph.shape(self.outputs[0])
        y0, x0 = self.attrs["offset"]
        em.call(f"ec_crop_s8({em.buffer(self.inputs[0])}, {c}, {h}, {w}, {y0}, {x0}, {em.buffer(self.outputs[0])}, "
                f"{oh}, {ow})")

"""Slice: a strided sub-block of a tensor (ONNX Slice and Gather with a constant index,
e.g. the last time step out[:, -1] of a recurrent layer).  Keeps the Q-format.

attrs: starts, steps and out_shape, one entry per axis (without the batch axis).
C kernels: ec_strided_copy_s8 in runtime_c/ec_layout.c; a spatial window of every channel of an
int8 (C, H, W) tensor (the bands of passes/patches.py) copies whole row runs with ec_crop_s8.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import Op, register


@register
class Slice(Op):
    op_type = "Slice"
    onnx_ops = ("Slice", "Gather")
    preserves_format = True
    keeps_codes = True
    runtime_files = ("ec_layout",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        shape = graph.shape(self.inputs[0])
        for d, start, step, n in zip(shape, self.attrs["starts"], self.attrs["steps"], self.attrs["out_shape"]):
            if n < 1 or not (0 <= start < d) or not (0 <= start + (n - 1) * step < d):
                raise ValueError(f"slice {self.name}: {n} elements from {start} by {step} leave an axis of {d}")
        return tuple(int(n) for n in self.attrs["out_shape"])

    def describe(self) -> str:
        return "x".join(str(n) for n in self.attrs["out_shape"])

    def _index(self):
        return (slice(None),) + tuple(slice(s, s + (n - 1) * st + 1, st) for s, st, n in
                                      zip(self.attrs["starts"], self.attrs["steps"], self.attrs["out_shape"]))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)[self._index()]

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        return np.asarray(x_q)[self._index()]

    def qat_forward(self, model, x):
        return x[self._index()]

    def is_window(self, graph: Graph) -> bool:
        """Every channel, rows and columns in unit steps, int8: ec_crop_s8's case."""
        shape = graph.shape(self.inputs[0])
        return (len(shape) == 3 and not self.is_wide(graph) and list(self.attrs["steps"]) == [1, 1, 1]
                and self.attrs["starts"][0] == 0 and self.attrs["out_shape"][0] == shape[0])

    def geometry_arrays(self, graph: Graph) -> list[np.ndarray]:
        """ec_strided_copy's output shape and input strides (per output axis); a window needs none."""
        if self.is_window(graph):
            return []
        shape = graph.shape(self.inputs[0])
        strides = [int(np.prod(shape[k + 1:])) for k in range(len(shape))]
        return [np.asarray(self.attrs["out_shape"], dtype=np.int32),
                np.asarray([st * step for st, step in zip(strides, self.attrs["steps"])], dtype=np.int32)]

    def emit_c(self, em) -> None:
        shape = em.graph.shape(self.inputs[0])
        if self.is_window(em.graph):
            (_, y0, x0), (_, h, w) = self.attrs["starts"], self.attrs["out_shape"]
            em.call(f"ec_crop_s8({em.buffer(self.inputs[0])}, {shape[0]}, {shape[1]}, {shape[2]}, {y0}, {x0}, "
                    f"{em.buffer(self.outputs[0])}, {h}, {w})")
            return
        strides = [int(np.prod(shape[k + 1:])) for k in range(len(shape))]
        base = int(sum(s * st for s, st in zip(self.attrs["starts"], strides)))
        shape_values, stride_values = self.geometry_arrays(em.graph)
        out_shape = em.const_array(f"{self.name}_shape", "int32_t", shape_values)
        in_strides = em.const_array(f"{self.name}_strides", "int32_t", stride_values)
        bytes_ = em.element_bytes(self.inputs[0])
        width = f", {bytes_}" if self.is_wide(em.graph) else ""
        kernel = "ec_strided_copy_any" if width else "ec_strided_copy_s8"
        em.call(f"{kernel}({em.buffer(self.inputs[0])} + {base * bytes_}, {em.buffer(self.outputs[0])}{width}, "
                f"{len(shape)}, {out_shape}, {in_strides})")

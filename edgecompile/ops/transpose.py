"""Transpose (permute axes): ShuffleNet's channel shuffle (reshape - transpose - reshape)
and the NHWC -> NCHW transpose that TensorFlow-converted models start with.

attrs: perm over the axes without the batch axis.  Keeps the Q-format.
C kernel: ec_strided_copy_s8 (generic, up to 6 axes).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from .base import Op, register


@register
class Transpose(Op):
    op_type = "Transpose"
    onnx_ops = ("Transpose",)
    preserves_format = True
    keeps_codes = True
    runtime_files = ("ec_layout",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        shape = graph.shape(self.inputs[0])
        perm = self.attrs["perm"]
        if sorted(perm) != list(range(len(shape))) or len(shape) > 6:
            raise ValueError(f"transpose {self.name}: perm {perm} does not fit shape {shape} (at most 6 axes)")
        return tuple(shape[p] for p in perm)

    def describe(self) -> str:
        return "perm " + ",".join(str(p) for p in self.attrs["perm"])

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return np.transpose(x, [0] + [p + 1 for p in self.attrs["perm"]])

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        return np.transpose(x_q, [0] + [p + 1 for p in self.attrs["perm"]])

    def qat_forward(self, model, x):
        return x.permute([0] + [p + 1 for p in self.attrs["perm"]])

    def geometry_arrays(self, graph: Graph) -> list[np.ndarray]:
        """ec_strided_copy's output shape and the input strides it reads them with (per output axis)."""
        shape = graph.shape(self.inputs[0])
        strides = [int(np.prod(shape[k + 1:])) for k in range(len(shape))]
        perm = self.attrs["perm"]
        return [np.asarray([shape[p] for p in perm], dtype=np.int32),
                np.asarray([strides[p] for p in perm], dtype=np.int32)]

    def emit_c(self, em) -> None:
        perm = self.attrs["perm"]
        shape_values, stride_values = self.geometry_arrays(em.graph)
        out_shape = em.const_array(f"{self.name}_shape", "int32_t", shape_values)
        in_strides = em.const_array(f"{self.name}_strides", "int32_t", stride_values)
        width = f", {em.element_bytes(self.inputs[0])}" if self.is_wide(em.graph) else ""
        kernel = "ec_strided_copy_any" if width else "ec_strided_copy_s8"
        em.call(f"{kernel}({em.buffer(self.inputs[0])}, {em.buffer(self.outputs[0])}{width}, {len(perm)}, "
                f"{out_shape}, {in_strides})")

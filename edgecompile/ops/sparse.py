"""Linear and Conv2d layers whose pruned int8 weights are stored sparsely.

Same arithmetic as their dense classes (they inherit quantization and the
integer kernel, so the simulator is unchanged); only the stored format and the
C kernel differ.  passes/sparsify.py swaps a layer for its sparse class after
quantization, when the zeros of the *quantized* weights make a sparse format
smaller (edgecompile/sparse_format.py).  attrs["sparse_format"]: bitmap | delta.
C kernels: runtime_c/ec_sparse.c.
"""
from __future__ import annotations

import numpy as np

from .. import sparse_format
from ..ir import Graph
from .base import register
from .conv2d import Conv2d
from .linear import Linear

_C_TYPES = {np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t", np.dtype(np.int8): "int8_t"}


class SparseMixin:
    runtime_files = ("ec_sparse",)

    def encoded(self) -> sparse_format.Encoded:
        w = self.qparams["weight"]
        enc = (sparse_format.encode_bitmap(w) if self.attrs["sparse_format"] == "bitmap"
               else sparse_format.encode_delta(w))
        return enc

    def weight_bytes(self) -> int:
        rest = sum(v.size * v.itemsize for k, v in self.qparams.items() if k != "weight")
        return int(self.encoded().nbytes + rest)

    def dense_weight_bytes(self) -> int:
        return int(sum(v.size * v.itemsize for v in self.qparams.values()))

    def describe(self) -> str:
        density = np.count_nonzero(self.qparams["weight"]) / self.qparams["weight"].size
        return f"{super().describe()} {self.attrs['sparse_format']} {100 * density:.0f}%"

    def _format_args(self, em) -> str:
        enc = self.encoded()
        names = [em.const_array(f"{self.name}_{key}", _C_TYPES[arr.dtype], arr) for key, arr in enc.arrays.items()]
        return ", ".join(names)


@register
class SparseLinear(SparseMixin, Linear):
    op_type = "SparseLinear"

    def emit_c(self, em) -> None:
        w, b, s, clamp = self.emit_requant_args(em, emit_weight=False)
        out_f, in_f = self.weight_shape
        em.call(f"ec_linear_{self.attrs['sparse_format']}_s8({em.buffer(self.inputs[0])}, {in_f}, "
                f"{self._format_args(em)}, {b}, {s}, {out_f}, {em.buffer(self.outputs[0])}, {clamp})")


@register
class SparseConv2d(SparseMixin, Conv2d):
    op_type = "SparseConv2d"

    def scratch_bytes(self, graph: Graph) -> int:
        _, oh, ow = graph.shape(self.outputs[0])
        return 4 * oh * ow  # int32 accumulators of one output channel

    def emit_c(self, em) -> None:
        _, b, s, clamp = self.emit_requant_args(em, emit_weight=False)
        x, kernel, y = self.c_geometry(em)
        em.call(f"ec_conv2d_{self.attrs['sparse_format']}_s8({x}, {self._format_args(em)}, {b}, {s}, {kernel}, {y}, "
                f"{clamp}, (int32_t *){em.scratch(self)})")

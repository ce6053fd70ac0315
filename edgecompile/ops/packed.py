"""Linear and Conv2d layers whose sub-8-bit weights are packed two or four per byte.

Same arithmetic as their dense classes (quantization and the simulator's kernel are
inherited); only storage and the C kernel differ (edgecompile/packing.py, runtime_c/ec_packed.c).
passes/sparsify.py swaps a layer of 4 or fewer weight bits for its packed class.
"""
from __future__ import annotations

import numpy as np

from .. import packing
from .base import register
from .conv2d import Conv2d
from .linear import Linear


class PackedMixin:
    onnx_ops = ()
    made_by = "passes/sparsify.py, from a layer of 4 or fewer weight bits"
    runtime_files = ("ec_packed",)
    int8_only = True  # the packed kernels take int8 activations

    def overwrite_orders(self, graph):
        """The packed kernels read every input channel for each output channel: no overwriting."""
        return None

    @property
    def bits(self) -> int:
        return int(self.qattrs["weight_bits"])

    def packed(self) -> np.ndarray:
        return packing.pack(self.qparams["weight"], self.bits)

    def stored_arrays(self) -> list[np.ndarray]:
        return [self.packed()] + [v for k, v in self.qparams.items() if k != "weight"]

    def describe(self) -> str:
        return f"{super().describe()} packed"

    def scratch_bytes(self, graph) -> int:
        return 0  # the packed kernels need no working memory

    def _packed_args(self, em) -> str:
        return f"{em.const_array(f'{self.name}_weight', 'uint8_t', self.packed())}, {packing.field_bits(self.bits)}"


@register
class PackedLinear(PackedMixin, Linear):
    op_type = "PackedLinear"

    def emit_c(self, em) -> None:
        _, b, s, clamp = self.emit_requant_args(em, emit_weight=False)
        out_f, in_f = self.weight_shape
        em.call(f"ec_linear_packed_s8({em.buffer(self.inputs[0])}, {in_f}, {self._packed_args(em)}, {b}, {s}, "
                f"{out_f}, {em.buffer(self.outputs[0])}, {clamp})")


@register
class PackedConv2d(PackedMixin, Conv2d):
    op_type = "PackedConv2d"

    def emit_c(self, em) -> None:
        _, b, s, clamp = self.emit_requant_args(em, emit_weight=False)
        x, kernel, y = self.c_geometry(em)
        em.call(f"ec_conv2d_packed_s8({x}, {self._packed_args(em)}, {b}, {s}, {kernel}, {y}, {clamp})")

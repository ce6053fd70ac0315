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

from .. import packing, sparse_format
from ..ir import Graph
from .base import register
from .conv2d import Conv2d
from .dual_linear import DualLinear
from .gated_linear import GatedDualLinear
from .linear import Linear

_C_TYPES = {np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t", np.dtype(np.int8): "int8_t"}
DESCRIPTOR_WORDS = 8  # sizeof(ec_weights_s8) / 4 on Cortex-M (runtime_c/ec_sparse.h)


class SparseMixin:
    onnx_ops = ()
    made_by = "passes/sparsify.py, from a layer whose weights are sparse"
    runtime_files = ("ec_sparse",)
    int8_only = True  # the sparse kernels take int8 activations

    def overwrite_orders(self, graph):
        """The sparse kernels read every input channel for each output channel: no overwriting."""
        return None

    def encoded(self) -> sparse_format.Encoded:
        w = self.qparams["weight"]
        enc = (sparse_format.encode_bitmap(w) if self.attrs["sparse_format"] == "bitmap"
               else sparse_format.encode_delta(w))
        return enc

    def stored_arrays(self) -> list[np.ndarray]:
        return list(self.encoded().arrays.values()) + [v for k, v in self.qparams.items() if k != "weight"]

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


class CompressedGateMixin:
    """A recurrent gate's two matrices, weight_a (W) and weight_b (U), each in its own storage (attrs
    format_a, format_b: dense | bitmap | delta | packed; packed: 4 or fewer bits, packing.py's layout),
    given to the kernel as ec_weights_s8 descriptors (runtime_c/ec_sparse.h).  Every storage decodes to
    the same int8 weights, so the kernel adds the same products as the dense one."""

    made_by = "passes/sparsify.py, from a recurrent gate whose weights are sparse or of 4 or fewer bits"
    runtime_files = ("ec_sparse", "ec_fast")  # ec_fast.h: the DSP path of the 4-bit packed rows

    def storage(self, key: str) -> str:
        return self.attrs[f"format_{key[-1]}"]

    def _encoded(self, key: str):
        fmt = self.storage(key)
        w = self.qparams[key]
        if fmt in ("dense", "packed"):
            return None
        return sparse_format.encode_bitmap(w) if fmt == "bitmap" else sparse_format.encode_delta(w)

    def _stored_weight(self, key: str) -> list[np.ndarray]:
        enc = self._encoded(key)
        if enc is not None:
            return list(enc.arrays.values())
        if self.storage(key) == "packed":
            return [packing.pack(self.qparams[key], int(self.qattrs["weight_bits"]))]
        return [self.qparams[key]]

    def stored_arrays(self) -> list[np.ndarray]:
        arrays = [v for k, v in self.qparams.items() if not k.startswith("weight")]
        for key in ("weight_a", "weight_b"):
            # its ec_weights_s8 in flash too: 8 words on a 32-bit core (format, 6 pointers, field_bits)
            arrays += self._stored_weight(key) + [np.zeros(DESCRIPTOR_WORDS, np.uint32)]
        return arrays

    def describe(self) -> str:
        return f"{super().describe()} {self.attrs['format_a']}/{self.attrs['format_b']}"

    def _descriptor(self, em, key: str) -> str:
        """&NAME_KEY_desc: the ec_weights_s8 of one matrix (format, dense, mask, counts, gaps, values,
        packed, field_bits; every field written, -Wextra warns of missing ones)."""
        fmt, enc = self.storage(key), self._encoded(key)
        fields = [f"EC_{fmt.upper()}"] + ["0"] * 6 + ["0"]
        if fmt == "dense":
            fields[1] = em.const_array(f"{self.name}_{key}", "int8_t", self.qparams[key])
        elif fmt == "packed":
            bits = int(self.qattrs["weight_bits"])
            fields[6] = em.const_array(f"{self.name}_{key}", "uint8_t", packing.pack(self.qparams[key], bits))
            fields[7] = str(packing.field_bits(bits))
        else:
            arrays = {k: em.const_array(f"{self.name}_{key}_{k}", _C_TYPES[v.dtype], v) for k, v in enc.arrays.items()}
            slot = {"mask": 2, "counts": 3, "gaps": 4, "values": 5}
            for k, name in arrays.items():
                fields[slot[k]] = name
        return "&" + em.const_struct(f"{self.name}_{key}_desc", "ec_weights_s8", "{" + ", ".join(fields) + "}")


@register
class SparseDualLinear(CompressedGateMixin, DualLinear):
    """A recurrent gate's W x + U h with W and/or U stored sparse or packed; ec_dual_linear_sparse_s8
    adds the same products as the dense kernel."""

    op_type = "SparseDualLinear"

    def emit_c(self, em, lut=None) -> None:
        q = self.qattrs
        (o, da), (_, db) = self._shape("weight_a"), self._shape("weight_b")
        wa, wb = self._descriptor(em, "weight_a"), self._descriptor(em, "weight_b")
        b = em.const_array(f"{self.name}_bias", "int32_t", self.qparams["bias"])
        a_in, b_in = (em.buffer(t) for t in self.inputs)
        em.call(f"ec_dual_linear_sparse_s8({a_in}, {da}, {wa}, {q['down_a']}, {b_in}, {db}, {wb}, {q['down_b']}, {b}, "
                f"{o}, {q['shift_out']}, {em.buffer(self.outputs[0])}, {q['act_min']}, {q['act_max']})")


@register
class SparseGatedDualLinear(CompressedGateMixin, GatedDualLinear):
    """A GRU's n gate, W x + b_in + r (U h + b_hn), with W and/or U stored sparse or packed;
    ec_gated_linear_sparse_s8 adds the same products and rounds as ec_gated_linear_s8."""

    op_type = "SparseGatedDualLinear"

    def emit_c(self, em, lut=None) -> None:
        q = self.qattrs
        (o, da), (_, db) = self._shape("weight_a"), self._shape("weight_b")
        wa, wb = self._descriptor(em, "weight_a"), self._descriptor(em, "weight_b")
        ba, bb = (em.const_array(f"{self.name}_{key}", "int32_t", self.qparams[key]) for key in ("bias_a", "bias_b"))
        a_in, b_in, g_in = (em.buffer(t) for t in self.inputs)
        em.call(f"ec_gated_linear_sparse_s8({a_in}, {da}, {wa}, {q['down_a']}, {ba}, {b_in}, {db}, {wb}, {bb}, "
                f"{q['shift_b']}, {g_in}, {q['down_p']}, {o}, {q['shift_out']}, {em.buffer(self.outputs[0])}, "
                f"{q['act_min']}, {q['act_max']})")

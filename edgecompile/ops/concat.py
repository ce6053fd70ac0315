"""Concat along one axis (SqueezeNet's fire modules join branches on channels).

Each branch is computed in its own calibrated Q-format; only at the join is a
branch with more frac bits than the output rounded down to it (rule 2), so no
branch is forced onto a coarse format before it is computed (the accuracy
collapse of tools that do that).  The output format is the coarsest branch
format, which represents every branch without clipping.

With zero points (numerics.py) each branch's value q - z_in is shifted and the output's z added:
    y = sat(align(q - z_in, -(f_in - f_out)) + z_out)
A signed output of a branch with a zero point takes one frac bit fewer (its codes span 2^bits
values); an output with a zero point covers its calibrated range, the union of the branches', at
the coarsest branch format or coarser, and saturates what a branch holds beyond it.
attrs: axis (without the batch axis).  C kernel: ec_concat_part_s8, one call per branch.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from .base import Op, register


@register
class Concat(Op):
    op_type = "Concat"
    onnx_ops = ("Concat",)
    runtime_files = ("ec_layout",)

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        axis = self.attrs["axis"]
        shapes = [graph.shape(t) for t in self.inputs]
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != axis):
                raise ValueError(f"concat {self.name}: shapes {shapes} differ outside axis {axis}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def describe(self) -> str:
        return f"axis {self.attrs['axis']}, {len(self.inputs)} inputs"

    def run_float(self, *xs: np.ndarray) -> np.ndarray:
        return np.concatenate(xs, axis=self.attrs["axis"] + 1)

    def quantize(self, graph: Graph, options) -> None:
        y = graph.tensors[self.outputs[0]]
        y.bits = max(y.bits, *(graph.tensors[t].bits for t in self.inputs))
        xs = [graph.tensors[t] for t in self.inputs]
        own = (options.zero_point_ranges or {}).get(y.name)
        chosen = y.frac_bits  # its own calibrated format (quantize_graph), for the union of the branches
        # the finest format that holds every branch (a narrower branch has spare bits in a wider output)
        y.frac_bits = min(x.frac_bits + y.bits - x.bits - (x.zero_point != 0 and own is None) for x in xs)
        if own is not None:  # branches with different zero points may together span more codes
            y.frac_bits = min(y.frac_bits, chosen)
            options.refit_zero_point(y)
        self.qattrs = {"shifts": [x.frac_bits - y.frac_bits for x in xs],
                       "zeros": [int(x.zero_point) for x in xs], "zero_y": int(y.zero_point)}

    def run_int(self, graph: Graph, *qs: np.ndarray) -> np.ndarray:
        zeros, zy = self.qattrs.get("zeros", [0] * len(qs)), self.qattrs.get("zero_y", 0)
        lo, hi = numerics.qrange(graph.tensors[self.outputs[0]].bits)
        parts = [numerics.saturate(numerics.align(np.asarray(q, np.int64) - z, -s) + zy, lo, hi)
                 for q, s, z in zip(qs, self.qattrs["shifts"], zeros)]
        return np.concatenate(parts, axis=self.attrs["axis"] + 1)

    def qat_forward(self, model, *xs):
        import torch

        from .qat_support import align

        return torch.cat([align(x, -s) for x, s in zip(xs, self.qattrs["shifts"])], dim=self.attrs["axis"] + 1)

    def formats(self, graph: Graph) -> str:
        fs = ",".join(self.format_of(graph, t) for t in self.inputs)
        return f"x:{fs} y:{self.format_of(graph, self.outputs[0])}"

    def emit_c(self, em) -> None:
        axis = self.attrs["axis"]
        out_shape = em.graph.shape(self.outputs[0])
        outer = int(np.prod(out_shape[:axis]))
        tail = int(np.prod(out_shape[axis + 1:]))
        out_inner = out_shape[axis] * tail
        offset = 0
        wide = self.is_wide(em.graph)
        out_bytes = em.element_bytes(self.outputs[0])
        zeros = self.qattrs.get("zeros", [0] * len(self.inputs))
        for t, shift, zero in zip(self.inputs, self.qattrs["shifts"], zeros):
            inner = em.graph.shape(t)[axis] * tail
            out = f"{em.buffer(self.outputs[0])} + {offset * out_bytes}"
            if wide:
                em.call(f"ec_concat_part_any({em.buffer(t)}, {em.element_bytes(t)}, {out}, {out_bytes}, {outer}, "
                        f"{inner}, {out_inner}, {shift})")
            else:
                em.call(f"ec_concat_part_s8({em.buffer(t)}, {out}, {outer}, {inner}, {out_inner}, {shift}, "
                        f"{zero}, {self.qattrs.get('zero_y', 0)})")
            offset += inner

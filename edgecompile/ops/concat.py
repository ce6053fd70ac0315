"""Concat along one axis (SqueezeNet's fire modules join branches on channels).

Each branch is computed in its own calibrated Q-format; only at the join is a
branch with more frac bits than the output rounded down to it (rule 2), so no
branch is forced onto a coarse format before it is computed (the accuracy
collapse of tools that do that).  The output format is the coarsest branch
format, which represents every branch without clipping.
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
        # the finest format that holds every branch (a narrower branch has spare bits in a wider output)
        y.frac_bits = min(graph.tensors[t].frac_bits + y.bits - graph.tensors[t].bits for t in self.inputs)
        self.qattrs = {"shifts": [graph.tensors[t].frac_bits - y.frac_bits for t in self.inputs]}

    def run_int(self, graph: Graph, *qs: np.ndarray) -> np.ndarray:
        parts = [numerics.align(q, -s) for q, s in zip(qs, self.qattrs["shifts"])]
        return np.concatenate(parts, axis=self.attrs["axis"] + 1)

    def formats(self, graph: Graph) -> str:
        fs = ",".join(str(graph.tensors[t].frac_bits) for t in self.inputs)
        return f"x:{fs} y:{graph.tensors[self.outputs[0]].frac_bits}"

    def emit_c(self, em) -> None:
        axis = self.attrs["axis"]
        out_shape = em.graph.shape(self.outputs[0])
        outer = int(np.prod(out_shape[:axis]))
        tail = int(np.prod(out_shape[axis + 1:]))
        out_inner = out_shape[axis] * tail
        offset = 0
        wide = self.is_wide(em.graph)
        out_bytes = em.element_bytes(self.outputs[0])
        for t, shift in zip(self.inputs, self.qattrs["shifts"]):
            inner = em.graph.shape(t)[axis] * tail
            out = f"{em.buffer(self.outputs[0])} + {offset * out_bytes}"
            if wide:
                em.call(f"ec_concat_part_any({em.buffer(t)}, {em.element_bytes(t)}, {out}, {out_bytes}, {outer}, "
                        f"{inner}, {out_inner}, {shift})")
            else:
                em.call(f"ec_concat_part_s8({em.buffer(t)}, {out}, {outer}, {inner}, {out_inner}, {shift})")
            offset += inner

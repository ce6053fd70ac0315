"""Linear: y = W x + b over the last axis (a flattened feature vector, or each of several).

params: weight (out, in), bias (out).  attrs: act (fused clamp).
C kernel: ec_linear_fast_s8 in runtime_c/ec_linear_fast.c (ec_linear_fast_s8_s16 for an int16
output, a model's logits), bit-exact with the reference ec_linear_s8 / ec_linear_any in
runtime_c/ec_linear.c, which also serves int16 inputs.  On a (..., in) input it runs once per vector.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from . import activation
from .base import register
from .weighted import WeightedOp, exact_integer_products


@register
class Linear(WeightedOp):
    op_type = "Linear"
    onnx_ops = ("Gemm", "MatMul")
    runtime_files = ("ec_linear_fast", "ec_linear_mve", "ec_fast")

    channel_axis = -1

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        shape = graph.shape(self.inputs[0])
        out_f, in_f = self.weight_shape
        if not shape or shape[-1] != in_f:
            raise ValueError(f"linear {self.name}: expects vectors of {in_f} features, input has shape {shape}")
        return tuple(shape[:-1]) + (out_f,)

    def describe(self) -> str:
        out_f, in_f = self.weight_shape
        text = f"{in_f}->{out_f}"
        return text + activation.describe(self.attrs.get("act"))

    def macs(self, graph: Graph) -> int:
        return int(np.prod(self.weight_shape)) * int(np.prod(graph.shape(self.inputs[0])[:-1]))

    def run_float(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, dtype=np.float64) @ np.asarray(self.params["weight"], dtype=np.float64).T
        if "bias" in self.params:
            y = y + np.asarray(self.params["bias"], dtype=np.float64)
        return self.run_float_act(y)

    def qat_products(self, x, w_int):
        return x @ w_int.T

    def accumulate(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        w = self.qparams["weight"]
        return exact_integer_products(lambda x, w: x @ w.T, x_q, w, w)

    def float_products(self, graph: Graph, x_q: np.ndarray, w: np.ndarray, dtype) -> np.ndarray:
        return x_q.astype(dtype) @ w.astype(dtype).T

    def emit_c(self, em) -> None:
        from .fast_kernels import LINEAR_GROUP, LINEAR_WORD_ORDER, weighted_args
        xb, yb = em.element_bytes(self.inputs[0]), em.element_bytes(self.outputs[0])
        kernel = {(1, 1): "ec_linear_fast_s8", (1, 2): "ec_linear_fast_s8_s16"}.get((xb, yb))  # else _any
        if kernel is None:
            em.runtime.add("ec_linear")
            w, b, s, requant = self.emit_requant_args(em)
        else:
            w, b, s, requant = weighted_args(self, em, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER)
        out_f, in_f = self.weight_shape
        rows = int(np.prod(em.graph.shape(self.inputs[0])[:-1]))
        x, y = em.buffer(self.inputs[0]), em.buffer(self.outputs[0])
        if rows > 1:  # the same layer on each of several vectors (e.g. every time step)
            r = f"r_{em.unique('r')}"
            em.raw(f"for (int {r} = 0; {r} < {rows}; ++{r}) {{")
            x, y = f"{x} + {r} * {in_f * xb}", f"{y} + {r} * {out_f * yb}"
        if kernel is None:
            em.call(f"ec_linear_any({x}, {xb}, {in_f}, {w}, {b}, {s}, {out_f}, {y}, {yb}, {requant})")
        else:
            em.call(f"{kernel}({x}, {in_f}, {w}, {b}, {s}, {out_f}, {y}, {requant})")
        if rows > 1:
            em.raw("}")

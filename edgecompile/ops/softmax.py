"""Softmax over the last axis with an exact integer rule (see runtime_c/ec_softmax.h):
a 256-entry exp table indexed by max(x) - x_i, an int32 sum and a rounded division.
The output always has 7 frac bits (probabilities).  C kernel: ec_softmax_s8.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from .base import Op, register

OUT_FRAC_BITS = 7
EXP_FRAC_BITS = 15


@register
class Softmax(Op):
    op_type = "Softmax"
    onnx_ops = ("Softmax",)
    runtime_files = ("ec_softmax",)
    int8_only = True

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        shape = graph.shape(self.inputs[0])
        if shape[-1] >= 32768:
            raise ValueError(f"softmax {self.name}: {shape[-1]} classes is more than the int32 sum allows")
        return shape

    def run_float(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def quantize(self, graph: Graph, options) -> None:
        x = graph.tensors[self.inputs[0]]
        graph.tensors[self.outputs[0]].frac_bits = OUT_FRAC_BITS
        span = 1 << x.bits  # max(x) - x_i ranges over 0 .. 2^bits - 1
        d = np.arange(span)
        table = numerics.quantize_float(np.exp(-numerics.dequantize(d, x.frac_bits)), EXP_FRAC_BITS, 0, 65535)
        self.qparams = {"exp_table": table.astype(np.uint16)}

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        x = np.asarray(x_q, np.int64)
        e = self.qparams["exp_table"].astype(np.int64)[x.max(axis=-1, keepdims=True) - x]
        total = e.sum(axis=-1, keepdims=True)
        return numerics.saturate(numerics.round_half_up_div(e << OUT_FRAC_BITS, total), -128, 127)

    def qat_forward(self, model, x):
        """Forward: the exact rule of run_int; backward: the gradient of 128 * softmax."""
        import torch

        from .qat_support import Surrogate, as_tensor

        exp_table = as_tensor(self.qparams["exp_table"])
        f_in = model.graph.tensors[self.inputs[0]].frac_bits

        def exact(x):
            e = exp_table[(x.max(dim=-1, keepdim=True).values - x).long()]
            total = e.sum(dim=-1, keepdim=True)
            return torch.clamp(torch.div(2 * e * 128 + total, 2 * total, rounding_mode="floor"), -128, 127)

        def gradient(x, grad):
            with torch.enable_grad():
                real = (x.detach() * 2.0 ** -f_in).requires_grad_(True)
                p = torch.softmax(real, dim=-1) * 128.0
                (g,) = torch.autograd.grad(p, real, grad)
            return g * 2.0 ** -f_in

        return Surrogate.apply(x, exact, gradient)

    def emit_c(self, em) -> None:
        shape = em.graph.shape(self.inputs[0])
        table = em.const_array(f"{self.name}_exp", "uint16_t", self.qparams["exp_table"])
        em.call(f"ec_softmax_s8({em.buffer(self.inputs[0])}, {em.buffer(self.outputs[0])}, "
                f"{int(np.prod(shape[:-1]))}, {shape[-1]}, {table})")

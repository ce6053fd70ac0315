"""Nonlinear elementwise activations as exact 256-entry tables: h-swish, h-sigmoid,
sigmoid, tanh, SiLU.

An int8 input has only 256 values, so the integer activation is defined as a
table computed at compile time:
    table[q + 128] = sat(round_half_up(fn((q - z_in) * 2^-f_in) * 2^f_out) + z_out)   (rule 4)
The simulator and the C index the same table, so they agree by construction,
and the only error is the output rounding.  The zero points (numerics.py) live in the
table: an h-swish output, never below -0.375, may give most of its codes to the positive side.
The output gets its own calibrated format; the op may run in place.  C kernel: ec_lut_s8 in runtime_c/ec_elementwise.c.
attrs: fn (one of FUNCTIONS), and for hardsigmoid alpha, beta (ONNX's HardSigmoid).
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..ir import Graph
from .base import Op, register


def _hardsigmoid(x, alpha=1.0 / 6.0, beta=0.5):
    return np.clip(alpha * x + beta, 0.0, 1.0)


FUNCTIONS = {  # name -> f(x, **attrs)
    "hardswish": lambda x: x * _hardsigmoid(x),
    "hardsigmoid": _hardsigmoid,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": lambda x: np.tanh(x),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


@register
class Lut(Op):
    op_type = "Lut"
    onnx_ops = ("HardSwish", "HardSigmoid", "Sigmoid", "Tanh")
    in_place = True
    same_position = True
    runtime_files = ("ec_elementwise",)
    int8_only = True  # a 256-entry table indexed by an int8 code

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        return graph.shape(self.inputs[0])

    def describe(self) -> str:
        return f"{self.attrs['fn']} (table)"

    def macs(self, graph: Graph) -> int:
        return int(np.prod(graph.shape(self.inputs[0])))

    def function(self, x: np.ndarray) -> np.ndarray:
        extra = {k: v for k, v in self.attrs.items() if k != "fn"}
        # exp(-x) overflows to inf for x below about -709: 1 / (1 + inf) is then the exact limit, 0
        with np.errstate(over="ignore"):
            return FUNCTIONS[self.attrs["fn"]](np.asarray(x, dtype=np.float64), **extra)

    def run_float(self, x: np.ndarray) -> np.ndarray:
        return self.function(x)

    def quantize(self, graph: Graph, options) -> None:
        x = graph.tensors[self.inputs[0]]
        y = graph.tensors[self.outputs[0]]
        lo, hi = numerics.qrange(x.bits)
        q = np.arange(lo, hi + 1)
        real = self.function(numerics.dequantize(q, x.frac_bits, x.zero_point))
        ylo, yhi = numerics.qrange(y.bits)
        z = int(y.zero_point)
        self.qparams = {"table": (numerics.quantize_float(real, y.frac_bits, ylo - z, yhi - z) + z).astype(np.int8)}

    def run_int(self, graph: Graph, x_q: np.ndarray) -> np.ndarray:
        lo, _ = numerics.qrange(graph.tensors[self.inputs[0]].bits)
        return self.qparams["table"].astype(np.int64)[np.asarray(x_q, dtype=np.int64) - lo]

    def torch_function(self):
        """The tabulated function in torch, for the QAT gradient."""
        import torch
        import torch.nn.functional as F

        named = {"hardswish": F.hardswish, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": F.silu}
        if self.attrs["fn"] in named:
            return named[self.attrs["fn"]]
        alpha, beta = self.attrs.get("alpha", 1 / 6), self.attrs.get("beta", 0.5)  # hardsigmoid, ONNX's alpha, beta
        return lambda v: torch.clamp(alpha * v + beta, 0.0, 1.0)

    def qat_forward(self, model, x):
        """Forward: the exact table; backward: the derivative of the function it tabulates."""
        import torch

        from .qat_support import Surrogate, as_tensor

        table = as_tensor(self.qparams["table"])
        fn = self.torch_function()
        f_in, f_out = (model.graph.tensors[t].frac_bits for t in (self.inputs[0], self.outputs[0]))

        def gradient(x, grad):
            with torch.enable_grad():
                real = (x.detach() * 2.0 ** -f_in).requires_grad_(True)
                (slope,) = torch.autograd.grad(fn(real).sum(), real)
            return grad * slope * 2.0 ** (f_out - f_in)

        return Surrogate.apply(x, lambda x: table[(x + 128).long()], gradient)

    def emit_c(self, em) -> None:
        table = em.const_array(f"{self.name}_table", "int8_t", self.qparams["table"])
        size = int(np.prod(em.graph.shape(self.inputs[0])))
        em.call(f"ec_lut_s8({em.buffer(self.inputs[0])}, {em.buffer(self.outputs[0])}, {size}, {table})")

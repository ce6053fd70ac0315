"""Quantization: choose every tensor's Q-format and every layer's integer parameters.

Activations: f from the calibration range, the largest f that does not clip
the observed [min, max] (min/max calibration).  Ops that preserve the format
(pooling, reshape, standalone ReLU) give their output the input's f, so they
need no requantization.  Weights, biases and shifts: see ops/weighted.py.
Nodes are visited in order and each output's f is fixed just before its
producer is quantized, so a producer may still lower it (a legal shift wins
over precision) before any consumer reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import numerics
from ..errors import EdgeCompileError
from ..ir import Graph


@dataclass
class QuantOptions:
    weight_bits: int = 8
    layer_bits: dict[str, int] = field(default_factory=dict)
    act_bits: int = 8

    def weight_bits_for(self, layer: str) -> int:
        return self.layer_bits.get(layer, self.weight_bits)


@dataclass
class TensorRange:
    lo: float
    hi: float

    @property
    def max_abs(self) -> float:
        return max(abs(self.lo), abs(self.hi))


def calibrate(graph: Graph, samples: np.ndarray, batch: int = 256) -> dict[str, TensorRange]:
    """Run the float graph on calibration samples; record each tensor's [min, max]."""
    ranges: dict[str, TensorRange] = {}
    for start in range(0, len(samples), batch):
        env = graph.run_float(samples[start:start + batch], keep_all=True)
        for name, value in env.items():
            lo, hi = float(np.min(value)), float(np.max(value))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise EdgeCompileError(f"tensor '{name}' becomes NaN/Inf on the calibration data: "
                                       "check the model's weights and the calibration inputs")
            r = ranges.get(name)
            ranges[name] = TensorRange(lo, hi) if r is None else TensorRange(min(r.lo, lo), max(r.hi, hi))
    return ranges


def frac_bits_for(r: TensorRange, bits: int) -> int:
    return numerics.frac_bits_for_interval(r.lo, r.hi, bits)


def quantize_graph(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions) -> None:
    for t in graph.tensors.values():
        t.bits = options.act_bits
        t.frac_bits = None
    x = graph.input
    x.frac_bits = frac_bits_for(ranges[x.name], x.bits)
    for node in graph.nodes:
        out = graph.tensors[node.outputs[0]]
        if node.preserves_format:
            out.frac_bits = graph.tensors[node.inputs[0]].frac_bits
        else:
            out.frac_bits = frac_bits_for(ranges[out.name], out.bits)
        node.quantize(graph, options)

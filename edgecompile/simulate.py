"""The integer simulator: the golden model the generated C must match bit for bit.

It runs each node's `run_int` (numpy, int64, the rules of numerics.py) on a
quantized graph, either the one the compiler just built or one read back from
an exported project's manifest.
"""
from __future__ import annotations

import numpy as np

from . import numerics
from .errors import EdgeCompileError
from .ir import Graph


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float model inputs -> int8 (rule 4), exactly as the C helper does it."""
    t = graph.input
    x = np.asarray(x)
    if x.shape[1:] != t.shape:
        if x.shape == t.shape:
            x = x[None]
        else:
            raise EdgeCompileError(f"inputs have shape {x.shape[1:]} per sample; the model expects {t.shape}")
    if not np.all(np.isfinite(x)):
        raise EdgeCompileError("inputs contain NaN or Inf")
    lo, hi = numerics.qrange(t.bits)
    return numerics.quantize_float(x, t.frac_bits, lo, hi).astype(np.int8)


def run_integer(graph: Graph, x_q: np.ndarray, keep_all: bool = False):
    """Integer inference on a batch (N, *input_shape) of int8 inputs."""
    env = evaluate_integer(graph, {graph.inputs[0]: x_q})
    return env if keep_all else env[graph.outputs[0]]


def evaluate_integer(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Integer inference over named inputs (a recurrent cell's body has several): every tensor."""
    env = {name: np.asarray(v, dtype=np.int64) for name, v in inputs.items()}
    for node in graph.nodes:
        y = node.run_int(graph, *[env[t] for t in node.inputs])
        t = graph.tensors[node.outputs[0]]
        lo, hi = numerics.qrange(t.bits)
        # Every kernel saturates; a value outside the type is a simulator bug.
        assert y.size == 0 or (y.min() >= lo and y.max() <= hi), f"{node} produced values outside int{t.bits}"
        env[node.outputs[0]] = y
    return env


def dequantize(graph: Graph, tensor: str, q: np.ndarray) -> np.ndarray:
    return numerics.dequantize(q, graph.tensors[tensor].frac_bits)


def run_dequantized(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float in, float out through the integer model (for accuracy figures)."""
    y_q = run_integer(graph, quantize_input(graph, x))
    return dequantize(graph, graph.outputs[0], y_q)

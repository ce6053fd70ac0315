"""The integer simulator: the golden model the generated C must match bit for bit.

It runs each node's `run_int` (numpy, int64, the rules of numerics.py) on a
quantized graph (Graph.evaluate_int walks the nodes), either the one the compiler
just built or one read back from an exported project's manifest.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import numerics
from .errors import EdgeCompileError
from .ir import Graph


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float model inputs -> int8 (rule 4), exactly as the C helpers do it, each input in its format."""
    shape = graph.sample_shape
    x = np.asarray(x)
    if x.shape[1:] != shape:
        if x.shape == shape:
            x = x[None]
        else:
            raise EdgeCompileError(f"inputs have shape {x.shape[1:]} per sample; the model expects {shape}")
    if not np.all(np.isfinite(x)):
        raise EdgeCompileError("inputs contain NaN or Inf")
    parts = []
    for name, xi in graph.split_inputs(x).items():
        t = graph.tensors[name]
        lo, hi = numerics.qrange(t.bits)
        parts.append(numerics.quantize_float(xi, t.frac_bits, lo, hi).astype(np.int8).reshape(len(x), -1))
    return parts[0].reshape(x.shape) if len(parts) == 1 else np.concatenate(parts, axis=1)


WORKERS = min(2, os.cpu_count() or 1)  # threads that simulate parts of a batch at once
# samples per part: smaller batches run whole.  A thread's part must outweigh its per-node overhead:
# MobileNetV2-tiny's format search (mostly 16-sample runs of the last layers) took 2.3 s with parts
# of 8 samples and 1.5 s whole, while 32 samples still run faster in two parts (78 vs 90-115 ms).
MIN_PART = 16
POOL_NAME = "edgecompile-sim"
_pool: ThreadPoolExecutor | None = None


def batch_parts(graph: Graph, n: int) -> list[slice]:
    """The parts of a batch of n samples that threads may simulate at once: each sample's integer
    inference depends on that sample alone and is exact, so the parts' results, put together, are
    the whole batch's, bit for bit (numpy releases the GIL in its loops).  A graph with a recurrent
    cell, whose op keeps state between calls, runs whole."""
    if WORKERS < 2 or n < 2 * MIN_PART or any(getattr(node, "body", None) is not None for node in graph.nodes):
        return [slice(0, n)]
    step = -(-n // WORKERS)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def map_parts(fn, parts: list):
    """[fn(part) for part in parts], the parts in threads when there are several."""
    global _pool
    if len(parts) == 1 or threading.current_thread().name.startswith(POOL_NAME):  # (no waiting on itself)
        return [fn(part) for part in parts]
    if _pool is None:
        _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=POOL_NAME)
    return list(_pool.map(fn, parts))


OUTPUTS_CACHE_SIZE = 4  # run_integer results kept (the passes and the export ask for some twice)
_outputs: OrderedDict[bytes, np.ndarray] = OrderedDict()
_outputs_lock = threading.Lock()


def run_integer(graph: Graph, x_q: np.ndarray, keep_all: bool = False):
    """Integer inference on a batch (N, *sample_shape) of int8 inputs (see Graph for several).

    The outputs of the last few runs are kept by Graph.content_key (the integer model and x_q):
    range snapping and equalization measure one quantized graph twice, and the export simulates
    the calibration samples it measured; a repeat returns a copy of the same integers."""
    x_q = np.asarray(x_q)
    key = None if keep_all else graph.content_key(x_q, quantized=True)
    with _outputs_lock:
        if key is not None and key in _outputs:
            _outputs.move_to_end(key)
            return _outputs[key].copy()
    parts = batch_parts(graph, len(x_q))
    envs = map_parts(lambda part: graph.evaluate_int(graph.split_inputs(x_q[part])), parts)
    if keep_all:
        return envs[0] if len(envs) == 1 else {t: np.concatenate([env[t] for env in envs]) for t in envs[0]}
    outputs = [graph.join_outputs(env) for env in envs]
    y = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
    if key is not None:
        with _outputs_lock:
            _outputs[key] = np.array(y, copy=True)
            while len(_outputs) > OUTPUTS_CACHE_SIZE:
                _outputs.popitem(last=False)
    return y


def dequantize(graph: Graph, tensor: str, q: np.ndarray) -> np.ndarray:
    t = graph.tensors[tensor]
    return numerics.dequantize(q, t.frac_bits, t.zero_point)


def run_dequantized(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float in, float out through the integer model (for accuracy figures)."""
    y_q = graph.split_outputs(run_integer(graph, quantize_input(graph, x)))
    return graph.join_outputs({t: dequantize(graph, t, q) for t, q in y_q.items()})


def output_error(graph: Graph, x: np.ndarray, reference: np.ndarray) -> float:
    """Squared error of the integer model's (dequantized) outputs on the inputs x against `reference`
    (the float model's): what the passes that keep a change only if it helps compare."""
    return float(np.sum((np.asarray(run_dequantized(graph, x), np.float64) - reference) ** 2))

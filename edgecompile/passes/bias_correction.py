"""Bias correction (--bias-correction): cancel the mean output error that rounding the
weights introduces, measured on the calibration data.

For a layer y = W x + b, the integer layer computes with W_q = W + E (E: the weights'
rounding error, known exactly).  Over the calibration inputs the layer's output is off by
E * mean(x) on average; subtracting that from the bias (rounded into its int32 format)
removes the systematic part of the error.  The inputs are the integer model's own
(dequantized) activations, simulated once before any correction.  It changes only biases,
so everything stays bit-exact; whether it helps is measured (benchmarks/bench_quantization.py).
"""
from __future__ import annotations

import numpy as np

from .. import numerics, simulate
from ..ir import Graph
from ..ops.weighted import WeightedOp


def correct_biases(graph: Graph, calib: np.ndarray) -> int:
    env = simulate.run_integer(graph, simulate.quantize_input(graph, calib), keep_all=True)
    corrected = 0
    for node in graph.nodes:
        if not isinstance(node, WeightedOp):
            continue
        f_in = graph.tensors[node.inputs[0]].frac_bits
        mean_x = simulate.dequantize(graph, node.inputs[0], env[node.inputs[0]]).mean(axis=0, keepdims=True)
        n = node.out_channels
        f_w = np.broadcast_to(np.asarray(node.qattrs["weight_frac_bits"], dtype=np.int64), (n,))
        w_q = node.qparams["weight"].astype(np.float64)
        w_deq = np.ldexp(w_q, -f_w.reshape((n,) + (1,) * (w_q.ndim - 1)))
        error = type(node)(node.name, node.inputs, node.outputs, attrs={**node.attrs, "act": None},
                           params={"weight": w_deq - np.asarray(node.params["weight"], dtype=np.float64)})
        mean_err = error.run_float(mean_x).reshape(n, -1).mean(axis=1)  # E * mean(x), per channel
        delta = numerics.quantize_float(np.ldexp(-mean_err, f_in + f_w), 0, numerics.ACC_MIN, numerics.ACC_MAX)
        bias = node.qparams.get("bias", np.zeros(n, dtype=np.int32)).astype(np.int64) + delta
        node.qparams["bias"] = numerics.saturate(bias, numerics.ACC_MIN, numerics.ACC_MAX).astype(np.int32)
        # keep the int32 proof: recompute the bound with the new biases
        bound = int((np.abs(w_q.reshape(n, -1)).sum(axis=1) * (1 << (graph.tensors[node.inputs[0]].bits - 1))
                     + np.abs(node.qparams["bias"].astype(np.int64))).max())
        assert bound <= numerics.ACC_MAX, f"{node.name}: bias correction would break the int32 bound"
        node.qattrs["acc_bound"] = bound
        corrected += 1
    graph.notes.append(f"bias correction applied to {corrected} layers")
    return corrected

"""Magnitude pruning after training: `--prune fc1=0.5` zeroes the half of fc1's weights
smallest in magnitude.

It runs on the float weights after BatchNorm folding (the weights the C
multiplies by), before calibration, so that the ranges and formats see the
pruned layer.  The zeros are then stored sparse by passes/sparsify.py wherever
that is smaller.  Without fine-tuning this trades accuracy for flash; `fit`
measures how much per layer before it uses it.
"""
from __future__ import annotations

import numpy as np

from ..errors import EdgeCompileError
from ..ir import Graph
from ..ops.weighted import WeightedOp


def parse_prune(values) -> dict[str, float]:
    """`--prune fc1=0.5,conv2=0.75` (or several such items) -> {"fc1": 0.5, "conv2": 0.75}."""
    items = [i.strip() for v in ([values] if isinstance(values, str) else values or ())
             for i in str(v).split(",") if i.strip()]
    out = {}
    for item in items:
        name, _, value = item.rpartition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not name or not 0.0 <= share < 1.0:
            raise EdgeCompileError(f"--prune {item}: expected LAYER=SHARE with SHARE in [0, 1), the share of the "
                                   "layer's weights to set to zero (e.g. fc1=0.5)")
        out[name] = share
    return out


def prunable(graph: Graph) -> list[str]:
    return [n.name for n in graph.nodes if isinstance(n, WeightedOp) and "weight" in n.params]


def prune(graph: Graph, shares: dict[str, float]) -> None:
    names = set(prunable(graph))
    unknown = sorted(set(shares) - names)
    if unknown:
        raise EdgeCompileError(f"--prune names layer(s) {', '.join(unknown)} that have no weights or do not exist "
                               f"(after factorization a layer is LAYER.V and LAYER.U); layers with weights: "
                               f"{', '.join(sorted(names))}")
    for node in graph.nodes:
        share = shares.get(node.name, 0.0)
        if share <= 0.0:
            continue
        w = np.asarray(node.params["weight"], dtype=np.float32)
        count = int(np.floor(share * w.size))
        if count == 0:
            continue
        # A stable sort of the magnitudes: which of several equal weights goes is fixed, so an
        # export repeats exactly.
        order = np.argsort(np.abs(w).reshape(-1), kind="stable")
        pruned = w.reshape(-1).copy()
        pruned[order[:count]] = 0.0
        node.params["weight"] = pruned.reshape(w.shape)

"""Fold inference-mode BatchNorm into the conv/linear layer that feeds it.

BN computes y = a * x + c per channel with a = gamma / sqrt(var + eps) and
c = beta - a * mean.  If x = W z + b comes from a conv/linear layer used only
by the BN, then y = (a W) z + (a b + c): scale each output channel's weights
by a and replace the bias.  Done in float64, before quantization, so the
folded weights are what gets quantized.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import EdgeCompileError
from ..ir import Graph
from ..ops.weighted import WeightedOp


def fold_batchnorm(graph: Graph) -> int:
    folded = 0
    for bn in [n for n in graph.nodes if isinstance(n, ops.BatchNorm)]:
        x = bn.inputs[0]
        prod = graph.producer(x)
        if not isinstance(prod, WeightedOp) or prod.attrs.get("act"):
            what = f"{prod.op_type} '{prod.name}'" if prod is not None else "the model input"
            raise EdgeCompileError(
                f"BatchNorm '{bn.name}' follows {what}, not a conv/linear layer: edgecompile folds each "
                "BatchNorm into the conv or linear right before it. Place it directly after one.")
        if len(graph.consumers(x)) != 1:
            raise EdgeCompileError(f"BatchNorm '{bn.name}': the output of '{prod.name}' is also used elsewhere, "
                                   "so folding would change the other use; place the BatchNorm on its own branch.")
        a, c = bn.scale_and_shift()
        w = np.asarray(prod.params["weight"], dtype=np.float64)
        if a.shape[0] != w.shape[0]:
            raise EdgeCompileError(f"BatchNorm '{bn.name}' has {a.shape[0]} channels but '{prod.name}' "
                                   f"produces {w.shape[0]}")
        b = np.asarray(prod.params.get("bias", np.zeros(w.shape[0])), dtype=np.float64)
        prod.params["weight"] = (w * a.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        prod.params["bias"] = (a * b + c).astype(np.float32)
        # BN's statistics say the normalized output is ~ N(beta, gamma^2) per channel:
        # a range to fall back on when no calibration data is given.
        beta = np.asarray(bn.params["beta"], dtype=np.float64)
        spread = 4.0 * np.abs(np.asarray(bn.params["gamma"], dtype=np.float64))
        prod.attrs["bn_range"] = [float(np.min(beta - spread)), float(np.max(beta + spread))]
        graph.notes.append(f"BatchNorm '{bn.name}' folded into '{prod.name}'")
        graph.remove_node(bn, keep=x)
        folded += 1
    return folded

"""Low-rank factorization of dense layers by truncated SVD (seed 003).

W (out x in) ~= U_r diag(S_r) V_r^T.  The layer becomes two small matmuls,
    t = A x            A = diag(sqrt S_r) V_r^T   (r x in, no bias)
    y = act(B t + b)   B = U_r diag(sqrt S_r)     (out x r)
and W is never rebuilt.  sqrt(S) goes to both factors so that A and B have
similar magnitudes, which suits per-tensor power-of-two weight scales.  t is an
ordinary activation tensor with its own calibrated Q-format.  Factorizing only
pays when r (in + out) < in * out, i.e. r < in*out/(in+out); other layers stay
whole and the report says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..ir import Graph


@dataclass
class FactorizeDecision:
    layer: str
    in_features: int
    out_features: int
    rank: int
    applied: bool
    reason: str
    weights_before: int  # weight count (biases excluded: they are kept either way)
    weights_after: int
    energy: float  # share of sum(sigma^2) the kept singular values explain


def max_useful_rank(in_f: int, out_f: int) -> float:
    return in_f * out_f / (in_f + out_f)


def factorize_linear_layers(graph: Graph, rank: int) -> list[FactorizeDecision]:
    decisions = []
    for node in [n for n in graph.nodes if isinstance(n, ops.Linear)]:
        w = np.asarray(node.params["weight"], dtype=np.float64)
        out_f, in_f = w.shape
        limit = max_useful_rank(in_f, out_f)
        if rank >= limit:
            decisions.append(FactorizeDecision(node.name, in_f, out_f, rank, False,
                                               f"rank {rank} >= {limit:.1f} = in*out/(in+out): no saving",
                                               w.size, w.size, 1.0))
            continue
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        root = np.sqrt(s[:rank])
        a = root[:, None] * vt[:rank]
        b = u[:, :rank] * root[None, :]
        energy = float(np.sum(s[:rank] ** 2) / max(np.sum(s ** 2), 1e-300))
        mid = graph.unique_tensor_name(f"{node.outputs[0]}_rank{rank}")
        graph.add_tensor(mid, (rank,))
        first = ops.Linear(f"{node.name}.V", [node.inputs[0]], [mid], attrs={"act": None},
                           params={"weight": a.astype(np.float32)})
        second = ops.Linear(f"{node.name}.U", [mid], list(node.outputs), attrs={"act": node.attrs.get("act")},
                            params={k: v for k, v in {"weight": b.astype(np.float32),
                                                      "bias": node.params.get("bias")}.items() if v is not None})
        i = graph.nodes.index(node)
        graph.nodes[i:i + 1] = [first, second]
        decisions.append(FactorizeDecision(node.name, in_f, out_f, rank, True,
                                           f"{w.size} -> {a.size + b.size} weights", w.size, a.size + b.size,
                                           energy))
    return decisions

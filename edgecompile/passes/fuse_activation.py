"""Fuse a ReLU into the conv/linear before it: it becomes that layer's output clamp."""
from __future__ import annotations

from .. import ops
from ..ir import Graph
from ..ops.weighted import WeightedOp


def fuse_activations(graph: Graph) -> int:
    fused = 0
    for relu in [n for n in graph.nodes if isinstance(n, ops.Relu)]:
        x = relu.inputs[0]
        prod = graph.producer(x)
        if isinstance(prod, WeightedOp) and not prod.attrs.get("act") and len(graph.consumers(x)) == 1 \
                and x not in graph.outputs:
            prod.fuse_activation("relu")
            graph.nodes.remove(relu)
            out = relu.outputs[0]
            graph.tensors.pop(x)
            # The layer now writes the ReLU's output tensor directly.
            prod.outputs = [out]
            fused += 1
    return fused

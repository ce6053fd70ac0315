"""Fuse clamp activations (ReLU, ReLU6, Clip) into the layer before them: they become
that layer's output saturation bounds.  Layers that can take one define
`fuse_activation` (conv, linear, add)."""
from __future__ import annotations

from .. import ops
from ..ir import Graph
from ..ops import activation


def clamp_of(node) -> dict | None:
    if isinstance(node, ops.Relu):
        return activation.RELU
    if isinstance(node, ops.Clip):
        return node.attrs["act"]
    return None


def fuse_activations(graph: Graph) -> int:
    fused = 0
    for node in list(graph.nodes):
        act = clamp_of(node)
        if act is None:
            continue
        x = node.inputs[0]
        prod = graph.producer(x)
        if prod is None or not hasattr(prod, "fuse_activation") or len(graph.consumers(x)) != 1 \
                or x in graph.outputs:
            continue
        prod.fuse_activation(act)
        graph.nodes.remove(node)
        out = node.outputs[0]
        graph.tensors.pop(x)
        prod.outputs = [out]  # the layer now writes the activation's output directly
        fused += 1
    return fused

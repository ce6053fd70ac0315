"""Remove what inference does not need: Identity/Dropout nodes and dead nodes."""
from __future__ import annotations

from .. import ops
from ..ir import Graph


def remove_identities(graph: Graph) -> None:
    for node in [n for n in graph.nodes if isinstance(n, ops.Identity)]:
        graph.remove_node(node, keep=node.inputs[0])
    remove_dead_nodes(graph)


def remove_dead_nodes(graph: Graph) -> None:
    """Drop nodes whose results never reach the output."""
    live = set(graph.outputs)
    for node in reversed(list(graph.nodes)):
        if any(t in live for t in node.outputs):
            live.update(node.inputs)
        else:
            graph.nodes.remove(node)
    graph.prune_tensors()

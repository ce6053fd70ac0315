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


def drop_final_softmax(graph: Graph) -> bool:
    """--drop-softmax: remove a Softmax that produces the model's output (argmax is unchanged;
    the C then returns the logits)."""
    out = graph.outputs[0]
    node = graph.producer(out)
    if not isinstance(node, ops.Softmax):
        return False
    graph.nodes.remove(node)
    graph.tensors.pop(out)
    graph.rename_tensor(node.inputs[0], out)
    graph.notes.append(f"final Softmax '{node.name}' dropped (--drop-softmax): outputs are logits, argmax unchanged")
    return True

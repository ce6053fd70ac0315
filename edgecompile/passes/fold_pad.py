"""Fold an explicit zero Pad into the convolution that reads it (exporters of TensorFlow
models write Pad + Conv with VALID padding for SAME convolutions)."""
from __future__ import annotations

from .. import ops
from ..errors import EdgeCompileError
from ..ir import Graph


def fold_pads(graph: Graph) -> int:
    folded = 0
    for pad in [n for n in graph.nodes if isinstance(n, ops.Pad)]:
        users = graph.consumers(pad.outputs[0])
        if len(users) != 1 or not isinstance(users[0], ops.Conv2d) or pad.outputs[0] in graph.outputs:
            raise EdgeCompileError(f"Pad '{pad.name}' is not followed by a convolution only: edgecompile folds "
                                   "zero padding into the convolution after it")
        conv = users[0]
        conv.attrs["pads"] = [a + b for a, b in zip(conv.attrs["pads"], pad.attrs["pads"])]
        graph.remove_node(pad, keep=pad.inputs[0])
        graph.notes.append(f"Pad '{pad.name}' folded into '{conv.name}'")
        folded += 1
    return folded

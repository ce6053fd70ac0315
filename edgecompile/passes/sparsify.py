"""Choose how each layer's weights are stored: sparse where pruning makes that smaller
(--sparse auto|on|off), else packed two or four per byte when they have 4 bits or fewer,
else one per byte.

Runs after quantization, on the integer weights: a weight that quantizes to 0
is as free as a pruned one.  The layer keeps its arithmetic (and the simulator
its kernel); only its class changes to the sparse variant, which stores and
reads the weights differently (see sparse_format.py for the formats).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops, packing, sparse_format
from ..errors import EdgeCompileError
from ..ir import Graph
from ..ops.packed import PackedConv2d, PackedLinear
from ..ops.sparse import DESCRIPTOR_WORDS, SparseConv2d, SparseDualLinear, SparseGatedDualLinear, SparseLinear

SPARSE_CLASS = {ops.Linear: SparseLinear, ops.Conv2d: SparseConv2d}
PACKED_CLASS = {ops.Linear: PackedLinear, ops.Conv2d: PackedConv2d}
COMPRESSED_GATE_CLASS = {ops.DualLinear: SparseDualLinear, ops.GatedDualLinear: SparseGatedDualLinear}
MODES = ("auto", "on", "off")


@dataclass
class SparsityDecision:
    layer: str
    density: float
    format: str  # dense | bitmap | delta
    dense_bytes: int  # weights stored densely
    stored_bytes: int  # weights as stored


def sparsify(graph: Graph, mode: str) -> list[SparsityDecision]:
    if mode not in MODES:
        raise EdgeCompileError(f"--sparse {mode}: choose one of {', '.join(MODES)}")
    decisions = []
    for i, node in enumerate(graph.nodes):
        if getattr(node, "body", None) is not None:  # a recurrent cell's W and U
            decisions += sparsify(node.body, mode)
            continue
        if node.is_wide(graph):
            continue  # the sparse and packed kernels read and write int8 activations only
        if type(node) in COMPRESSED_GATE_CLASS:
            decisions += _sparsify_gate(graph, i, node, mode)
            continue
        if not has_compressed_kernels(graph, node):
            continue
        cls = SPARSE_CLASS[type(node)]
        w = node.qparams["weight"]
        bits = int(node.qattrs["weight_bits"])
        dense = int(packing.pack(w, bits).size)  # packed below 5 bits: the baseline sparse must beat
        enc = sparse_format.choose(w, mode, dense)
        decisions.append(SparsityDecision(node.name, sparse_format.density(w),
                                          "dense" if enc is None else enc.format, dense,
                                          dense if enc is None else int(enc.nbytes)))
        if enc is not None:
            graph.nodes[i] = cls(node.name, node.inputs, node.outputs, attrs={**node.attrs, "sparse_format": enc.format},
                                 params=node.params, qattrs=node.qattrs, qparams=node.qparams)
        elif packing.field_bits(bits) < 8:
            graph.nodes[i] = PACKED_CLASS[type(node)](node.name, node.inputs, node.outputs, attrs=node.attrs,
                                                      params=node.params, qattrs=node.qattrs, qparams=node.qparams)
    return decisions


def has_compressed_kernels(graph: Graph, node) -> bool:
    """The sparse and packed kernels cover ungrouped, undilated Conv2d and Linear layers on one
    vector (exact types: the sparse classes are subclasses)."""
    return (type(node) in SPARSE_CLASS and node.attrs.get("groups", 1) == 1
            and tuple(node.attrs.get("dilation", (1, 1))) == (1, 1)
            and not (isinstance(node, ops.Linear) and len(graph.shape(node.inputs[0])) > 1))


def compressed_layers(graph: Graph, nodes, mode: str, weight_bits_for) -> set[str]:
    """Those of `nodes` whose weights sparsify will store sparse or packed if their activations
    stay int8, judged before quantization from their weight bits and their float weights' zeros
    (pruned weights; one that quantizes to 0 can still tip a layer afterwards).  --output-bits
    auto keeps their outputs int8, so that a compressed last layer stays compressed."""
    chosen = set()
    for node in nodes:
        if not has_compressed_kernels(graph, node):
            continue
        bits = weight_bits_for(node.name)
        zeros = (np.asarray(node.params["weight"]) != 0).astype(np.int8)  # the encodings' sizes: the pattern
        if packing.field_bits(bits) < 8 or sparse_format.choose(zeros, mode, int(packing.pack(zeros, bits).size)) \
                is not None:
            chosen.add(node.name)
    return chosen


def _sparsify_gate(graph: Graph, i: int, node, mode: str) -> list[SparsityDecision]:
    """Each of a recurrent gate's two matrices (a DualLinear's, or a GRU n gate's GatedDualLinear) gets
    its own storage, chosen as for a Linear: sparse where smaller than packed (4 or fewer bits) or
    dense, else packed below 5 bits, else dense.  Under auto, int8 gates stay dense unless sparse
    storage saves more than the two ec_weights_s8 descriptors a compressed gate adds."""
    decisions, formats = [], {}
    bits = int(node.qattrs["weight_bits"])
    for key in ("weight_a", "weight_b"):
        w = node.qparams[key]
        dense = int(packing.pack(w, bits).size)  # packed below 5 bits: the baseline sparse must beat
        enc = sparse_format.choose(w, mode, dense)
        fmt = enc.format if enc is not None else "packed" if packing.field_bits(bits) < 8 else "dense"
        formats[f"format_{key[-1]}"] = fmt
        # a sparsity decision, as a Linear's: dense (packed below 5 bits, dense_bytes saying so) or sparse
        decisions.append(SparsityDecision(f"{node.name}.{key}", sparse_format.density(w),
                                          "dense" if enc is None else enc.format, dense,
                                          dense if enc is None else int(enc.nbytes)))
    stored, dense = sum(d.stored_bytes for d in decisions), sum(d.dense_bytes for d in decisions)
    if mode == "auto" and set(formats.values()) <= {"dense", "bitmap", "delta"} and \
            stored + 2 * 4 * DESCRIPTOR_WORDS >= dense:
        # int8 weights a sparse format barely shrinks: the two descriptors would eat the saving
        formats = {k: "dense" for k in formats}
        decisions = [SparsityDecision(d.layer, d.density, "dense", d.dense_bytes, d.dense_bytes) for d in decisions]
    if set(formats.values()) != {"dense"}:
        graph.nodes[i] = COMPRESSED_GATE_CLASS[type(node)](node.name, node.inputs, node.outputs,
                                                           attrs={**node.attrs, **formats}, params=node.params,
                                                           qattrs=node.qattrs, qparams=node.qparams)
    return decisions


def mean_density(decisions: list[SparsityDecision]) -> float:
    total = sum(d.dense_bytes for d in decisions)
    return float(np.sum([d.density * d.dense_bytes for d in decisions]) / total) if total else 1.0

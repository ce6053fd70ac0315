"""Range snapping: scale activation tensors so that their values fill their power-of-two formats.

A tensor's format is value = q * 2^-f with an integer f (numerics.py), so a tensor whose values
reach r uses the codes up to r * 2^f: between half and all of the code range, by where r falls
between two powers of two.  On average that wastes about half a bit (3 dB of SQNR) per tensor,
which a float scale (TFLite's) does not.  Part of it can be won back without leaving power-of-two
arithmetic, in the float model, before calibration:

If a conv/linear layer P writes a tensor t and every reader of t is a conv/linear layer, directly
or through max/avg pools and reshapes (which commute with a positive factor), then multiplying
P's weights, bias and clamp bounds by a > 0 and every reader's weights by 1/a leaves the float
function unchanged: a clamp activation (ReLU, ReLU6, Clip) satisfies clamp(a z, a lo, a hi) =
a clamp(z, lo, hi).  ReLU6 then clamps at 6a, so a = 4/3 makes its [0, 6] fill [0, 8) exactly.

For each such tensor group, a is chosen among 2^(k/16), k = 0..15 (a power of two more changes
only the formats, not the codes), to minimize the group's relative quantization noise on the
calibration samples, with the formats chosen as quantize_graph will choose them (same method,
bits, unsigned codes).  The format's range keeps MARGIN of headroom over the calibrated extremes,
so held-out values slightly beyond them do not clip.  A group changes only when its estimated
noise falls by MIN_GAIN_DB.  The weight formats are per output channel and move with the weights;
on average the rows gain as much as they lose.  The calibration ranges are scaled in place, so
that no second calibration is needed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .. import ops, simulate
from ..formats import TensorRange, format_for, sample_error
from ..ir import Graph
from .equalize import PASS_THROUGH, scale_inputs, scale_outputs
from .quantize import QuantOptions, quantize_graph, zero_pointed

LAYERS = (ops.Conv2d, ops.Linear)
CANDIDATES = 2.0 ** (np.arange(16) / 16.0)
MARGIN = 1.02  # headroom of the chosen format over the calibrated extremes
MIN_GAIN_DB = 0.1


@dataclass
class Group:
    producer: object     # the conv/linear layer that writes the group's first tensor
    tensors: list[str]   # its output and the pool/reshape outputs that carry the same values
    readers: list        # the conv/linear layers that read them


def find_groups(graph: Graph) -> list[Group]:
    groups = []
    for node in graph.nodes:
        if type(node) in LAYERS and "weight" in node.params:
            group = follow(graph, node)
            if group is not None:
                groups.append(group)
    return groups


def follow(graph: Graph, producer) -> Group | None:
    """The tensors that carry the producer's output scale and the layers that read them, or None when
    some reader is not a conv/linear layer, a pool or a reshape, or a tensor on the way is a model output."""
    tensors, readers, todo = [], [], [producer.outputs[0]]
    while todo:
        t = todo.pop()
        users = graph.consumers(t)
        if t in graph.outputs or not users:
            return None
        tensors.append(t)
        for user in users:
            if user.inputs != [t]:
                return None
            if type(user) in LAYERS and "weight" in user.params and user is not producer:
                readers.append(user)
            elif type(user) in PASS_THROUGH:
                todo.append(user.outputs[0])
            else:
                return None
    return Group(producer, tensors, readers)


def scaled_range(r: TensorRange, a: float) -> TensorRange:
    s = copy.copy(r)
    s.lo, s.hi, s.total, s.total_sq = r.lo * a, r.hi * a, r.total * a, r.total_sq * a * a
    s.sample = None if r.sample is None else r.sample * a
    s.formats = {}  # other values: none of r's answers apply (and r's must not keep this sample alive)
    return s


def relative_noise(r: TensorRange, a: float, bits: int, options: QuantOptions, zero_point: bool = False) -> float:
    """Quantization noise of a * values over their power, with the format chosen as quantize_graph
    would (calibration method, bits, zero point) for extremes MARGIN wider than seen."""
    return float(relative_noises(r, np.array([a]), bits, options, zero_point)[0])


def relative_noises(r: TensorRange, factors: np.ndarray, bits: int, options: QuantOptions,
                    zero_point: bool = False) -> np.ndarray:
    """relative_noise of every factor a in `factors`."""
    if r.sample is None or not r.sample.size:
        return np.zeros(len(factors))
    power = float(np.mean(r.sample ** 2))
    if power == 0.0:
        return np.zeros(len(factors))
    noises = []
    for a in map(float, factors):
        scaled = scaled_range(r, a)
        wide = copy.copy(scaled)  # (the same sample)
        wide.lo, wide.hi = scaled.lo * MARGIN, scaled.hi * MARGIN
        f, z = format_for(wide, bits, options.calib_method, options.percentile, zero_point)
        noises.append(sample_error(scaled, f, z, bits) / (a * a * power))
    return np.array(noises)


def weight_noises(layer, factors: np.ndarray, options: QuantOptions) -> np.ndarray:
    """For every factor c in `factors`: the mean over output rows of the weights' relative
    quantization noise once multiplied by c, with the formats WeightedOp.quantize would give them
    (per channel or per tensor).  The rows of all factors are quantized at once, each row by the
    same steps as alone."""
    w = np.asarray(layer.params["weight"], dtype=np.float64)
    n = w.shape[0]
    rows = (w.reshape(1, n, -1) * np.asarray(factors, dtype=np.float64)[:, None, None]).reshape(len(factors) * n, -1)
    power = np.mean(rows ** 2, axis=1).reshape(len(factors), n)
    live = power > 0
    if not live.any():
        return np.zeros(len(factors))
    bits = options.weight_bits_for(layer.name)
    f = layer._rows_frac_bits(rows, bits, options)
    if not layer.wants_per_channel(options):
        f = np.repeat(f.reshape(len(factors), n).min(axis=1), n)
    err = layer._quantize_weights(rows, f, bits) * np.ldexp(1.0, -f)[:, None] - rows
    per_row = np.mean(err ** 2, axis=1).reshape(len(factors), n)
    return np.array([np.mean(e[k] / p[k]) if k.any() else 0.0 for e, p, k in zip(per_row, power, live)])


def best_factor(group: Group, ranges: dict[str, TensorRange], graph: Graph, shifted: set[str],
                options: QuantOptions) -> float:
    scores = sum(relative_noises(ranges[t], CANDIDATES, graph.tensors[t].bits, options, t in shifted)
                 for t in group.tensors)
    scores = scores + weight_noises(group.producer, CANDIDATES, options)
    scores = scores + sum(weight_noises(r, 1.0 / CANDIDATES, options) for r in group.readers)
    k = int(np.argmin(scores))
    if scores[0] <= 0.0 or scores[k] > scores[0] * 10.0 ** (-MIN_GAIN_DB / 10.0):
        return 1.0
    return float(CANDIDATES[k])


def apply_factor(group: Group, a: float, ranges: dict[str, TensorRange]) -> None:
    p = group.producer
    scale_outputs(p, np.full(p.out_channels, a))
    act = p.attrs.get("act")
    if act is not None:
        p.attrs["act"] = {**act, **{k: act[k] * a for k in ("min", "max") if act[k] is not None}}
    for reader in group.readers:
        n_in = reader.weight_shape[1] * (reader.groups if isinstance(reader, ops.Conv2d) else 1)
        scale_inputs(reader, np.full(n_in, 1.0 / a))
    for t in group.tensors:
        ranges[t] = scaled_range(ranges[t], a)


def snap_ranges(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions) -> dict[str, float]:
    """Rescale every group of the float graph whose formats gain; returns the factors applied, by
    producer layer.  `ranges` (calibrate's, on this graph) is updated to the rescaled values."""
    shifted = zero_pointed(graph, ranges, options)
    applied = {}
    for group in find_groups(graph):
        if any(t not in ranges for t in group.tensors):
            continue
        a = best_factor(group, ranges, graph, shifted, options)
        if a != 1.0:
            apply_factor(group, a, ranges)
            applied[group.producer.name] = a
    if applied:
        graph.notes.append(f"range snapping rescaled {len(applied)} tensor(s) to fill their power-of-two formats")
    return applied


def snap_ranges_if_better(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions, calib: np.ndarray,
                          samples: int = 128) -> dict[str, float]:
    """snap_ranges, kept only if the quantized model's output error on the calibration samples falls
    by MIN_GAIN_DB (both models quantized by quantize_graph alone, before the later passes).  The
    per-tensor estimate ignores how errors travel through the net; the samples decide."""
    x = calib[:samples]
    reference = np.asarray(graph.run_float(x), dtype=np.float64)
    snapped, snapped_ranges = copy.deepcopy(graph), dict(ranges)
    applied = snap_ranges(snapped, snapped_ranges, options)
    if not applied:
        return {}
    before = quantized_error(graph, ranges, options, x, reference)
    after = quantized_error(snapped, snapped_ranges, options, x, reference)
    if not after < before * 10.0 ** (-MIN_GAIN_DB / 10.0):
        graph.notes.append(f"range snapping not kept: the output error on the calibration samples did not fall "
                           f"({len(applied)} tensor(s) tried)")
        return {}
    adopt(graph, ranges, snapped, snapped_ranges)
    return applied


def quantized_copy(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions) -> Graph:
    """A copy of the float graph quantized by quantize_graph alone (before the later passes)."""
    q = copy.deepcopy(graph)
    quantize_graph(q, ranges, copy.copy(options))
    return q


def quantized_error(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions, x: np.ndarray,
                    reference: np.ndarray) -> float:
    """Squared output error, against `reference`, of the float graph quantized by quantize_graph
    alone (before the later passes) on the inputs x."""
    return simulate.output_error(quantized_copy(graph, ranges, options), x, reference)


def adopt(graph: Graph, ranges: dict[str, TensorRange], changed: Graph, changed_ranges: dict[str, TensorRange]) -> None:
    """Take a rescaled copy's parameters, activations and ranges into the graph (same nodes)."""
    names = {n.name: n for n in changed.nodes}
    for node in graph.nodes:
        if node.name in names:
            node.params, node.attrs = names[node.name].params, names[node.name].attrs
    graph.notes.extend(n for n in changed.notes if n not in graph.notes)
    ranges.update(changed_ranges)

"""Cross-layer equalization: move per-channel scale between a layer and the layer it feeds.

If a conv/linear layer P feeds a conv/linear layer C, and what lies between them commutes with
a positive per-channel scale (P's ReLU or no activation, max/avg pooling, reshape/flatten), then
dividing P's output channel c (weight row and bias) by s_c > 0 and multiplying every weight of C
that reads channel c by s_c leaves the float function unchanged.  The freedom is worth using
because of where the formats are coarse in this compiler:

* P's weights have a power-of-two scale per output channel, so they gain little from s;
* the activation between P and C has ONE power-of-two format for all its channels: a channel
  whose values are far smaller than the largest channel's gets few significant bits;
* C's weights have a scale per output row, and each row mixes all input channels: a column
  with small weights next to one with large weights gets few significant bits.

Scale choices (`method`):

* "activations" (needs calibration samples): s_c = sqrt(a_c / r_c), with a_c the largest
  |value| of channel c of the activation and r_c the largest |weight| of C reading channel c.
  Afterwards both become sqrt(a_c * r_c): the activation channels and C's columns end up with
  the same per-channel spread, so the shared activation format and C's per-row formats waste
  the same, smallest, amount on small channels.
* "weights": s_c = sqrt(m_c / r_c), with m_c the largest |weight| of P's row c: the weight
  ranges of P's rows and C's columns are made equal, the choice that needs no data.
* "noise" (needs calibration samples): per pair, the candidate with the least estimated
  quantization noise at C's output, among s = 1 (leave alone), (a_c / r_c)^k, (m_c / r_c)^k and
  a_c^k for k in 1/4, 1/2, 3/4, 1.  The estimate sums, over C's output rows o, the activation
  noise (max_c a_c / s_c)^2 * sum_c s_c^2 |W_C[o, c]|^2 (one step for all channels) and the
  weight noise (max_c s_c r_oc)^2 * sum_c n_oc E[x_c^2] / s_c^2 (one step per row; r_oc, n_oc:
  the largest weight and the weight count of row o on channel c).  It can keep s = 1 for a
  pair, and it sees that a depthwise consumer's per-row formats absorb s (so s_c ~ a_c is best
  there).
* either with "-pow2" ("activations-pow2"): s_c rounded to a power of two.  P's per-channel
  power-of-two weight formats then absorb s_c exactly (same integer weights, other frac bits),
  so only the shared activation format and C's columns change, each channel balanced to within
  a factor sqrt(2).

With calibration samples, all s_c of a pair are then multiplied by one common factor (free: the
function and the balance stay) that puts the widest activation channel at HEADROOM (0.7) of a
power of two.  Balancing makes every channel as wide as its calibration samples allow, so
without room, held-out data beyond a channel's calibrated maximum would clip in every channel
instead of in the widest one only (measured: one model lost 7 dB without it).

The scales are clamped to [2^-MAX_LOG2, 2^MAX_LOG2] and a channel with nothing to balance
(a dead channel, a column of zeros) keeps s_c = 1.  A layer can be the consumer of one pair and
the producer of the next, so the pairs are visited in graph order for a few sweeps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..ir import Graph

MAX_LOG2 = 8  # |log2 s_c| at most this: a near-zero row or column must not blow up the other layer
PASS_THROUGH = (ops.MaxPool2d, ops.AvgPool2d, ops.Reshape)  # commute with a positive scale per channel
LAYERS = (ops.Conv2d, ops.Linear)
HEADROOM = 0.7  # the widest balanced activation channel: this fraction of its power-of-two format


@dataclass
class Pair:
    producer: object       # ops.Conv2d or ops.Linear
    consumer: object       # ops.Conv2d or ops.Linear
    tensors: list[str]     # P's output, then the tensors on the way to C (the last is C's input)
    columns: np.ndarray    # per input channel of C (conv) or input column (linear): P's channel it carries


def equalize(graph: Graph, calib: np.ndarray | None = None, method: str | None = None, sweeps: int = 4,
             keep: frozenset[str] = frozenset()) -> int:
    """Rescale every producer/consumer pair of the float graph; returns how many pairs changed.

    calib: a batch of model inputs (the calibration samples); method: "weights", "activations",
    "noise" (these two need `calib`), each optionally with "-pow2"; by default "activations" when
    calibration samples are given, else "weights".  Each sweep visits every pair once.  keep:
    names of layers whose weights stay as they are (no pair with one of them is rescaled)."""
    method = method or ("weights" if calib is None else "activations")
    balance, _, rounding = method.partition("-")
    if balance not in ("weights", "activations", "noise") or rounding not in ("", "pow2"):
        raise ValueError(f"equalize: unknown method {method!r}")
    if balance != "weights" and calib is None:
        raise ValueError(f"equalize: method {method!r} needs calibration samples")
    pairs = [p for p in find_pairs(graph) if p.producer.name not in keep and p.consumer.name not in keep]
    if not pairs:
        return 0
    acts = activation_stats(graph, pairs, calib) if balance != "weights" else None
    changed = set()
    for _ in range(sweeps):
        moved = 0.0
        for i, pair in enumerate(pairs):
            if balance == "noise":
                s = least_noise_scales(pair, *acts[i])
            else:
                first = acts[i][0] if acts is not None else row_absmax(pair.producer)
                s = balancing_scales(first, consumer_channel_absmax(pair))
            if acts is not None:
                s = s * headroom_factor(acts[i][0] / s)
            if rounding:
                s = 2.0 ** np.round(np.log2(s))
            if np.all(s == 1.0):
                continue
            rescale(pair, s)
            if acts is not None:
                acts[i] = (acts[i][0] / s, acts[i][1] / s ** 2)
            changed.add(i)
            moved = max(moved, float(np.max(np.abs(np.log2(s)))))
        if moved < 1e-3:
            break
    if changed:
        graph.notes.append(f"cross-layer equalization ({method}) rescaled {len(changed)} layer pair(s)")
    return len(changed)


# -- finding the pairs ---------------------------------------------------------------------------
def homogeneous(act: dict | None) -> bool:
    """True for no activation and ReLU: f(x / s) = f(x) / s for every s > 0 (ReLU6, clips do not)."""
    return act is None or (act.get("min") == 0.0 and act.get("max") is None)


def find_pairs(graph: Graph) -> list[Pair]:
    pairs = []
    for node in graph.nodes:
        if type(node) not in LAYERS or not homogeneous(node.attrs.get("act")):
            continue
        found = follow(graph, node)
        if found is None:
            continue
        consumer, tensors = found
        columns = channel_map(graph, node, tensors, consumer)
        if columns is not None:
            pairs.append(Pair(node, consumer, tensors, columns))
    return pairs


def follow(graph: Graph, producer) -> tuple[object, list[str]] | None:
    """The one conv/linear layer that reads the producer's output, through pass-through ops only,
    with no other reader and no graph output on the way; and the tensors on the way."""
    t = producer.outputs[0]
    tensors = [t]
    while True:
        users = graph.consumers(t)
        if t in graph.outputs or len(users) != 1 or users[0].inputs != [t]:
            return None
        user = users[0]
        if type(user) in LAYERS:
            return user, tensors
        if type(user) not in PASS_THROUGH:
            return None
        t = user.outputs[0]
        tensors.append(t)


def channel_map(graph: Graph, producer, tensors: list[str], consumer) -> np.ndarray | None:
    """For each input channel (conv) or input column (linear) of the consumer, the producer
    channel whose values it carries; None if some channel or column mixes several."""
    shape = graph.shape(tensors[0])
    axis = 0 if isinstance(producer, ops.Conv2d) else len(shape) - 1
    index = [1] * len(shape)
    index[axis] = -1
    ch = np.broadcast_to(np.arange(producer.out_channels).reshape(index), shape)
    for t in tensors[1:]:
        if isinstance(graph.producer(t), ops.Reshape):
            ch = ch.reshape(graph.shape(t))   # the same elements in the same order
            continue
        planes = constant_rows(ch.reshape(ch.shape[0], -1))  # a pool keeps each channel plane apart
        if planes is None:
            return None
        ch = np.broadcast_to(planes.reshape(-1, 1, 1), graph.shape(t))
    if isinstance(consumer, ops.Conv2d):
        return constant_rows(ch.reshape(ch.shape[0], -1))
    return constant_rows(ch.reshape(-1, ch.shape[-1]).T)


def constant_rows(m: np.ndarray) -> np.ndarray | None:
    return m[:, 0].copy() if m.size and np.all(m == m[:, :1]) else None


# -- the ranges the scales balance -------------------------------------------------------------
def row_absmax(layer) -> np.ndarray:
    w = np.asarray(layer.params["weight"], dtype=np.float64)
    return np.abs(w.reshape(w.shape[0], -1)).max(axis=1)


def input_absmax(layer) -> np.ndarray:
    """Largest |weight| reading each input channel (conv, groups mapped) or column (linear)."""
    w = np.abs(np.asarray(layer.params["weight"], dtype=np.float64))
    if isinstance(layer, ops.Linear):
        return w.max(axis=0)
    g = layer.groups
    per_row = w.max(axis=(2, 3))                                            # (OC, IC / g)
    return per_row.reshape(g, -1, per_row.shape[1]).max(axis=1).reshape(-1)  # input channel k = group * IC/g + local


def consumer_channel_absmax(pair: Pair) -> np.ndarray:
    """Per producer channel: the largest |weight| of the consumer that reads it."""
    r = np.zeros(pair.producer.out_channels)
    np.maximum.at(r, pair.columns, input_absmax(pair.consumer))
    return r


def activation_stats(graph: Graph, pairs: list[Pair], calib: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per pair, per channel of the producer's output over `calib`: largest |value|, mean square."""
    env = graph.run_float(np.asarray(calib, dtype=np.float32), keep_all=True)
    stats = []
    for pair in pairs:
        x = env[pair.tensors[0]].astype(np.float64)
        axis = 1 if isinstance(pair.producer, ops.Conv2d) else x.ndim - 1
        x = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        stats.append((np.abs(x).max(axis=1), np.mean(x * x, axis=1)))
    return stats


def activation_ranges(graph: Graph, pairs: list[Pair], calib: np.ndarray) -> list[np.ndarray]:
    """Per pair, the largest |value| of each channel of the producer's output over `calib`."""
    return [a for a, _ in activation_stats(graph, pairs, calib)]


def consumer_row_stats(pair: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(OC, producer channels) arrays: sum of squared weights, largest |weight| and weight count
    of each consumer row on each producer channel."""
    w = np.asarray(pair.consumer.params["weight"], dtype=np.float64)
    oc = w.shape[0]
    if isinstance(pair.consumer, ops.Linear):
        per_input = w[:, :, None]                                       # (OC, inputs, taps = 1)
    else:
        g, icg = pair.consumer.groups, w.shape[1]
        per_input = np.zeros((oc, icg * g, w.shape[2] * w.shape[3]))    # dense over all input channels
        for k in range(g):
            rows = slice(k * (oc // g), (k + 1) * (oc // g))
            per_input[rows, k * icg:(k + 1) * icg] = w[rows].reshape(oc // g, icg, -1)
    n = pair.producer.out_channels
    sq, top, count = np.zeros((oc, n)), np.zeros((oc, n)), np.zeros((oc, n))
    reads = np.abs(per_input).max(axis=2) > 0
    for c_in, c in enumerate(pair.columns):
        sq[:, c] += (per_input[:, c_in] ** 2).sum(axis=1)
        top[:, c] = np.maximum(top[:, c], np.abs(per_input[:, c_in]).max(axis=1))
        count[:, c] += reads[:, c_in] * per_input.shape[2]
    return sq, top, count


def estimated_noise(s: np.ndarray, act_max: np.ndarray, act_sq: np.ndarray, rows) -> float:
    """Quantization noise at the consumer's output for scales s (see the module docstring)."""
    sq, top, count = rows
    activation = np.max(act_max / s) ** 2 * (sq * s ** 2).sum()
    weight = (np.max(top * s, axis=1) ** 2 * (count * act_sq / s ** 2).sum(axis=1)).sum()
    return float(activation + weight)


def least_noise_scales(pair: Pair, act_max: np.ndarray, act_sq: np.ndarray) -> np.ndarray:
    rows = consumer_row_stats(pair)
    r = consumer_channel_absmax(pair)
    candidates = [np.ones_like(act_max)]
    for k in (0.25, 0.5, 0.75, 1.0):
        for first, second in ((act_max, r), (row_absmax(pair.producer), r), (act_max, np.ones_like(r))):
            candidates.append(balancing_scales(first, second) ** (2 * k))
    ok = act_max > 0
    for s in candidates:
        s[~ok] = 1.0  # a dead channel has nothing to balance
    if not ok.any():
        return candidates[0]
    scores = [estimated_noise(s[ok], act_max[ok], act_sq[ok], tuple(m[:, ok] for m in rows)) for s in candidates]
    return np.clip(candidates[int(np.argmin(scores))], 2.0 ** -MAX_LOG2, 2.0 ** MAX_LOG2)


def headroom_factor(ranges: np.ndarray) -> float:
    """The common factor g for all s_c that puts the widest channel range at HEADROOM of a power
    of two (see the module docstring), g in [1/sqrt(2), sqrt(2)]."""
    top = float(np.max(ranges))
    if top <= 0:
        return 1.0
    return top / (HEADROOM * 2.0 ** np.round(np.log2(top / HEADROOM)))


def balancing_scales(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """s_c = sqrt(first_c / second_c): afterwards first_c / s_c = second_c * s_c, clamped; 1 where
    either side is zero."""
    ok = (first > 0) & (second > 0)
    log_s = np.zeros(first.shape, dtype=np.float64)
    log_s[ok] = 0.5 * np.log2(first[ok] / second[ok])
    return 2.0 ** np.clip(log_s, -MAX_LOG2, MAX_LOG2)


# -- rescaling ---------------------------------------------------------------------------------
def rescale(pair: Pair, s: np.ndarray) -> None:
    """Producer channel c divided by s_c, the consumer's weights reading it multiplied by s_c."""
    scale_outputs(pair.producer, 1.0 / s)
    scale_inputs(pair.consumer, s[pair.columns])


def scale_outputs(layer, f: np.ndarray) -> None:
    w = np.asarray(layer.params["weight"], dtype=np.float64)
    layer.params["weight"] = (w * f.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    if "bias" in layer.params:
        layer.params["bias"] = (np.asarray(layer.params["bias"], dtype=np.float64) * f).astype(np.float32)
    if "bn_range" in layer.attrs:  # the per-tensor fallback range must still enclose every channel
        lo, hi = layer.attrs["bn_range"]
        ends = np.array([lo * f.min(), lo * f.max(), hi * f.min(), hi * f.max()])
        layer.attrs["bn_range"] = [float(ends.min()), float(ends.max())]


def scale_inputs(layer, f: np.ndarray) -> None:
    """Multiply the weights reading input channel/column k by f[k]."""
    w = np.asarray(layer.params["weight"], dtype=np.float64)
    if isinstance(layer, ops.Linear):
        w = w * f[None, :]
    else:
        g = layer.groups
        oc, icg = w.shape[:2]
        per_row = np.repeat(f.reshape(g, 1, icg), oc // g, axis=1).reshape(oc, icg)
        w = w * per_row[:, :, None, None]
    layer.params["weight"] = w.astype(np.float32)

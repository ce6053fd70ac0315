"""Output correction: each model output's least-squares gain and offset, folded into the layer that writes it.

Bias correction (bias_correction.py) cancels the mean of a layer's error.  At the model's outputs
a second statistic can be wrong as well: in a deep net that amplifies small differences (a
MobileNetV2 whose BatchNorm spreads its channels), the integer outputs follow the float ones only
loosely, and part of their variation is noise.  Over the calibration samples, with q one output
channel of the integer model (dequantized) and f the float model's, the affine map that brings q
closest to f in squared error is

    a = cov(q, f) / var(q),    c = mean(f) - a * mean(q)      (least squares)

When q tracks f, a is about 1 and c about 0, and nothing changes.  When noise is a large share of
q's variation, a < 1: the noise shrinks with it, and the output's error falls.

Folded into the writer y = W x + b, row o of W becomes a_o * W_o and its bias a_o * b_o + c_o; the
op's own quantize() turns them into integers in the same output format, so the C needs nothing
new and the simulator stays its golden model.  The float graph keeps its parameters (it stays the
reference every figure is measured against); only the integer layer changes.

Applied only to outputs that follow the float ones loosely (correlation at most MAX_CORRELATION,
see decide), and only where it helps samples it was not fitted on: leave-one-out over the
calibration samples (each sample's error under the map fitted on all the others) must fall by
GAIN_DB, and a classifier's top-1 agreement with the float model must not fall measurably
(loses_top1).  The re-quantized writer must lower the calibration samples' error itself (apply).
Only a layer with weights and no activation writes an output affinely (a clamped or gated one is
not), and only one whose output no other layer reads can change alone; quantization-aware
training's weights and formats are left as they were trained.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import simulate
from ..ir import Graph
from ..ops.weighted import WeightedOp
from .weight_rounding import CHUNK_ROWS, DAMP, round_layer

GAIN_DB = 0.2  # the leave-one-out output error must fall by this much (as the format search's gains)
MAX_CORRELATION = 0.9  # outputs that follow the float ones more closely are left as they are (see decide)
MIN_SAMPLES = 8  # with fewer calibration samples a fit follows their noise
MAX_SAMPLES = 256


@dataclass
class Correction:
    layer: str
    gains: np.ndarray  # a, per output channel
    offsets: np.ndarray  # c, per output channel (real units)
    loo_gain_db: float  # how much the leave-one-out error fell
    correlation: float  # of the integer and the float outputs before (every channel, centred)


def correctable_writers(graph: Graph) -> list[WeightedOp]:
    """The layers that write a model output themselves, affinely (weights and no activation), which no
    other layer reads: a change there would reach the layers after it too."""
    writers = []
    for t in graph.outputs:
        node = graph.producer(t)
        if (isinstance(node, WeightedOp) and node.attrs.get("act") is None and "weight" in node.params
                and "weight" in node.qparams and not graph.consumers(t) and node not in writers):
            writers.append(node)
    return writers


def by_channel(a: np.ndarray, axis: int) -> np.ndarray:
    """A batch of outputs with its channels on `axis` as float64 (N, positions, C)."""
    moved = np.moveaxis(np.asarray(a, np.float64), axis % a.ndim, -1)
    return moved.reshape(len(moved), -1, moved.shape[-1])


def sample_stats(q: np.ndarray, f: np.ndarray, axis: int) -> np.ndarray:
    """Per sample and output channel: (count, sum q, sum f, sum q^2, sum q f, sum f^2), shape (N, C, 6).

    q and f are centred on their channel means over every sample first: the fits below are the same
    and the sums of squares lose no precision to large means."""
    q, f = by_channel(q, axis), by_channel(f, axis)
    q = q - q.mean(axis=(0, 1))
    f = f - f.mean(axis=(0, 1))
    count = np.full(q.shape[::2], float(q.shape[1]))
    return np.stack([count, q.sum(1), f.sum(1), (q * q).sum(1), (q * f).sum(1), (f * f).sum(1)], axis=-1)


def fit(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares a, c per channel from summed stats (..., C, 6) (centred units).  A channel whose
    integer output does not vary keeps its gain and takes the mean difference alone."""
    n, sq, sf, sqq, sqf = (stats[..., k] for k in range(5))
    var = sqq - sq * sq / n
    cov = sqf - sq * sf / n
    flat = var <= 1e-12 * np.maximum(sqq, 1e-300)
    a = np.where(flat, 1.0, cov / np.where(flat, 1.0, var))
    return a, (sf - a * sq) / n


def squared_error(stats: np.ndarray, a, c) -> np.ndarray:
    """sum (a q + c - f)^2 from the stats, per sample and channel."""
    n, sq, sf, sqq, sqf, sff = (stats[..., k] for k in range(6))
    return a * a * sqq + 2 * a * c * sq - 2 * a * sqf + c * c * n - 2 * c * sf + sff


def leave_one_out(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's gains and offsets fitted on all the other samples: (N, C) each."""
    return fit(stats.sum(axis=0, keepdims=True) - stats)


def loses_top1(q: np.ndarray, corrected: np.ndarray, f: np.ndarray) -> bool:
    """Whether `corrected` agrees with f's top-1 answers measurably less often than q does.

    Only the samples whose answer changes tell (a paired comparison, as McNemar's test): with w
    turning wrong and r turning right, chance alone moves w - r by about sqrt(w + r), so a loss
    counts when w - r exceeds twice that.  A plain "fewer agree" would refuse on one or two of 64
    samples, which is noise (a spread-BN MobileNetV2 lost 2 of 64 this way and gained 2.7 points
    on 256 held-out inputs)."""
    truth = np.argmax(f, axis=-1)
    before, after = np.argmax(q, axis=-1) == truth, np.argmax(corrected, axis=-1) == truth
    worse, better = int(np.sum(before & ~after)), int(np.sum(~before & after))
    return worse - better > 2 * np.sqrt(worse + better)


def real_offsets(q: np.ndarray, f: np.ndarray, axis: int, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The offsets of fits made on centred data (sample_stats), for q and f as they are."""
    return c + by_channel(f, axis).mean(axis=(0, 1)) - a * by_channel(q, axis).mean(axis=(0, 1))


def affine_fit(q: np.ndarray, f: np.ndarray, axis: int,
               stats: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (on `axis`): the a, c minimizing sum (a q + c - f)^2 over every sample
    (`stats`: their sample_stats, when already at hand)."""
    a, c = fit((sample_stats(q, f, axis) if stats is None else stats).sum(axis=0))
    return a, real_offsets(q, f, axis, a, c)


def decide(q: np.ndarray, f: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """(a, c, leave-one-out gain in dB, correlation) when the map should be applied, else None."""
    stats = sample_stats(q, f, axis)
    total = stats.sum(axis=(0, 1))
    correlation = float(total[4] / np.sqrt(total[3] * total[5])) if total[3] * total[5] > 0 else 1.0
    # With q = f + independent noise, the least-squares gain is corr^2 and it lowers the error of the
    # outputs' variation by the factor corr^2: at most 0.9 dB above 0.9, which 64 samples cannot tell
    # from their own noise, while a gain below 1 flattens the top logits a threshold reads.
    if correlation > MAX_CORRELATION:
        return None
    before = ((by_channel(q, axis) - by_channel(f, axis)) ** 2).sum(axis=1)  # q as it is, per sample and channel
    loo_a, loo_c = leave_one_out(stats)
    after = squared_error(stats, loo_a, loo_c)
    if not before.sum() > 0 or not after.sum() > 0:
        return None
    gain_db = 10 * np.log10(before.sum() / after.sum())
    if gain_db < GAIN_DB:
        return None
    if q.ndim == 2 and q.shape[1] > 1:  # a classifier's logits: its top-1 answers must not suffer
        predicted = q * loo_a + real_offsets(q, f, -1, loo_a, loo_c)  # each under the map fitted without it
        if loses_top1(q, predicted, f):
            return None
    return (*affine_fit(q, f, axis, stats), float(gain_db), correlation)


def correct_outputs(graph: Graph, samples: np.ndarray, options, reround: bool = False) -> list[Correction]:
    """Fold each output's least-squares gain and offset into its writer where leave-one-out confirms it.

    `options` are the QuantOptions the graph was quantized with; `reround`: the writer's weights are
    rounded again by error feedback after the change (as the export's other layers were)."""
    writers = correctable_writers(graph)
    x = samples[:MAX_SAMPLES]
    if not writers or len(x) < MIN_SAMPLES:
        return []
    reference = graph.split_outputs(np.asarray(graph.run_float(x)))
    env = simulate.run_integer(graph, simulate.quantize_input(graph, x), keep_all=True)
    done = []
    for node in writers:
        out = node.outputs[0]
        q = simulate.dequantize(graph, out, env[out])
        found = decide(q, reference[out], node.channel_axis)
        if found is None:
            continue
        a, c, gain_db, correlation = found
        if apply(graph, node, a, c, options, env, reference[out], reround):
            done.append(Correction(node.name, a, c, gain_db, correlation))
            cause = why(reference[out], node.channel_axis)
            graph.notes.append(
                f"output correction: {node.name}'s integer outputs follow the float model's only loosely "
                f"(correlation {correlation:.2f} on the calibration samples: {cause}), "
                f"so each output channel is scaled about its mean by its least-squares gain ({describe(a)}); on "
                f"samples left out of the fit the output error falls by {gain_db:.1f} dB "
                f"(--no-output-correction turns it off)")
    return done


CONSTANT_SPREAD = 1e-3  # float outputs that vary less than this share of their size do not follow the input


def why(f: np.ndarray, axis: int) -> str:
    """What a loose correlation means: float outputs that hardly vary with the input (random weights
    often give those), whose integer variation is then rounding noise, or a net that amplifies rounding."""
    f = by_channel(f, axis)
    size = float(np.sqrt(np.mean(f ** 2)))
    spread = float(np.sqrt(np.mean(f.var(axis=0)))) / size if size > 0 else 0.0  # over the samples
    if spread < CONSTANT_SPREAD:
        return (f"the float outputs hardly vary with the input, by {spread:.0e} of their size, so the integer "
                f"outputs' variation is rounding noise")
    return "the net amplifies rounding"


def describe(a: np.ndarray) -> str:
    return ", ".join(f"{v:.2f}" for v in a) if len(a) <= 4 else f"{a.min():.2f} to {a.max():.2f}"


def apply(graph: Graph, node: WeightedOp, a: np.ndarray, c: np.ndarray, options, env: dict,
          reference: np.ndarray, reround: bool) -> bool:
    """Re-quantize `node` from its corrected float parameters; keep it only if the calibration samples'
    output error falls (else the node and its output format are put back).  The float graph keeps
    the original parameters: it stays the reference."""
    out = graph.tensors[node.outputs[0]]
    saved = (node.qparams, node.qattrs, out.frac_bits, out.zero_point)
    before = float(np.sum((simulate.dequantize(graph, out.name, env[out.name]) - reference) ** 2))
    params = node.params
    w = np.asarray(params["weight"])
    b = np.asarray(params.get("bias", np.zeros(node.out_channels)), np.float64)
    node.params = {**params, "weight": (w * a.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype),
                   "bias": (a * b + c).astype(np.float32)}
    try:
        node.quantize(graph, options)
        if reround:
            round_layer(graph, node, env[node.inputs[0]], DAMP, CHUNK_ROWS)
    finally:
        node.params = params
    trial = {t: env[t] for t in node.inputs}
    graph.run_node_int(node, trial)
    after = float(np.sum((simulate.dequantize(graph, out.name, trial[out.name]) - reference) ** 2))
    if after < before:
        return True
    node.qparams, node.qattrs, out.frac_bits, out.zero_point = saved
    return False

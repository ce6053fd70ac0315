"""Error-feedback weight rounding: choose each layer's integer weights to minimize its output error.

Objective, per layer and output row w (float weights, on the integer grid of that row's format):

    minimize over integer q in qrange(bits):  || (w - q) X ||^2      (X: the layer's inputs, one column each)

Rounding each weight to nearest ignores that the inputs are correlated: the rounding error of one
weight can be partly cancelled by nudging the weights that see correlated inputs.  With
H = X X^T the error of a row is (w - q) H (w - q)^T, and a greedy closed form does most of that
cancellation: quantize one input column at a time and move the not-yet-quantized weights of every
row by the least-squares correction  -err_i * Hinv[i, j>i] / Hinv[i, i].  Taking the upper Cholesky
factor U of Hinv (Hinv = U^T U), row i of U restricted to j >= i is exactly that update for the
remaining columns, so one factorization serves every step.

Only the integers change: every format (f_w per channel, shifts, bits), the clamp range and the
biases stay as quantize_graph chose them, so the generated C needs nothing new.  The inputs X are
the integer model's own (dequantized) activations, re-simulated layer by layer so that each layer
is rounded against the outputs of the already re-rounded layers before it (one pass in total).
A layer keeps its new weights only when they lower its measured output error on X, and a channel
whose int32 accumulator bound would no longer hold keeps its nearest-rounded weights.
"""
from __future__ import annotations

import numpy as np

from .. import numerics, simulate
from ..ir import Graph
from ..ops.conv2d import Conv2d, patches
from ..ops.linear import Linear

DAMP = 0.01  # fraction of the mean diagonal of H added to it: keeps H invertible and the updates tame
CHUNK_ROWS = 4096  # im2col patches gathered at a time while summing H
BLOCK = 128  # columns per block: updates inside a block are rank-1, the rest one matmul per block
MAX_FAN_IN = 4096  # H is fan_in^2 float64 (128 MiB here) and its factorization cubic: wider layers keep nearest


def round_weights(graph: Graph, calib: np.ndarray, damp: float = DAMP, chunk_rows: int = CHUNK_ROWS) -> int:
    """Re-round the integer weights of every Conv2d / Linear of a quantized graph; returns how many changed.

    Each layer minimizes || (W - W_q) X ||^2 over its calibration inputs X (see the module docstring).
    The graph is simulated node by node and each layer is re-rounded just before it runs, so every
    layer's X already carries the new rounding of the layers before it."""
    env = {name: np.asarray(v, dtype=np.int64)
           for name, v in graph.split_inputs(simulate.quantize_input(graph, calib)).items()}
    last_use = {t: i for i, node in enumerate(graph.nodes) for t in node.inputs}
    changed = 0
    for i, node in enumerate(graph.nodes):
        if type(node) in (Conv2d, Linear) and "weight" in node.params and "weight" in node.qparams:
            fan_in = node.params["weight"].size // node.out_channels
            if fan_in > MAX_FAN_IN:
                graph.notes.append(f"{node.name}: kept round-to-nearest weights: {fan_in} inputs per output "
                                   f"are too many for error-feedback rounding (at most {MAX_FAN_IN})")
            else:
                changed += round_layer(graph, node, env[node.inputs[0]], damp, chunk_rows)
        graph.run_node_int(node, env)
        for t in set(node.inputs):  # free activations no later node reads (MobileNet-sized batches)
            if last_use.get(t) == i and t not in graph.outputs:
                del env[t]
    graph.notes.append(f"error-feedback weight rounding changed {changed} layers")
    return changed


def round_layer(graph: Graph, node, x_q: np.ndarray, damp: float, chunk_rows: int) -> int:
    """Re-round one layer in place from its integer inputs x_q; 1 if its weights changed, else 0."""
    x_info = graph.tensors[node.inputs[0]]
    # H over every calibration input vector; the 2^-f of the input format makes it real-valued
    # (an unsigned input's real value is (q - z) * 2^-f: the Hessian is of those codes)
    hessian = np.ldexp(input_hessian(node, np.asarray(x_q, np.float64) - x_info.zero_point, chunk_rows),
                       -2 * x_info.frac_bits)
    n, g = node.out_channels, hessian.shape[0]
    f_w = np.broadcast_to(np.asarray(node.qattrs["weight_frac_bits"], dtype=np.int64), (n,))
    scale = np.ldexp(1.0, f_w)[:, None]  # real -> grid units, per output row
    target = np.asarray(node.params["weight"], dtype=np.float64).reshape(n, -1) * scale
    nearest = node.qparams["weight"].astype(np.int64).reshape(n, -1)
    lo, hi = numerics.qrange(int(node.qattrs["weight_bits"]))
    grouped = lambda a: a.reshape(g, n // g, -1)  # noqa: E731  the output rows of each group together
    pruned = grouped(target == 0)  # pruned weights stay exactly zero: sparse storage depends on them
    q = error_feedback_round(grouped(target), damped_inverse_factor(hessian, damp), lo, hi, pruned).reshape(n, -1)
    # an unsigned input's zero point lives in the bias as a share of each row's weights: it moves with them
    offset = x_info.zero_point != 0
    shares = lambda w: node.zero_point_offsets(w, x_info.zero_point, 0, 0)  # noqa: E731
    bias = lambda w: node.qparams.get("bias", np.zeros(n)).astype(np.int64) + shares(w) - shares(nearest) \
        if offset else node.qparams.get("bias")  # noqa: E731
    q = keep_accumulator_bound(node, q, nearest, x_info.bits, bias(q))
    err_new = output_error(grouped((q - target) / scale), hessian)
    err_old = output_error(grouped((nearest - target) / scale), hessian)
    if not err_new < err_old or np.array_equal(q, nearest):
        return 0
    node.qparams["weight"] = q.reshape(node.qparams["weight"].shape).astype(np.int8)
    if offset:
        node.qparams["bias"] = bias(q).astype(np.int32)
    node.qattrs["acc_bound"] = accumulator_bounds(node, q, x_info.bits).max().item()
    return 1


def input_hessian(node, x_q: np.ndarray, chunk_rows: int) -> np.ndarray:
    """H = sum of x x^T over the vectors each output row is dotted with, per group: (G, d, d), float64.

    Linear: the input vectors.  Conv: the im2col patch at every output position, split by group (a
    depthwise conv has one group per channel with d = kh*kw).  Patches are gathered chunk_rows at a
    time so that memory stays small; the integer inputs are exact in float64 and so is each product,
    the sums being rounded only like any float64 BLAS matmul."""
    if isinstance(node, Linear):
        x = x_q.reshape(-1, x_q.shape[-1])
        h = np.zeros((1, x.shape[1], x.shape[1]))
        for start in range(0, len(x), chunk_rows):
            cols = x[start:start + chunk_rows].astype(np.float64)
            h[0] += cols.T @ cols
        return h
    kh, kw = node.kernel
    if (kh, kw) == (1, 1) and not any(node.attrs["pads"]):
        return _pointwise_hessian(node, x_q, chunk_rows)
    win = patches(x_q, kh, kw, node.attrs["stride"], node.attrs["pads"], dilation=node.dilation)
    n, c, oh, ow = win.shape[:4]
    g = node.groups
    d = c // g * kh * kw
    h = np.zeros((g, d, d))
    step = max(1, chunk_rows // (oh * ow))  # whole samples at a time: slices, not gathers
    for start in range(0, n, step):
        part = win[start:start + step].astype(np.float64)  # (B, C, OH, OW, KH, KW)
        b = len(part)
        # (G, rows, d): a row per output position, its d = (C/G, KH, KW) inputs in the weights' order
        cols = part.reshape(b, g, c // g, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6).reshape(g, b * oh * ow, d)
        h += cols.transpose(0, 2, 1) @ cols
    return h


def _pointwise_hessian(node, x_q: np.ndarray, chunk_rows: int) -> np.ndarray:
    """input_hessian of an unpadded 1x1 conv: its patches are the input's channel vectors at the
    strided positions, so H per group is one product of the channel planes with themselves."""
    sh, sw = node.attrs["stride"]
    x = x_q[:, :, ::sh, ::sw]
    n, c, hh, ww = x.shape
    g = node.groups
    h = np.zeros((g, c // g, c // g))
    step = max(1, chunk_rows // (hh * ww))
    for start in range(0, n, step):
        part = np.asarray(x[start:start + step], dtype=np.float64)
        cols = part.reshape(len(part), g, c // g, hh * ww).transpose(1, 2, 0, 3).reshape(g, c // g, -1)
        h += cols @ cols.transpose(0, 2, 1)
    return h


def damped_inverse_factor(hessian: np.ndarray, damp: float) -> np.ndarray:
    """Upper Cholesky factor U of (H + damp * mean(diag H) * I)^-1, per group: (G, d, d).

    An input that is always zero has a zero row in H: a unit diagonal there makes H invertible and,
    its off-diagonal entries being zero, keeps that weight's error from spreading (it cannot matter)."""
    h = hessian.copy()
    idx = np.arange(h.shape[-1])
    diag = h[:, idx, idx]
    diag = np.where(diag == 0, 1.0, diag)
    h[:, idx, idx] = diag + damp * diag.mean(axis=1, keepdims=True)
    h_inv = np.linalg.inv(h)
    # numpy gives Hinv = L L^T with L lower, so U = L^T: its row i (from column i on) is Hinv's
    # row i after the columns before i were eliminated, scaled by 1/sqrt of its pivot.
    return np.linalg.cholesky(h_inv).transpose(0, 2, 1)


def error_feedback_round(w: np.ndarray, u: np.ndarray, lo: int, hi: int, pruned: np.ndarray | None = None,
                         block: int = BLOCK) -> np.ndarray:
    """Quantize w (G, R, d), grid units, column by column, spreading each column's error over the later ones.

    After rounding column i of every row, the remaining columns j > i move by -e * U[i, j] with
    e = (w_i - q_i) / U[i, i]: the least-squares compensation given H.  Inside a block the update is
    applied column by column; the block's accumulated effect on later columns is one batched matmul.
    Weights marked `pruned` are set to zero, their error compensated by the others like any rounding's."""
    w = w.copy()
    q = np.empty_like(w)
    d = w.shape[-1]
    for b0 in range(0, d, block):
        b1 = min(b0 + block, d)
        errs = np.empty(w.shape[:2] + (b1 - b0,))
        for i in range(b0, b1):
            # round half up (rule 4) on the grid, then the weight type's clamp
            q[:, :, i] = np.clip(np.floor(w[:, :, i] + 0.5), lo, hi)
            if pruned is not None:
                q[:, :, i][pruned[:, :, i]] = 0
            e = (w[:, :, i] - q[:, :, i]) / u[:, i, i][:, None]
            w[:, :, i + 1:b1] -= e[:, :, None] * u[:, None, i, i + 1:b1]
            errs[:, :, i - b0] = e
        if b1 < d:
            w[:, :, b1:] -= errs @ u[:, b0:b1, b1:]
    return q.astype(np.int64)


def accumulator_bounds(node, w_q: np.ndarray, in_bits: int, bias: np.ndarray | None = None) -> np.ndarray:
    """Per output channel: sum|w_q| * 2^(in_bits-1) + |b_q|, as WeightedOp.quantize proves the int32 bound."""
    bias = node.qparams.get("bias") if bias is None else bias
    b = 0 if bias is None else np.abs(np.asarray(bias, dtype=np.int64))
    return np.abs(w_q).reshape(len(w_q), -1).sum(axis=1) * (1 << (in_bits - 1)) + b


def keep_accumulator_bound(node, q: np.ndarray, nearest: np.ndarray, in_bits: int,
                           bias: np.ndarray | None = None) -> np.ndarray:
    """The channels whose new weights (and bias) could overflow the int32 accumulator take back their
    nearest rounding."""
    over = accumulator_bounds(node, q, in_bits, bias) > numerics.ACC_MAX
    return np.where(over[:, None], nearest, q)


def output_error(delta: np.ndarray, hessian: np.ndarray) -> float:
    """sum over rows of delta H delta^T = || delta X ||^2, delta (G, R, d) in real units."""
    return float(np.einsum("grd,gde,gre->", delta, hessian, delta, optimize=True))


def round_weights_if_better(graph: Graph, calib: np.ndarray, samples: int = 128) -> int:
    """round_weights, kept only if the model's output error on the calibration samples falls too.

    Each layer's own error always falls; the model's output error nearly always does, but not on
    every net (a layer's error can land where the next layers amplify it).  The calibration
    samples decide, so no model's output gets worse than with round-to-nearest."""
    import copy

    x = calib[:samples]
    reference = np.asarray(graph.run_float(x), dtype=np.float64)

    nearest = copy.deepcopy(graph)
    changed = round_weights(graph, calib)
    if changed and not simulate.output_error(graph, x, reference) < simulate.output_error(nearest, x, reference):
        graph.take_quantization(nearest)
        graph.notes.append("error-feedback weight rounding undone: the model's output error on the calibration "
                           "samples did not fall")
        return 0
    return changed

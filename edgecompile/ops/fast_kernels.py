"""What the fast C kernels (runtime_c/ec_*_fast.c) need from the code generator.

The manifest and the simulator keep the logical weights (output channel first,
PyTorch's order); only what emit_c writes changes: the weights in the packed
order the kernels read (described in runtime_c/ec_fast.h), declared 4-byte
aligned, with exactly as many bytes as the logical weights (so weight_bytes()
stays the flash figure), and one flag saying whether the rounding constant may
be folded into the accumulator.
"""
from __future__ import annotations

import numpy as np

INT32_MAX = 2**31 - 1
X_MAX = 128  # largest |x| of an int8 activation
# Order of the four values k0..k3 inside a packed word: SXTB16 of (k0, k2, k1, k3)
# gives the int16 pair (k0, k1), SXTB16 of the word rotated by 8 gives (k2, k3).
WORD_ORDER = (0, 2, 1, 3)
CONV_GROUP = 2  # output channels per pass of ec_conv2d_fast_s8
LINEAR_GROUP = 4  # rows per pass of ec_linear_fast_s8


def pack_rows(weight, group: int) -> np.ndarray:
    """(rows, K) int8 weights -> the packed byte stream of ec_fast.h: words of the first K - K % 4 values
    of each row in WORD_ORDER, rows interleaved word by word in groups of `group` (the rest one after
    another), then every row's K % 4 tail values."""
    w = np.asarray(weight, dtype=np.int8)
    w = w.reshape(w.shape[0], -1)
    rows, k = w.shape
    k4 = k - k % 4
    words = w[:, :k4].reshape(rows, k4 // 4, 4)[:, :, WORD_ORDER]
    full = rows - rows % group
    grouped = words[:full].reshape(full // group, group, k4 // 4, 4).transpose(0, 2, 1, 3)
    return np.concatenate([grouped.reshape(-1), words[full:].reshape(-1), w[:, k4:].reshape(-1)])


def round_folded(weight, bias, shifts) -> int:
    """1 when every row's accumulator stays within int32 after adding its rounding constant 2^(s-1)
    (sum |w| * 128 + |bias| + 2^(s-1) <= 2^31 - 1) and no shift is negative; else 0 (ec_fast.h)."""
    w = np.asarray(weight, dtype=np.int64)
    w = w.reshape(w.shape[0], -1)
    s = np.broadcast_to(np.asarray(shifts, dtype=np.int64), (w.shape[0],))
    b = np.abs(np.asarray(bias, dtype=np.int64)) if bias is not None else 0
    rounding = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
    bound = np.abs(w).sum(axis=1) * X_MAX + b + rounding
    return int(bool(np.all(s >= 0) and np.all(bound <= INT32_MAX)))


def conv_scratch_bytes(out_c: int, k: int) -> int:
    """EC_CONV2D_FAST_SCRATCH in runtime_c/ec_conv2d_fast.h."""
    return 4 * out_c + 4 * k + 4 * (k & ~3) + 16


def linear_scratch_bytes(k: int) -> int:
    """EC_LINEAR_FAST_SCRATCH in runtime_c/ec_linear_fast.h."""
    return 2 * k


def weighted_args(node, em, group: int) -> str:
    """C arguments of a fast conv/linear kernel after the input geometry: packed weight, bias,
    shift array and per-channel flag, then (the caller adds them) ... act_min, act_max, round_folded."""
    q = node.qparams
    w = em.const_array(f"{node.name}_weight", "int8_t", pack_rows(q["weight"], group), align=4)
    _, b, s, clamp = node.emit_requant_args(em, emit_weight=False)
    return w, b, s, f"{clamp}, {round_folded(q['weight'], q.get('bias'), node.channel_shifts())}"

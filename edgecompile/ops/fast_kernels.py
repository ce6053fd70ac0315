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
# Order of the four values k0..k3 inside a packed word.  Conv2d: SXTB16 of (k0, k2, k1, k3)
# gives the int16 pair (k0, k1), SXTB16 of the word rotated by 8 gives (k2, k3), matching
# the int16 columns (x0, x1), (x2, x3).  Linear reads the int8 input words themselves, whose
# SXTB16 pairs are (x0, x2), (x1, x3): its weight words keep the natural order.
WORD_ORDER = (0, 2, 1, 3)
LINEAR_WORD_ORDER = (0, 1, 2, 3)
CONV_GROUP = 2  # output channels per pass of ec_conv2d_fast_s8
LINEAR_GROUP = 4  # rows per pass of ec_linear_fast_s8


def pack_rows(weight, group: int, paired_tails: bool = False, word_order=WORD_ORDER) -> np.ndarray:
    """(rows, K) int8 weights -> the packed byte stream of runtime_c/ec_fast.h: words of the first
    K - K % 4 values of each row in `word_order`, rows interleaved word by word in groups of `group`
    (the rest one after another), then the K % 4 tail values: row by row, or with `paired_tails`
    (conv2d) by pairs of rows (a, b), the words (a_k0, b_k0, a_k1, b_k1) when K % 4 >= 2, then the
    halfwords (a_kl, b_kl) of the last tail value when K % 4 is odd, then the odd last row's values."""
    w = np.asarray(weight, dtype=np.int8)
    w = w.reshape(w.shape[0], -1)
    rows, k = w.shape
    k4 = k - k % 4
    words = w[:, :k4].reshape(rows, k4 // 4, 4)[:, :, list(word_order)]
    full = rows - rows % group
    grouped = words[:full].reshape(full // group, group, k4 // 4, 4).transpose(0, 2, 1, 3)
    tails = w[:, k4:]
    parts = [grouped.reshape(-1), words[full:].reshape(-1)]
    if paired_tails:
        pairs = rows - rows % 2
        a, b = tails[0:pairs:2], tails[1:pairs:2]
        if k % 4 >= 2:
            parts.append(np.stack([a[:, 0], b[:, 0], a[:, 1], b[:, 1]], axis=1).reshape(-1))
        if k % 2:
            parts.append(np.stack([a[:, -1], b[:, -1]], axis=1).reshape(-1))
        tails = tails[pairs:]
    return np.concatenate(parts + [tails.reshape(-1)])


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


def is_pointwise(kernel, pads) -> bool:
    """A 1x1 convolution without padding: ec_conv2d_1x1_fast_s8's case."""
    return tuple(kernel) == (1, 1) and not any(pads)


def pointwise_scratch_bytes(in_c: int, out_c: int) -> int:
    """ec_conv2d_1x1_fast_scratch in runtime_c/ec_conv2d_fast.c: accumulators and the columns of two pixels."""
    return 12 * out_c + 4 * (in_c & ~3) + 16


def conv_scratch_bytes(in_shape, out_shape, kernel, stride, pads) -> int:
    """ec_conv2d_fast_scratch in runtime_c/ec_conv2d_fast.c: (in_c, in_h, in_w), (out_c, out_h, out_w),
    (k_h, k_w), (stride_h, stride_w), (pad_top, pad_left, ...)."""
    (in_c, in_h, in_w), (out_c, out_h, out_w), (k_h, k_w), (s_h, s_w) = in_shape, out_shape, kernel, stride
    k = in_c * k_h * k_w
    fixed = pointwise_scratch_bytes(k, out_c) + 4 * k  # + the tap offsets
    width = (out_w - 1) * s_w + k_w
    rows = k_h + (s_h if out_w % 2 and out_h > 1 else 0)
    if pads[0] == 0 and pads[1] == 0 and (out_h - 1) * s_h + k_h <= in_h and width <= in_w:
        return fixed
    return fixed + (in_c * rows * width + 3) // 4 * 4


def grouped_scratch_bytes(in_c: int, groups: int, out_shape, kernel, stride, dilation) -> int:
    """ec_conv2d_grouped_fast_scratch in runtime_c/ec_depthwise_fast.c: for a depthwise layer (in_c = groups)
    the padded input plane its windows read (its border holds the pad value), with an even number of
    outputs per row; else 0."""
    (_, out_h, out_w), (k_h, k_w), (s_h, s_w), (d_h, d_w) = out_shape, kernel, stride, dilation
    if in_c != groups:
        return 0
    rows = (out_h - 1) * s_h + (k_h - 1) * d_h + 1
    width = (out_w + out_w % 2 - 1) * s_w + (k_w - 1) * d_w + 1
    return (rows * width + 3) // 4 * 4


def weighted_args(node, em, group: int, paired_tails: bool = False,
                  word_order=WORD_ORDER) -> tuple[str, str, str, str]:
    """C arguments of a fast conv/linear kernel: the packed weight array (emitted aligned), the bias
    array or a null pointer, "shift array, per-channel flag" and "act_min, act_max, round_folded"."""
    q = node.qparams
    packed = pack_rows(q["weight"], group, paired_tails, word_order)
    w = em.const_array(f"{node.name}_weight", "int8_t", packed, align=4)
    _, b, s, clamp = node.emit_requant_args(em, emit_weight=False)
    return w, b, s, f"{clamp}, {round_folded(q['weight'], q.get('bias'), node.channel_shifts())}"

"""Layers that write their output over their own input: how far below it the output may start.

A kernel works in steps (a pair of output pixels, a channel plane, ...).  In every step it
first reads what that step needs (into im2col columns, a padded plane or registers), then
writes that step's outputs.  Let `written[a]` be the step that writes output byte a and
`last_read[b]` the last step that reads input byte b.  With the output placed `gap` bytes
below the input (output offset = input offset - gap), output byte a lies on input byte
a - gap, and writing it is safe when no later step reads that byte:

    written[a] >= last_read[a - gap]    for every a with 0 <= a - gap < input bytes.

(Equal steps are safe: a step's reads come before its writes.)  The orders below describe
the kernels of runtime_c conservatively: a byte a step may read counts as read then, so
an order may claim a later last read than the kernel's, never an earlier one.  Kernels
that run on several cores (portable, DSP, Helium) each give their order; the gap must be
safe for all of them, since the arena plan is part of the portable C.

Bytes here are int8 elements in the runtime's channel-major layout (C, H, W).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AccessOrder:
    written: np.ndarray  # int64 per output byte: the step that writes it
    last_read: np.ndarray  # int64 per input byte: the last step that reads it (-1: never read)


def is_safe(order: AccessOrder, gap: int) -> bool:
    """Whether the output may start `gap` bytes below the input (the rule above)."""
    if gap < 0:
        return False
    n = min(order.written.size - gap, order.last_read.size)
    if n <= 0:
        return True
    return bool(np.all(order.written[gap:gap + n] >= order.last_read[:n]))


def smallest_gap(orders: list[AccessOrder]) -> int:
    """The smallest gap safe for every order (the output's size is always safe: no overlap).

    Safety need not grow with the gap (a pointwise layer's output is safe exactly over its input,
    not one byte lower), so a bisection only proposes a candidate: the answer is the candidate if
    it is safe by the exact rule, else no overlap at all.  The plan places an overlapping output
    exactly this gap below its input."""
    if not orders:
        raise ValueError("no access order")
    no_overlap = max(int(o.written.size) for o in orders)

    def ok(gap: int) -> bool:
        return all(is_safe(o, gap) for o in orders)

    if ok(0):
        return 0
    lo, hi = 0, no_overlap  # ok(lo) is False, ok(hi) is True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _window_last_pixel(in_hw, out_hw, kernel, stride, pads, step_of_pixel, widen: int = 0) -> np.ndarray:
    """Per input pixel, the last step (of `step_of_pixel`, per output pixel) whose window covers
    it (-1: none).  `widen` extends each window row by that many bytes on both sides in the
    flattened plane (a kernel that loads the byte before or after a row and multiplies it by 0)."""
    (ih, iw), (oh, ow) = in_hw, out_hw
    kh, kw = kernel
    sh, sw = stride
    pt, pl = pads[0], pads[1]
    last = np.full(ih * iw, -1, dtype=np.int64)
    oy, ox = np.divmod(np.arange(oh * ow), ow)
    steps = np.asarray(step_of_pixel, dtype=np.int64)
    for ky in range(kh):
        iy = oy * sh - pt + ky
        for kx in range(-widen, kw + widen):
            flat = iy * iw + ox * sw - pl + kx
            if widen:  # flat positions of the plane (a row's neighbours included)
                inside = (iy >= 0) & (iy < ih) & (flat >= 0) & (flat < ih * iw)
            else:
                ix = ox * sw - pl + kx
                inside = (iy >= 0) & (iy < ih) & (ix >= 0) & (ix < iw)
            np.maximum.at(last, flat[inside], steps[inside])
    return last


def pixel_pair_order(in_shape, out_shape, kernel, stride, pads) -> AccessOrder:
    """ec_conv2d_fast_s8 and ec_conv2d_1x1_fast_s8 (portable, DSP and Helium): output pixels in
    raster order, two per step; a step gathers both pixels' windows over all input channels
    into its columns, then writes both pixels of every output channel.  (A padded band that
    ec_conv2d_fast_s8 copies at a row's first pair holds windows of that row and the next,
    read no later than the windows' own steps.)"""
    (c, ih, iw), (oc, oh, ow) = in_shape, out_shape
    step = np.arange(oh * ow) // 2
    last = _window_last_pixel((ih, iw), (oh, ow), kernel, stride, pads, step)
    return AccessOrder(written=np.tile(step, oc), last_read=np.tile(last, c))


def plane_order(in_shape, out_shape) -> AccessOrder:
    """ec_conv2d_grouped_fast_s8 on a depthwise layer (portable and DSP): one channel per step;
    the step copies the channel's input plane into its padded plane, then writes the output
    plane."""
    (c, ih, iw), (oc, oh, ow) = in_shape, out_shape
    return AccessOrder(written=np.repeat(np.arange(oc), oh * ow), last_read=np.repeat(np.arange(c), ih * iw))


def channel_group_order(in_shape, out_shape, kernel, stride, pads, group: int = 4, widen: int = 1) -> AccessOrder:
    """ec_depthwise_mve_s8 (Helium): `group` channels at a time, their output pixels in raster
    order; a step reads one output pixel's window in each of the group's planes (and the `widen`
    bytes just before and after each window row, which its border code loads with a zero
    weight), then writes that pixel of the group's output planes.  With group 1 and no widening:
    the pooling kernels."""
    (c, ih, iw), (oc, oh, ow) = in_shape, out_shape
    pixels = oh * ow
    last = _window_last_pixel((ih, iw), (oh, ow), kernel, stride, pads, np.arange(pixels), widen=widen)
    groups = np.arange(c) // group
    written = (groups[:, None] * pixels + np.arange(pixels)[None, :]).reshape(-1)
    last_read = np.where(last[None, :] >= 0, groups[:, None] * pixels + last[None, :], -1).reshape(-1)
    return AccessOrder(written=written, last_read=last_read)

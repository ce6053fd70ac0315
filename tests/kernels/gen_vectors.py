"""Test vectors for the fast kernels (runtime_c/ec_*_fast.c) against the reference ones.

Each case is a random layer: shapes (odd channel counts, K not a multiple of 4,
in_c = 1, 1x1 and non-square kernels, padding on each side, strides 1-3; pointwise
convolutions for the 1x1 kernel), the code the padding reads (pad_value: 0 for signed
codes, -128 for unsigned ReLU codes, or any other int8), int8
weights and inputs (uniform, or at the extremes -128/127, or mostly zero), an
optional bias, one shift or one per channel (positive, zero, negative, up to 31),
a clamp (none, ReLU, ReLU6-like, an arbitrary range) and the round_folded flag
the code generator would pass (sometimes forced to 0).  Every case satisfies the
contract the compiler proves (|bias| + sum |w| * 128 <= 2^31 - 1); some sit
right at that bound, where folding the rounding constant is refused.
The packed weights come from the code generator's own function
(edgecompile.ops.fast_kernels.pack_rows), so the test covers what export writes.

tests/kernels/harness.c reads the file this writes, runs both kernels on every
case and compares every output byte.

    python tests/kernels/gen_vectors.py cases.bin [--seed N] [--count N] [--max-bytes N]

Binary format (little-endian): per case 31 int32 header fields (HEADER below),
then the arrays input (int8, placed `misalign` bytes past a word boundary by the
harness), the second operand (int8) of an add or a mul, weight (int8, logical order),
packed weight (int8), bias (int32, out_c values when has_bias), shift (int8, out_c or
1 values) for the weighted layers, a dual linear's activation table (256 int8, when its
`groups` field is 1), and, when `expected` is set, the simulator's output (int8: adds,
muls, dual linears, and average pools with zero-point offsets), each padded with zeros to
a multiple of 4 bytes.  A dual linear (a recurrent cell's gates, ec_dual_linear_s8 against
ec_dual_linear_fast_s8): in_c = na, in_h = nb, the input is a then b, the weights Wa then
Wb (packed: each packed on its own, Wa's padded to a multiple of 4 bytes), down_a and
down_b in stride_h and stride_w, shift_out in scale_shift.  A gated linear (a GRU's n gate,
ec_gated_linear_s8 against ec_gated_linear_fast_s8) is laid out the same way, its input a, b, then the
gate g (out_c values), its bias bias_a then bias_b (2 out_c values), down_a and down_p in stride_h
and stride_w, shift_b in pad_top.  A lerp (a GRU's update, ec_lerp_s8 against ec_lerp_mve_s8): in_c
elements, the input a, b then g, shift_a, shift_b, shift_g in stride_h, stride_w, pad_top, shift_out in
scale_shift.  The harness compares the reference kernel
with that expected output too, so those cases check simulator == reference == fast.
"""
from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from edgecompile.ops.fast_kernels import (CONV_GROUP, LINEAR_GROUP, LINEAR_WORD_ORDER,  # noqa: E402
                                          conv_scratch_bytes, grouped_scratch_bytes, pack_rows,
                                          pointwise_scratch_bytes, round_folded)

OPS = {"conv": 1, "linear": 2, "maxpool": 3, "avgpool": 4, "pointwise": 5, "grouped": 6, "add": 7, "linear16": 8,
       "dual": 9, "mul": 10, "gated": 11, "lerp": 12}
HEADER = ("op", "in_c", "in_h", "in_w", "out_c", "k_h", "k_w", "stride_h", "stride_w", "pad_top", "pad_left",
          "out_h", "out_w", "act_min", "act_max", "per_channel", "has_bias", "folded", "include_pad",
          "scale_shift", "scratch", "misalign", "dilation_h", "dilation_w", "groups", "offset", "zero_a", "zero_b",
          "zero_y", "pad_value", "expected")
INT32_MAX = 2**31 - 1
# Buffer sizes of harness.c (EC_MAX_*): every case fits them (the M0+ machine has 16 KiB of RAM).
DEFAULT_MAX_BYTES = 1536
MAX_SCRATCH = 2048
MAX_CHANNELS = 128
CLAMPS = ((-128, 127), (0, 127), (0, 96), (-37, 60), (5, 5))
CLAMPS16 = ((-32768, 32767), (0, 32767), (-3000, 1200), (-128, 127), (5, 5))  # int16 outputs


def out_size(size: int, k: int, stride: int, before: int, after: int) -> int:
    return (size + before + after - k) // stride + 1


def _values(rng, shape, style: str) -> np.ndarray:
    if style == "extreme":
        return rng.choice(np.array([-128, 127], dtype=np.int8), size=shape)
    if style == "min":
        return np.full(shape, -128, dtype=np.int8)
    if style == "max":
        return np.full(shape, 127, dtype=np.int8)
    if style == "sparse":
        v = rng.integers(-128, 128, size=shape).astype(np.int8)
        v[rng.random(shape) < 0.8] = 0
        return v
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def _pad_value(rng) -> int:
    """The code a convolution's padding reads (its input's zero point): 0 (signed codes), -128
    (unsigned ReLU codes), or any int8 (the kernels take any).  make_cases draws it from a
    generator of its own, so that the layers themselves stay those of the same seed before
    pad values existed."""
    r = rng.random()
    return 0 if r < 0.4 else -128 if r < 0.7 else int(rng.integers(-128, 128))


def _requant(rng, case: dict, weight: np.ndarray) -> dict:
    """Bias, shifts, clamp and folding for a conv/linear case with these weights."""
    out_c = weight.shape[0]
    sums = np.abs(weight.astype(np.int64)).reshape(out_c, -1).sum(axis=1) * 128
    room = INT32_MAX - sums  # largest |bias| the accumulator bound allows
    per_channel = int(rng.random() < 0.5)
    kind = rng.choice(["small", "mid", "large", "negative", "zero", "edge"])
    lo_s, hi_s = {"small": (1, 8), "mid": (8, 20), "large": (20, 32), "negative": (-8, 0), "zero": (0, 1),
                  "edge": (1, 32)}[kind]
    shift = rng.integers(lo_s, hi_s, size=out_c if per_channel else 1).astype(np.int8)
    if kind == "negative" and rng.random() < 0.5:
        shift[rng.integers(0, shift.size)] = -23  # the quantizer's limit is -(31 - 8)
    has_bias = int(rng.random() < 0.8)
    bias = None
    if has_bias:
        scale = {"small": 2**10, "mid": 2**20, "large": 2**30, "negative": 2**8, "zero": 2**12, "edge": 2**31}[kind]
        bias = rng.integers(-scale, scale, size=out_c, dtype=np.int64)
        if kind == "edge":  # |bias| + sum |w| * 128 == INT32_MAX exactly, in some rows: folding is refused
            edge = rng.random(out_c) < 0.5
            bias[edge] = room[edge] * rng.choice([-1, 1], size=int(edge.sum()))
        bias = np.clip(bias, -room, room).astype(np.int32)
    lo, hi = CLAMPS[rng.integers(0, len(CLAMPS))]
    folded = round_folded(weight, bias, shift)
    if rng.random() < 0.15:
        folded = 0  # the exact path is legal everywhere
    case.update(act_min=lo, act_max=hi, per_channel=per_channel, has_bias=has_bias, folded=folded,
                bias=bias, shift=shift)
    return case


def conv_case(rng, max_bytes: int, max_scratch: int = MAX_SCRATCH, pad_rng=None) -> dict | None:
    in_c = int(rng.choice([1, 1, 2, 3, 4, 5, 6, 7, 8, 16]))
    k_h, k_w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    if rng.random() < 0.3:
        k_h = k_w = int(rng.choice([1, 3]))
    stride_h, stride_w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    pads = [int(rng.integers(0, k)) if rng.random() < 0.5 else 0 for k in (k_h, k_w, k_h, k_w)]
    side = 13 if max_bytes <= DEFAULT_MAX_BYTES else 40
    in_h, in_w = int(rng.integers(1, side)), int(rng.integers(1, side))
    if in_h + pads[0] + pads[2] < k_h or in_w + pads[1] + pads[3] < k_w:
        return None
    out_c = int(rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 16] + ([31, 64] if max_bytes > DEFAULT_MAX_BYTES else [])))
    out_h = out_size(in_h, k_h, stride_h, pads[0], pads[2])
    out_w = out_size(in_w, k_w, stride_w, pads[1], pads[3])
    k = in_c * k_h * k_w
    scratch = conv_scratch_bytes((in_c, in_h, in_w), (out_c, out_h, out_w), (k_h, k_w), (stride_h, stride_w), pads)
    if max(in_c * in_h * in_w, out_c * k, out_c * out_h * out_w) > max_bytes or scratch > max_scratch:
        return None
    style = rng.choice(["uniform", "uniform", "extreme", "min", "sparse"])
    weight = _values(rng, (out_c, in_c, k_h, k_w), style)
    x = _values(rng, (in_c, in_h, in_w), rng.choice(["uniform", "uniform", "extreme", "min"]))
    case = dict(op="conv", in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, k_h=k_h, k_w=k_w, stride_h=stride_h,
                stride_w=stride_w, pad_top=pads[0], pad_left=pads[1], pad_value=_pad_value(pad_rng or rng),
                out_h=out_h, out_w=out_w, input=x, weight=weight,
                packed=pack_rows(weight.reshape(out_c, -1), CONV_GROUP, paired_tails=True), scratch=scratch)
    return _requant(rng, case, weight)


def pointwise_case(rng, max_bytes: int, max_scratch: int = MAX_SCRATCH) -> dict | None:
    """A 1x1 convolution without padding, for ec_conv2d_1x1_fast_s8 (stride 1 mostly, as in
    MobileNets; 2 and 3 as in ResNet shortcuts)."""
    in_c = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 13, 16, 24, 32] + ([64, 96] if max_bytes > DEFAULT_MAX_BYTES else [])))
    out_c = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 16, 24] + ([31, 64] if max_bytes > DEFAULT_MAX_BYTES else [])))
    stride_h, stride_w = (1, 1) if rng.random() < 0.6 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    side = 13 if max_bytes <= DEFAULT_MAX_BYTES else 40
    in_h, in_w = int(rng.integers(1, side)), int(rng.integers(1, side))
    out_h, out_w = out_size(in_h, 1, stride_h, 0, 0), out_size(in_w, 1, stride_w, 0, 0)
    scratch = pointwise_scratch_bytes(in_c, out_c)
    if max(in_c * in_h * in_w, out_c * in_c, out_c * out_h * out_w) > max_bytes or scratch > max_scratch:
        return None
    weight = _values(rng, (out_c, in_c, 1, 1), rng.choice(["uniform", "uniform", "extreme", "min", "sparse"]))
    x = _values(rng, (in_c, in_h, in_w), rng.choice(["uniform", "uniform", "extreme", "min"]))
    case = dict(op="pointwise", in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, k_h=1, k_w=1, stride_h=stride_h,
                stride_w=stride_w, out_h=out_h, out_w=out_w, input=x, weight=weight,
                packed=pack_rows(weight.reshape(out_c, -1), CONV_GROUP, paired_tails=True), scratch=scratch,
                misalign=int(rng.choice([0, 0, 1, 2, 3])))
    return _requant(rng, case, weight)


def grouped_case(rng, max_bytes: int, max_scratch: int = MAX_SCRATCH, pad_rng=None) -> dict | None:
    """A depthwise (mostly) or grouped convolution, for ec_conv2d_grouped_fast_s8: channel counts
    that are no multiple of 4, channel multipliers > 1, 3x3 (the specialized path) and other kernels,
    strides 1-3, padding on each side, dilation; weights in their logical order (nothing packed)."""
    groups = int(rng.choice([1, 2, 3, 5, 7, 8, 13]))
    c_per_group = 1 if rng.random() < 0.75 else int(rng.choice([2, 3]))
    multiplier = int(rng.choice([1, 1, 1, 2, 3]))
    in_c, out_c = groups * c_per_group, groups * multiplier
    k_h, k_w = (3, 3) if rng.random() < 0.6 else (int(rng.integers(1, 6)), int(rng.choice([1, 2, 4, 5, 7])))
    stride_h, stride_w = (1, 1) if rng.random() < 0.4 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dil_h, dil_w = (1, 1) if rng.random() < 0.7 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    span_h, span_w = (k_h - 1) * dil_h + 1, (k_w - 1) * dil_w + 1
    pads = [int(rng.integers(0, k)) if rng.random() < 0.6 else 0 for k in (span_h, span_w, span_h, span_w)]
    side = 13 if max_bytes <= DEFAULT_MAX_BYTES else 40
    in_h, in_w = int(rng.integers(1, side)), int(rng.integers(1, side))
    if in_h + pads[0] + pads[2] < span_h or in_w + pads[1] + pads[3] < span_w:
        return None
    out_h = (in_h + pads[0] + pads[2] - span_h) // stride_h + 1
    out_w = (in_w + pads[1] + pads[3] - span_w) // stride_w + 1
    scratch = grouped_scratch_bytes(in_c, groups, (out_c, out_h, out_w), (k_h, k_w), (stride_h, stride_w),
                                    (dil_h, dil_w))
    if max(in_c * in_h * in_w, out_c * c_per_group * k_h * k_w, out_c * out_h * out_w) > max_bytes \
            or scratch > max_scratch:
        return None
    weight = _values(rng, (out_c, c_per_group, k_h, k_w), rng.choice(["uniform", "uniform", "extreme", "min",
                                                                      "sparse"]))
    x = _values(rng, (in_c, in_h, in_w), rng.choice(["uniform", "uniform", "extreme", "min", "max"]))
    case = dict(op="grouped", in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, k_h=k_h, k_w=k_w, stride_h=stride_h,
                stride_w=stride_w, pad_top=pads[0], pad_left=pads[1], pad_value=_pad_value(pad_rng or rng),
                out_h=out_h, out_w=out_w, input=x, weight=weight, packed=weight.reshape(-1), scratch=scratch,
                dilation_h=dil_h, dilation_w=dil_w, groups=groups, misalign=int(rng.choice([0, 0, 1, 2, 3])))
    return _requant(rng, case, weight)


def depthwise_case(rng, max_bytes: int, max_scratch: int = MAX_SCRATCH, pad_rng=None) -> dict | None:
    """A depthwise convolution (groups = in_c = out_c, no dilation: the layers the Helium kernel
    takes on cores with MVE) for ec_conv2d_grouped_fast_s8: channel counts around the vector width
    of 4 (1-9, 13, 16), 3x3 mostly, strides 1-2, padding on each side."""
    channels = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 13, 16]))
    k_h, k_w = (3, 3) if rng.random() < 0.6 else (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    stride_h, stride_w = (1, 1) if rng.random() < 0.5 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pads = [int(rng.integers(0, k)) if rng.random() < 0.7 else 0 for k in (k_h, k_w, k_h, k_w)]
    in_h, in_w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    if in_h + pads[0] + pads[2] < k_h or in_w + pads[1] + pads[3] < k_w:
        return None
    out_h = out_size(in_h, k_h, stride_h, pads[0], pads[2])
    out_w = out_size(in_w, k_w, stride_w, pads[1], pads[3])
    scratch = grouped_scratch_bytes(channels, channels, (channels, out_h, out_w), (k_h, k_w), (stride_h, stride_w),
                                    (1, 1))
    if max(channels * in_h * in_w, channels * out_h * out_w, channels * k_h * k_w) > max_bytes \
            or scratch > max_scratch:
        return None
    weight = _values(rng, (channels, 1, k_h, k_w), rng.choice(["uniform", "uniform", "extreme", "min", "sparse"]))
    x = _values(rng, (channels, in_h, in_w), rng.choice(["uniform", "uniform", "extreme", "min"]))
    case = dict(op="grouped", in_c=channels, in_h=in_h, in_w=in_w, out_c=channels, k_h=k_h, k_w=k_w,
                stride_h=stride_h, stride_w=stride_w, pad_top=pads[0], pad_left=pads[1],
                pad_value=_pad_value(pad_rng or rng), out_h=out_h, out_w=out_w, input=x, weight=weight,
                packed=weight.reshape(-1), scratch=scratch, dilation_h=1, dilation_w=1, groups=channels,
                misalign=int(rng.choice([0, 0, 1, 3])))
    return _requant(rng, case, weight)


def linear_case(rng, max_bytes: int) -> dict | None:
    in_f = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 64, 100, 257]))
    out_f = int(rng.integers(1, 41))
    if out_f * in_f > max_bytes:
        return None
    style = rng.choice(["uniform", "uniform", "extreme", "min", "sparse"])
    weight = _values(rng, (out_f, in_f), style)
    x = _values(rng, (in_f,), rng.choice(["uniform", "uniform", "extreme", "min"]))
    case = dict(op="linear", in_c=in_f, in_h=1, in_w=1, out_c=out_f, input=x, weight=weight,
                packed=pack_rows(weight, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER),
                misalign=int(rng.choice([0, 0, 1, 2, 3])))
    case = _requant(rng, case, weight)
    if rng.random() < 1 / 3:  # an int16 output (a model's logits): 16-bit clamps, left shifts to -(31 - 16)
        lo, hi = CLAMPS16[rng.integers(0, len(CLAMPS16))]
        case.update(op="linear16", act_min=lo, act_max=hi, shift=np.maximum(case["shift"], -15).astype(np.int8))
        case["folded"] = min(case["folded"], round_folded(weight, case["bias"], case["shift"]))
    return case


def pool_case(rng, max_bytes: int, op: str) -> dict | None:
    k_h, k_w = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    if rng.random() < 0.4:
        k_h = k_w = 2
    if op == "avgpool" and rng.random() < 0.25:  # global average pooling: one window per plane
        channels, in_h, in_w = int(rng.integers(1, 9)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
        if channels * in_h * in_w > max_bytes:
            return None
        x = _values(rng, (channels, in_h, in_w), rng.choice(["uniform", "uniform", "extreme", "min", "max"]))
        return dict(op=op, in_c=channels, in_h=in_h, in_w=in_w, out_c=channels, k_h=in_h, k_w=in_w,
                    stride_h=1, stride_w=1, out_h=1, out_w=1, input=x, include_pad=int(rng.random() < 0.5),
                    scale_shift=int(rng.choice([0, 0, 1, 3])))
    stride_h, stride_w = (k_h, k_w) if rng.random() < 0.5 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    pads = [int(rng.integers(0, k)) if rng.random() < 0.4 else 0 for k in (k_h, k_w, k_h, k_w)]
    channels, in_h, in_w = int(rng.integers(1, 9)), int(rng.integers(1, 14)), int(rng.integers(1, 14))
    if in_h + pads[0] + pads[2] < k_h or in_w + pads[1] + pads[3] < k_w:
        return None
    out_h = out_size(in_h, k_h, stride_h, pads[0], pads[2])
    out_w = out_size(in_w, k_w, stride_w, pads[1], pads[3])
    # Every window must hold an input (ec_pool2d.h): the last one starts inside.
    if (out_h - 1) * stride_h - pads[0] >= in_h or (out_w - 1) * stride_w - pads[1] >= in_w:
        return None
    if max(channels * in_h * in_w, channels * out_h * out_w) > max_bytes:
        return None
    x = _values(rng, (channels, in_h, in_w), rng.choice(["uniform", "uniform", "extreme", "min"]))
    window = k_h * k_w
    k_max = 0  # AvgPool2d.quantize's headroom rule: 2 * 128 * window * 2^k + window < 2^31
    while (2 * 128 * window << (k_max + 1)) + window < INT32_MAX:
        k_max += 1
    scale_shift = int(rng.choice([0, 0, 1, 3, k_max])) if op == "avgpool" else 0
    return dict(op=op, in_c=channels, in_h=in_h, in_w=in_w, out_c=channels, k_h=k_h, k_w=k_w, stride_h=stride_h,
                stride_w=stride_w, pad_top=pads[0], pad_left=pads[1], out_h=out_h, out_w=out_w, input=x,
                include_pad=int(rng.random() < 0.5), scale_shift=scale_shift)


def wide_pool_case(rng, max_bytes: int, op: str) -> dict | None:
    """Pooling over long runs (16 values or more): global pooling (the window is the whole plane, narrow
    ones included), whole-row windows, and wide windows inside longer rows, with lengths that are not
    multiples of 16."""
    kind = rng.choice(["global", "rows", "inside"])
    channels, in_h = int(rng.integers(1, 5)), int(rng.integers(1, 30))
    in_w = int(rng.integers(16, 48)) if kind == "inside" else int(rng.integers(2, 48))  # narrow planes: 25x5
    k_h = in_h if kind == "global" else int(rng.integers(1, in_h + 1))
    k_w = in_w if kind != "inside" else int(rng.integers(16, in_w + 1))
    stride_h, stride_w = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    out_h, out_w = out_size(in_h, k_h, stride_h, 0, 0), out_size(in_w, k_w, stride_w, 0, 0)
    if max(channels * in_h * in_w, channels * out_h * out_w) > max_bytes:
        return None
    x = _values(rng, (channels, in_h, in_w), rng.choice(["uniform", "uniform", "extreme", "min"]))
    window = k_h * k_w
    k_max = 0  # as pool_case
    while (2 * 128 * window << (k_max + 1)) + window < INT32_MAX:
        k_max += 1
    scale_shift = int(rng.choice([0, 1, k_max])) if op == "avgpool" else 0
    return dict(op=op, in_c=channels, in_h=in_h, in_w=in_w, out_c=channels, k_h=k_h, k_w=k_w, stride_h=stride_h,
                stride_w=stride_w, pad_top=0, pad_left=0, out_h=out_h, out_w=out_w, input=x,
                include_pad=int(rng.random() < 0.5), scale_shift=scale_shift)


def simulate_add(case: dict) -> np.ndarray:
    """What the compiler's simulator (ops/add.py Add.run_int) computes for an add case."""
    from edgecompile.ops.add import Add

    add = Add("add", ["a", "b"], ["y"], attrs={"act": None})
    add.qattrs = {"mult_a": case["stride_h"], "shift_a": case["stride_w"], "mult_b": case["pad_top"],
                  "shift_b": case["pad_left"], "shift_out": case["scale_shift"], "zero_a": case.get("zero_a", 0),
                  "zero_b": case.get("zero_b", 0), "zero_y": case.get("zero_y", 0), "act_min": case["act_min"],
                  "act_max": case["act_max"]}
    return add.run_int(None, np.asarray(case["input"], np.int64), np.asarray(case["second"], np.int64))


def simulate_avgpool(case: dict) -> np.ndarray:
    """What the simulator (ops/pool2d.py AvgPool2d.run_int) computes for an unpadded average pool case."""
    from edgecompile.ops.pool2d import AvgPool2d

    pool = AvgPool2d("pool", ["x"], ["y"], attrs={"kernel": [case["k_h"], case["k_w"]],
                                                  "stride": [case["stride_h"], case["stride_w"]],
                                                  "pads": [0, 0, 0, 0], "count_include_pad": bool(case["include_pad"])})
    pool.qattrs = {"scale_shift": case["scale_shift"], "offset": case.get("offset", 0), "act_min": -128,
                   "act_max": 127}
    return pool.run_int(None, np.asarray(case["input"], np.int64)[None])[0]


ZERO_POINTS = (0, -128, 37)  # signed codes, unsigned codes, a zero point placed by a tensor's range (numerics.py)


def _holding_zero(lo: int, hi: int, zy: int) -> tuple[int, int]:
    """Code-space clamp bounds whose value-space clamp holds 0 (ec_elementwise.h): lo <= z_y <= hi."""
    return (lo, hi) if not zy else (min(lo, zy), max(hi, min(zy + 1, 127)))


def add_case(rng, max_bytes: int) -> dict:
    """A weighted add (ec_add_s8): sizes not multiples of 4, multipliers +-1 or with 14 frac bits,
    zero points 0 or -128 on each operand and the output, alignment shifts of either sign within
    the compiler's bound |(x - z) * mult| * 2^shift < 2^30, output shifts from -8 to 31 (ties and
    negative values round half up), and the clamps (code space).  The simulator's result rides
    along as the expected output."""
    size = int(rng.integers(1, max_bytes + 1)) if rng.random() < 0.5 else int(rng.integers(1, 40))
    params, zeros = [], [int(rng.choice(ZERO_POINTS)) for _ in range(3)]
    for z in zeros[:2]:
        mult = int(rng.choice([1, -1])) if rng.random() < 0.5 else int(rng.integers(-2**15, 2**15 + 1))
        span = 256 if z else 128  # |x - z| <= 255 for any zero point
        room = int(np.floor(np.log2(2**30 / (span * max(abs(mult), 1))))) - 1  # largest exact left shift
        params += [mult, int(rng.integers(-31, room + 1))]
    lo, hi = CLAMPS[rng.integers(0, len(CLAMPS))]
    lo, hi = _holding_zero(lo, hi, zeros[2])
    a = _values(rng, (size,), rng.choice(["uniform", "uniform", "extreme", "min"]))
    b = _values(rng, (size,), rng.choice(["uniform", "extreme", "min"]))
    case = dict(op="add", in_c=size, in_h=1, in_w=1, out_c=1, input=a, second=b, stride_h=params[0],
                stride_w=params[1], pad_top=params[2], pad_left=params[3], scale_shift=int(rng.integers(-8, 32)),
                act_min=lo, act_max=hi, misalign=int(rng.choice([0, 0, 1, 2, 3])), zero_a=zeros[0],
                zero_b=zeros[1], zero_y=zeros[2])
    return dict(case, expected=1, output=simulate_add(case))


def offset_pool_case(rng, max_bytes: int) -> dict | None:
    """An unpadded average pool over codes with a zero point into a signed or zero-pointed output:
    offset = z_out - z_in * 2^scale_shift (AvgPool2d.quantize), global pools included, and the signed
    mean of unsigned codes (scale_shift -1, offset 64).
    The simulator's result rides along as the expected output."""
    case = pool_case(rng, max_bytes, "avgpool") if rng.random() < 0.5 else wide_pool_case(rng, max_bytes, "avgpool")
    if case is None or case.get("pad_top") or case.get("pad_left"):
        return None
    if case["out_h"] != out_size(case["in_h"], case["k_h"], case["stride_h"], 0, 0) or \
            case["out_w"] != out_size(case["in_w"], case["k_w"], case["stride_w"], 0, 0):
        return None  # padded at the bottom or on the right
    z_out, z_in = int(rng.choice(ZERO_POINTS)), int(rng.choice(ZERO_POINTS[1:]))
    if rng.random() < 0.3:  # the signed mean of unsigned codes: one frac bit coarser (k = -1)
        z_out, z_in, case["scale_shift"] = 0, -128, -1
    case["offset"] = z_out - (z_in << case["scale_shift"] if case["scale_shift"] >= 0 else z_in >> 1)
    return dict(case, expected=1, output=simulate_avgpool(case))


def add_edge_cases() -> list[dict]:
    """Adds at their edges: every zero point combination, operands all -128 or all 127 (and
    alternating), multipliers +-1 and +-2^15, alignment shifts at the largest exact left shift,
    zero and negative (rounding), output shifts negative, zero and positive, clamps at both ends."""
    cases = []
    values = {"min": np.full(11, -128, np.int8), "max": np.full(11, 127, np.int8),
              "alt": np.array([-128, 127] * 5 + [-128], np.int8)}
    for za in ZERO_POINTS:
        for zb in ZERO_POINTS:
            for zy in ZERO_POINTS:
                for mult in (1, -1, 2**15, -2**15):
                    span_a, span_b = (256 if za else 128), (256 if zb else 128)
                    room_a = int(np.floor(np.log2((2**30 - 1) / (span_a * abs(mult)))))
                    room_b = int(np.floor(np.log2((2**30 - 1) / (span_b * 1))))
                    for shift_a, shift_b, shift_out, (lo, hi), (va, vb) in (
                            (room_a, room_b, 31, (-128, 127), ("min", "max")),
                            (room_a, 0, 0, (-128, 127), ("max", "max")),
                            (0, -3, -8, (0, 127), ("alt", "min")),
                            (-5, room_b, 1, (-128, 0), ("min", "alt")),
                            (-1, -1, 2, (-37, 60), ("alt", "alt"))):
                        if shift_a > room_a or shift_b > room_b:
                            continue
                        lo, hi = _holding_zero(lo, hi, zy)
                        case = dict(op="add", in_c=11, in_h=1, in_w=1, out_c=1, input=values[va], second=values[vb],
                                    stride_h=mult, stride_w=shift_a, pad_top=1, pad_left=shift_b,
                                    scale_shift=shift_out, act_min=lo, act_max=hi, zero_a=za, zero_b=zb, zero_y=zy)
                        cases.append(dict(case, expected=1, output=simulate_add(case)))
    return cases


def simulate_dual(case: dict) -> np.ndarray:
    """What the simulator (ops/dual_linear.py DualLinear.run_int, then the table) computes for a dual case."""
    from edgecompile.ops.dual_linear import DualLinear

    na, nb, out = case["in_c"], case["in_h"], case["out_c"]
    w = np.asarray(case["weight"], np.int8)
    op = DualLinear("g", ["a", "b"], ["y"], attrs={"act": None})
    op.qparams = {"weight_a": w[:out * na].reshape(out, na), "weight_b": w[out * na:].reshape(out, nb),
                  "bias": np.asarray(case["bias"], np.int32)}
    op.qattrs = {"down_a": case["stride_h"], "down_b": case["stride_w"], "shift_out": case["scale_shift"],
                 "act_min": case["act_min"], "act_max": case["act_max"]}
    x = np.asarray(case["input"], np.int64)
    y = op.run_int(None, x[:na], x[na:])
    if case.get("groups"):
        y = np.asarray(case["table"], np.int64)[y + 128]
    return y


def dual_case(rng, max_bytes: int, extreme: str | None = None, shift_out: int | None = None,
              downs: tuple[int, int] | None = None) -> dict | None:
    """A recurrent cell's gate y = Wa a + Wb b + bias (ec_dual_linear_fast_s8): lengths not multiples of
    4 (a step's input of 10 values), rows not multiples of 4, down shifts (one product rounded to the
    other's format, sometimes both, sometimes neither), output shifts positive, zero and negative,
    clamps, the folding flag, an activation table or none, both inputs at any alignment.  `extreme`
    ("min" or "max"): every weight and input at -128 (or weights 127), the bias at the proven bound.
    The simulator's result rides along."""
    lengths = [1, 2, 3, 4, 5, 7, 8, 10, 12, 16, 31, 32, 64]
    na, nb = int(rng.choice(lengths)), int(rng.choice(lengths))
    out = int(rng.integers(1, 41)) if extreme is None else 7
    if out * (na + nb) + 3 > max_bytes or na + nb > max_bytes:
        return None
    if extreme is None:
        style = rng.choice(["uniform", "uniform", "extreme", "min", "sparse"])
        wa, wb = _values(rng, (out, na), style), _values(rng, (out, nb), style)
        x = _values(rng, (na + nb,), rng.choice(["uniform", "uniform", "extreme", "min"]))
    else:
        w_val = -128 if extreme == "min" else 127
        wa, wb = np.full((out, na), w_val, np.int8), np.full((out, nb), w_val, np.int8)
        x = np.full(na + nb, -128, np.int8)
    if downs is None:
        kind = rng.choice(["a", "b", "none", "both"], p=[0.4, 0.4, 0.15, 0.05])
        k = int(rng.integers(1, 32)) if rng.random() < 0.3 else int(rng.integers(1, 8))
        downs = {"a": (k, 0), "b": (0, k), "none": (0, 0), "both": (k, int(rng.integers(1, 8)))}[kind]
    sums = (np.abs(wa.astype(np.int64)).sum(1) + np.abs(wb.astype(np.int64)).sum(1)) * 128
    room = INT32_MAX - sums
    if extreme is None:
        scale = int(rng.choice([2**8, 2**16, 2**24, 2**31]))
        bias = np.clip(rng.integers(-scale, scale, size=out, dtype=np.int64), -room, room)
    else:
        bias = room * (1 if extreme == "min" else -1)  # the sum sits at the bound, on the products' side
        bias = np.where(np.arange(out) % 2 == 0, -bias, bias)
    if shift_out is None:
        shift_out = int(rng.choice([int(rng.integers(1, 32)), int(rng.integers(1, 12)), 0, int(rng.integers(-23, 0))]))
    lo, hi = CLAMPS[rng.integers(0, len(CLAMPS))] if extreme is None else (-128, 127)
    bound = int((sums + np.abs(bias)).max())
    folded = int(shift_out >= 0 and bound + ((1 << (shift_out - 1)) if shift_out > 0 else 0) <= INT32_MAX)
    if (downs[0] > 0) != (downs[1] > 0):  # bit 1: the rounded product's constant may start its accumulator
        d, w = (downs[0], wa) if downs[0] > 0 else (downs[1], wb)
        folded |= 2 * int(int(np.abs(w.astype(np.int64)).sum(1).max()) * 128 + (1 << (d - 1)) <= INT32_MAX)
    if rng.random() < 0.15:
        folded = 0  # the exact path is legal everywhere
    table = rng.integers(-128, 128, size=256).astype(np.int8)
    packed_a = pack_rows(wa, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER)
    packed_a = np.concatenate([packed_a, np.zeros(-len(packed_a) % 4, np.int8)])  # each array aligned, as emitted
    case = dict(op="dual", in_c=na, in_h=nb, in_w=1, out_c=out, input=x,
                weight=np.concatenate([wa.reshape(-1), wb.reshape(-1)]),
                packed=np.concatenate([packed_a, pack_rows(wb, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER)]),
                has_bias=1, bias=bias.astype(np.int32), shift=np.array([shift_out], np.int8), per_channel=0,
                stride_h=downs[0], stride_w=downs[1], scale_shift=shift_out, act_min=lo, act_max=hi,
                folded=folded, misalign=int(rng.choice([0, 0, 1, 2, 3])), groups=int(rng.random() < 0.5),
                table=table)
    return dict(case, expected=1, output=simulate_dual(case))


def simulate_mul(case: dict) -> np.ndarray:
    """What the simulator (ops/mul.py Mul.run_int) computes for a same-shape mul case."""
    from edgecompile.ops.mul import Mul

    mul = Mul("mul", ["a", "b"], ["y"], attrs={"act": None})
    mul.qattrs = {"shift": case["scale_shift"], "zero_a": case["zero_a"], "zero_b": case["zero_b"],
                  "act_min": case["act_min"], "act_max": case["act_max"]}
    return mul.run_int(None, np.asarray(case["input"], np.int64), np.asarray(case["second"], np.int64))


def mul_case(rng, max_bytes: int) -> dict:
    """A same-shape product (ec_mul_mve_s8 against ec_mul_s8): sizes not multiples of 4 or 8, signed codes
    (the fast path) or zero points (the reference's), shifts from -8 to 31 (0..14 fast), clamps, and
    operands at the extremes."""
    size = int(rng.integers(1, max_bytes + 1)) if rng.random() < 0.3 else int(rng.integers(1, 70))
    za, zb = (0, 0) if rng.random() < 0.7 else (int(rng.choice(ZERO_POINTS)), int(rng.choice(ZERO_POINTS)))
    shift = int(rng.integers(0, 15)) if rng.random() < 0.7 else int(rng.integers(-8, 32))
    lo, hi = CLAMPS[rng.integers(0, len(CLAMPS))] if rng.random() < 0.5 else (-128, 127)
    a = _values(rng, (size,), rng.choice(["uniform", "uniform", "extreme", "min"]))
    b = _values(rng, (size,), rng.choice(["uniform", "extreme", "min"]))
    case = dict(op="mul", in_c=size, in_h=1, in_w=1, out_c=1, input=a, second=b, scale_shift=shift, act_min=lo,
                act_max=hi, zero_a=za, zero_b=zb, misalign=int(rng.choice([0, 0, 1, 2, 3])))
    return dict(case, expected=1, output=simulate_mul(case))


def simulate_gated(case: dict) -> np.ndarray:
    """What the simulator (ops/gated_linear.py GatedDualLinear.run_int, then the table) computes for a gated case."""
    from edgecompile.ops.gated_linear import GatedDualLinear

    na, nb, out = case["in_c"], case["in_h"], case["out_c"]
    w = np.asarray(case["weight"], np.int8)
    bias = np.asarray(case["bias"], np.int32)
    op = GatedDualLinear("n", ["a", "b", "g"], ["y"], attrs={"act": None})
    op.qparams = {"weight_a": w[:out * na].reshape(out, na), "bias_a": bias[:out],
                  "weight_b": w[out * na:].reshape(out, nb), "bias_b": bias[out:]}
    op.qattrs = {"down_a": case["stride_h"], "down_p": case["stride_w"], "shift_b": case["pad_top"],
                 "shift_out": case["scale_shift"], "act_min": case["act_min"], "act_max": case["act_max"]}
    x = np.asarray(case["input"], np.int64)
    y = op.run_int(None, x[:na], x[na:na + nb], x[na + nb:])
    if case.get("groups"):
        y = np.asarray(case["table"], np.int64)[y + 128]
    return y


def _half(s: int) -> int:
    return (1 << (s - 1)) if s > 0 else 0


def gated_case(rng, max_bytes: int, extreme: str | None = None, shift_out: int | None = None,
               downs: tuple[int, int] | None = None) -> dict | None:
    """A GRU's n gate y = Wa a + bias_a + g (Wb b + bias_b) (ec_gated_linear_fast_s8): the dual case's
    lengths, rows, output shifts, clamps, tables and alignments, plus the hidden product's own shift
    shift_b (the smallest keeping |v| <= 2^23, sometimes more), a gate of any int8 codes, and one of the
    two terms rounded to the other's format (down_p, the usual case, or down_a, or both, or none).
    `extreme` ("min" or "max"): every weight, input and gate at -128 (or weights 127), the biases at
    the proven bounds."""
    lengths = [1, 2, 3, 4, 5, 7, 8, 10, 12, 16, 31, 32, 64]
    na, nb = int(rng.choice(lengths)), int(rng.choice(lengths))
    out = int(rng.integers(1, 41)) if extreme is None else 7
    if out * (na + nb) + 3 > max_bytes or na + nb + out > max_bytes:
        return None
    if extreme is None:
        style = rng.choice(["uniform", "uniform", "extreme", "min", "sparse"])
        wa, wb = _values(rng, (out, na), style), _values(rng, (out, nb), style)
        x = _values(rng, (na + nb,), rng.choice(["uniform", "uniform", "extreme", "min"]))
        g = _values(rng, (out,), rng.choice(["uniform", "uniform", "extreme", "min"]))
    else:
        w_val = -128 if extreme == "min" else 127
        wa, wb = np.full((out, na), w_val, np.int8), np.full((out, nb), w_val, np.int8)
        x = np.full(na + nb, -128, np.int8)
        g = np.full(out, -128, np.int8)
    sum_b = np.abs(wb.astype(np.int64)).sum(1) * 128
    if extreme is None:
        scale = int(rng.choice([2**8, 2**16, 2**24, 2**30]))
        bias_b = rng.integers(-scale, scale, size=out, dtype=np.int64)
    else:
        bias_b = np.where(np.arange(out) % 2 == 0, 1, -1) * (2**30 - 1)
    bias_b = np.clip(bias_b, -(INT32_MAX - 2**30 - sum_b), INT32_MAX - 2**30 - sum_b)  # + 2^(shift_b - 1): int32
    bound_b = sum_b + np.abs(bias_b)
    shift_b = 0
    while int(((bound_b + _half(shift_b)) >> shift_b).max()) > 2**23:
        shift_b += 1
    if extreme is None and rng.random() < 0.3:
        shift_b += int(rng.integers(1, 4))
    p_bound = ((bound_b + _half(shift_b)) >> shift_b) * 128
    if downs is None:
        kind = rng.choice(["p", "a", "none", "both"], p=[0.5, 0.3, 0.15, 0.05])
        k = int(rng.integers(1, 31)) if rng.random() < 0.3 else int(rng.integers(1, 12))
        downs = {"p": (0, k), "a": (k, 0), "none": (0, 0), "both": (k, int(rng.integers(1, 8)))}[kind]
    down_a, down_p = downs
    a_bound = (np.abs(wa.astype(np.int64)).sum(1) * 128 + _half(down_a)) >> down_a
    room = INT32_MAX - a_bound - ((p_bound + _half(down_p)) >> down_p)
    if extreme is None:
        scale = int(rng.choice([2**8, 2**16, 2**24, 2**31]))
        bias_a = np.clip(rng.integers(-scale, scale, size=out, dtype=np.int64), -room, room)
    else:
        bias_a = np.where(np.arange(out) % 2 == 0, -room, room)
    if shift_out is None:
        shift_out = int(rng.choice([int(rng.integers(1, 32)), int(rng.integers(1, 12)), 0, int(rng.integers(-23, 0))]))
    lo, hi = CLAMPS[rng.integers(0, len(CLAMPS))] if extreme is None and rng.random() < 0.5 else (-128, 127)
    bound = int((a_bound + ((p_bound + _half(down_p)) >> down_p) + np.abs(bias_a)).max())
    folded = int(shift_out >= 0 and bound + _half(shift_out) <= INT32_MAX)
    if down_p > 0:  # bit 1: g v's rounding constant may start its sum
        folded |= 2 * int(int(p_bound.max()) + _half(down_p) <= INT32_MAX)
    if rng.random() < 0.15:
        folded = 0  # the exact path is legal everywhere
    table = rng.integers(-128, 128, size=256).astype(np.int8)
    packed_a = pack_rows(wa, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER)
    packed_a = np.concatenate([packed_a, np.zeros(-len(packed_a) % 4, np.int8)])  # each array aligned, as emitted
    case = dict(op="gated", in_c=na, in_h=nb, in_w=1, out_c=out, input=np.concatenate([x, g]),
                weight=np.concatenate([wa.reshape(-1), wb.reshape(-1)]),
                packed=np.concatenate([packed_a, pack_rows(wb, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER)]),
                has_bias=1, bias=np.concatenate([bias_a, bias_b]).astype(np.int32),
                shift=np.array([shift_out], np.int8), per_channel=0, stride_h=down_a, stride_w=down_p,
                pad_top=shift_b, scale_shift=shift_out, act_min=lo, act_max=hi, folded=folded,
                misalign=int(rng.choice([0, 0, 1, 2, 3])), groups=int(rng.random() < 0.5), table=table)
    return dict(case, expected=1, output=simulate_gated(case))


def lerp_case(rng, max_bytes: int, formats: tuple[int, int, int, int] | None = None,
              extreme: str | None = None) -> dict:
    """A GRU's update y = a + g (b - a) (ec_lerp_mve_s8): the formats (f_a, f_b, f_g, f_y) of a, b, g and
    the output, from which ops/lerp.py chooses the shifts as export does (a or b finer, by up to 8 bits
    or more, so that the finer one is rounded; output shifts of each sign); sizes not multiples of 4,
    clamps, every alignment, operands at the extremes.  The simulator's result rides along."""
    from edgecompile.ir import Graph
    from edgecompile.ops.lerp import Lerp

    size = int(rng.integers(1, max_bytes // 3 + 1)) if rng.random() < 0.2 else int(rng.integers(1, 70))
    if formats is None:
        fa = int(rng.integers(0, 9))
        formats = (fa, fa + int(rng.choice([0, 1, -1, 3, -5, 8, 11, -12])), int(rng.integers(0, 10)),
                   fa + int(rng.integers(-4, 12)))
    graph = Graph("lerp")
    for name, f in zip("abgy", formats):
        graph.add_tensor(name, (size,))
        graph.tensors[name].frac_bits = f
    op = Lerp("lerp", ["a", "b", "g"], ["y"], attrs={"act": None})
    op.quantize(graph, None)
    q = op.qattrs
    if extreme is None:
        a, b, g = (_values(rng, (size,), rng.choice(["uniform", "uniform", "extreme", "min", "max"]))
                   for _ in range(3))
        lo, hi = CLAMPS[rng.integers(0, len(CLAMPS))] if rng.random() < 0.3 else (-128, 127)
    else:  # the bound's worst case: x and y - x at their largest, the same sign (g -128, a -128, b 127)
        a, b, g = (np.full(size, v, np.int8) for v in ((-128, 127, -128) if extreme == "min" else (127, -128, -128)))
        lo, hi = -128, 127
    q = dict(q, act_min=lo, act_max=hi)
    op.qattrs = q
    folded = op.round_folded() if rng.random() > 0.15 else 0
    case = dict(op="lerp", in_c=size, in_h=1, in_w=1, out_c=1, input=np.concatenate([a, b, g]),
                stride_h=q["shift_a"], stride_w=q["shift_b"], pad_top=q["shift_g"], scale_shift=q["shift_out"],
                act_min=lo, act_max=hi, folded=folded, misalign=int(rng.choice([0, 0, 1, 2, 3])))
    return dict(case, expected=1, output=op.run_int(graph, a, b, g))


def lerp_edge_cases() -> list[dict]:
    """Lerps at their proven bound (operands at the extremes, the finer operand 8 bits finer, g with 15
    frac bits), with the finer operand rounded, and output shifts of each sign."""
    rng = np.random.default_rng(17)
    cases = []
    for extreme in ("min", "max"):
        for formats in ((0, 8, 15, 20), (8, 0, 15, 3), (0, 0, 7, 7), (3, 15, 7, 20), (12, 0, 9, 30), (5, 5, 0, 12)):
            cases.append(lerp_case(rng, DEFAULT_MAX_BYTES, formats, extreme))
    return cases


def gated_edge_cases() -> list[dict]:
    """Gated linears at the proven bounds (weights, inputs and gates all -128, or weights 127), each
    rounding case (down_p, down_a, both, none), output shifts 1, 12, 31, 0 and negative."""
    rng = np.random.default_rng(13)
    cases = []
    for extreme in ("min", "max"):
        for downs in ((0, 0), (0, 9), (5, 0), (2, 4)):
            for shift_out in (1, 12, 31, 0, -3):
                case = gated_case(rng, DEFAULT_MAX_BYTES, extreme, shift_out, downs)
                if case is not None:
                    cases.append(case)
    return cases


def dual_edge_cases() -> list[dict]:
    """Dual linears at the proven bound (weights and inputs all -128, or weights 127), each down shift
    case, output shifts 1, 12, 31, 0 and negative."""
    rng = np.random.default_rng(11)
    cases = []
    for extreme in ("min", "max"):
        for downs in ((0, 0), (0, 3), (5, 0), (2, 4)):
            for shift_out in (1, 12, 31, 0, -3):
                case = dual_case(rng, DEFAULT_MAX_BYTES, extreme, shift_out, downs)
                if case is not None:
                    cases.append(case)
    return cases


def make_cases(seed: int = 0, count: int = 400, max_bytes: int = DEFAULT_MAX_BYTES,
               max_scratch: int = MAX_SCRATCH) -> list[dict]:
    """`count` cases in a fixed mix: 35 % conv, 10 % pointwise conv, 25 % linear, 15 % each pooling,
    and on top of those 25 % depthwise/grouped conv, 10 % depthwise conv with channel counts around
    the MVE vector width, 5 % pooling over long rows (each kind), 5 % weighted adds, 10 % dual linears
    (recurrent gates), 5 % same-shape muls, 5 % gated linears (GRU n gates) and 5 % lerps (GRU updates;
    the later kinds come
    last, so the other kinds keep their cases).
    Larger max_bytes and max_scratch (with harness.c built with the same EC_MAX_BYTES and
    EC_MAX_SCRATCH) allow larger layers, for runs on the host."""
    rng = np.random.default_rng(seed)
    pad_rng = np.random.default_rng([seed, 1])
    makers = [(0.35, lambda: conv_case(rng, max_bytes, max_scratch, pad_rng)),
              (0.10, lambda: pointwise_case(rng, max_bytes, max_scratch)),
              (0.25, lambda: linear_case(rng, max_bytes)),
              (0.15, lambda: pool_case(rng, max_bytes, "maxpool")),
              (0.15, lambda: pool_case(rng, max_bytes, "avgpool")),
              (0.25, lambda: grouped_case(rng, max_bytes, max_scratch, pad_rng)),
              (0.10, lambda: depthwise_case(rng, max_bytes, max_scratch, pad_rng)),
              (0.05, lambda: wide_pool_case(rng, max_bytes, "maxpool")),
              (0.05, lambda: wide_pool_case(rng, max_bytes, "avgpool")),
              (0.05, lambda: add_case(rng, max_bytes)),
              (0.03, lambda: offset_pool_case(rng, max_bytes)),
              (0.10, lambda: dual_case(rng, max_bytes)),
              (0.05, lambda: mul_case(rng, max_bytes)),
              (0.05, lambda: gated_case(rng, max_bytes)),
              (0.05, lambda: lerp_case(rng, max_bytes))]
    cases = []
    for share, make in makers:
        want = int(round(share * count))
        got = 0
        while got < want:
            case = make()
            if case is not None:
                cases.append(case)
                got += 1
    return cases


def extreme_cases() -> list[dict]:
    """Accumulators driven to the very edge of the proven bound: every weight and input -128 (or
    weights 127, inputs -128), a bias that makes |bias| + sum |w| * 128 = 2^31 - 1 exactly, and the
    rounding constant either refused (it would overflow) or allowed with no room to spare; the
    adds' edges (add_edge_cases).  The padded ones run once more with pad_value -128 (unsigned
    codes' zero point): then the padding's taps too read -128, and every window, not only the
    inner ones, sits at the bound."""
    cases = []
    for op, sign, shift in (("conv", 1, 1), ("conv", -1, 7), ("conv", 1, 0), ("conv", -1, -3), ("conv_pad", 1, 1),
                            ("conv_pad", -1, 9), ("linear", 1, 1),
                            ("linear", -1, 31), ("linear", 1, 12), ("pointwise", 1, 1), ("pointwise", -1, 9),
                            ("grouped", 1, 1), ("grouped", -1, 5), ("grouped", 1, -2),
                            ("depthwise", 1, 1), ("depthwise", -1, 31), ("depthwise", 1, -3)):
        w_val = -128 if sign > 0 else 127
        if op == "pointwise":
            in_c, in_h, in_w, out_c = 27, 3, 5, 5
            weight = np.full((out_c, in_c, 1, 1), w_val, dtype=np.int8)
            case = dict(op=op, in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, k_h=1, k_w=1, stride_h=1, stride_w=1,
                        out_h=in_h, out_w=in_w, input=np.full((in_c, in_h, in_w), -128, dtype=np.int8),
                        weight=weight, packed=pack_rows(weight.reshape(out_c, -1), CONV_GROUP, paired_tails=True),
                        scratch=pointwise_scratch_bytes(in_c, out_c))
        elif op == "grouped":  # depthwise 3x3, multiplier 2, no padding: every window full
            in_c, in_h, in_w, out_c, k = 3, 6, 7, 6, 3
            weight = np.full((out_c, 1, k, k), w_val, dtype=np.int8)
            case = dict(op=op, in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, k_h=k, k_w=k, stride_h=1, stride_w=1,
                        out_h=in_h - k + 1, out_w=in_w - k + 1, groups=in_c, dilation_h=1, dilation_w=1,
                        input=np.full((in_c, in_h, in_w), -128, dtype=np.int8), weight=weight,
                        packed=weight.reshape(-1),
                        scratch=grouped_scratch_bytes(in_c, in_c, (out_c, in_h - k + 1, in_w - k + 1), (k, k),
                                                      (1, 1), (1, 1)))
        elif op == "depthwise":  # 3x3, padding 1: the MVE kernel's clipped windows too
            channels, in_h, in_w, k = 6, 5, 7, 3
            out_c = channels
            weight = np.full((channels, 1, k, k), w_val, dtype=np.int8)
            case = dict(op="grouped", in_c=channels, in_h=in_h, in_w=in_w, out_c=channels, k_h=k, k_w=k, stride_h=1,
                        stride_w=1, pad_top=1, pad_left=1, out_h=in_h, out_w=in_w,
                        input=np.full((channels, in_h, in_w), -128, dtype=np.int8), weight=weight,
                        packed=weight.reshape(-1), groups=channels, dilation_h=1, dilation_w=1,
                        scratch=grouped_scratch_bytes(channels, channels, (channels, in_h, in_w), (k, k), (1, 1),
                                                      (1, 1)))
        elif op == "conv_pad":  # 3x3, padding 1: the fast kernel's padded band
            in_c, in_h, in_w, out_c, k = 3, 5, 6, 5, 3
            weight = np.full((out_c, in_c, k, k), w_val, dtype=np.int8)
            case = dict(op="conv", in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, k_h=k, k_w=k, stride_h=1,
                        stride_w=1, pad_top=1, pad_left=1, out_h=in_h, out_w=in_w,
                        input=np.full((in_c, in_h, in_w), -128, dtype=np.int8), weight=weight,
                        packed=pack_rows(weight.reshape(out_c, -1), CONV_GROUP, paired_tails=True),
                        scratch=conv_scratch_bytes((in_c, in_h, in_w), (out_c, in_h, in_w), (k, k), (1, 1),
                                                   (1, 1, 1, 1)))
        elif op == "conv":
            in_c, in_h, in_w, out_c, k = 3, 5, 6, 5, 3
            weight = np.full((out_c, in_c, k, k), w_val, dtype=np.int8)
            case = dict(op=op, in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, k_h=k, k_w=k, stride_h=1, stride_w=1,
                        pad_top=0, pad_left=0, out_h=in_h - k + 1, out_w=in_w - k + 1,
                        input=np.full((in_c, in_h, in_w), -128, dtype=np.int8), weight=weight,
                        packed=pack_rows(weight.reshape(out_c, -1), CONV_GROUP, paired_tails=True),
                        scratch=conv_scratch_bytes((in_c, in_h, in_w), (out_c, in_h - k + 1, in_w - k + 1), (k, k),
                                                   (1, 1), (0, 0, 0, 0)))
        else:
            in_f, out_c = 203, 6
            weight = np.full((out_c, in_f), w_val, dtype=np.int8)
            case = dict(op=op, in_c=in_f, in_h=1, in_w=1, out_c=out_c, input=np.full(in_f, -128, dtype=np.int8),
                        weight=weight, packed=pack_rows(weight, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER))
        room = INT32_MAX - int(np.abs(weight.astype(np.int64)).reshape(out_c, -1).sum(axis=1)[0]) * 128
        rounding = 1 << (shift - 1) if shift > 0 else 0
        # rows alternate: at the bound (no folding possible) and just below it by the rounding constant
        bias = np.array([sign * (room - (rounding if r % 2 else 0)) for r in range(out_c)], dtype=np.int64)
        shifts = np.array([shift], dtype=np.int8)
        for b in (bias, bias[:1].repeat(out_c) - sign * rounding):
            c = dict(case, act_min=-128, act_max=127, per_channel=0, has_bias=1, bias=b.astype(np.int32),
                     shift=shifts, folded=round_folded(weight, b, shifts))
            cases.append(c)
            if c.get("pad_top"):
                cases.append(dict(c, pad_value=-128))
    return cases + add_edge_cases() + dual_edge_cases() + gated_edge_cases() + lerp_edge_cases()


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def encode(case: dict) -> bytes:
    fields = dict.fromkeys(HEADER, 0)
    fields.update({k: v for k, v in case.items() if k in HEADER})
    fields["op"] = OPS[case["op"]]
    out = struct.pack(f"<{len(HEADER)}i", *(int(fields[k]) for k in HEADER))
    out += _pad4(np.asarray(case["input"], dtype=np.int8).tobytes())
    if case["op"] in ("add", "mul"):
        out += _pad4(np.asarray(case["second"], dtype=np.int8).tobytes())
    if case["op"] in ("conv", "linear", "linear16", "pointwise", "grouped", "dual", "gated"):
        out += _pad4(np.asarray(case["weight"], dtype=np.int8).tobytes())
        out += _pad4(np.asarray(case["packed"], dtype=np.int8).tobytes())
        if case["has_bias"]:
            out += np.asarray(case["bias"], dtype="<i4").tobytes()
        out += _pad4(np.asarray(case["shift"], dtype=np.int8).tobytes())
    if case["op"] in ("dual", "gated") and case.get("groups"):  # the activation table the fast kernel applies
        out += np.asarray(case["table"], dtype=np.int8).tobytes()
    if case.get("expected"):  # the simulator's output, which the reference kernel must match
        out += _pad4(np.asarray(case["output"], dtype=np.int8).tobytes())
    return out


def write_cases(path, cases: list[dict]) -> Path:
    path = Path(path)
    path.write_bytes(b"".join(encode(c) for c in cases))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    ap.add_argument("--max-scratch", type=int, default=MAX_SCRATCH)
    args = ap.parse_args(argv)
    cases = make_cases(args.seed, args.count, args.max_bytes, args.max_scratch) + extreme_cases()
    write_cases(args.out, cases)
    print(f"{len(cases)} cases -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The numerics contract: the one definition of edgecompile's fixed-point arithmetic.

Notation (the same as runtime_c/ec_fixed.h, which implements these rules in C):

    A tensor t with frac bits f holds integers q; its real value is q * 2^-f.
    f may be negative (large-magnitude tensors) or larger than the bit width.
    An 8-bit tensor may also carry a zero point z, an int8 code: its value is
    (q - z) * 2^-f.  z = -128 makes an unsigned code (one more bit for values that are
    never negative, ReLU outputs); another z places a skewed range in the codes
    (passes/quantize.py: zero_point_tensors; formats.py: format_for).  Conv and linear kernels never
    see z: the compiler folds it into the int32 biases and the clamps of the layers
    that write and read the tensor (ops/weighted.py), and a padded conv pads with it.
    Adds, products, average pools, tables and concatenations take it as a constant in
    exact integer identities (ops/add.py, ops/mul.py, ops/pool2d.py, ops/lut.py,
    ops/concat.py); the rules below are unchanged.

Rules (every kernel, in Python and in C, is built only from these):

1. Accumulator: int32.  A layer's accumulator is bias + sum(w_q * x_q); the
   compiler proves |acc| <= 2^31 - 1 from the quantized weights and biases before
   it emits a layer (accumulator_bound).  Where the bound or the bias would not fit,
   it lowers that channel's weight frac bits (halving its bound) until both do,
   and notes it in the report (ops/weighted.py): the layer is coarser, never refused.
2. Rounding shift: to move acc from frac bits f_acc to f_out, shift right by
   s = f_acc - f_out with *round half up*:
       s > 0:  floor(acc / 2^s + 1/2) computed as (acc >> s) + ((acc >> (s-1)) & 1)
               with >> an arithmetic (floor) shift.  The two forms are equal for
               every int32 acc and 1 <= s <= 31, and the second never overflows.
       s = 0:  acc
       s < 0:  acc * 2^-s (exact; saturation happens in rule 3)
   Ties therefore go towards +infinity: 2.5 -> 3, -2.5 -> -2.
3. Saturation: clamp to [lo, hi]; for a b-bit signed tensor [-2^(b-1), 2^(b-1)-1].
   A fused ReLU raises lo to 0.
4. Float -> fixed (weights, biases, model inputs): q = sat(floor(x * 2^f + 1/2)),
   computed so that it is exact in float32 and float64 alike (see quantize_float).
5. Division by a non-power-of-two n > 0 (average pooling): floor((2*sum + n) / (2*n)),
   i.e. round half up of sum/n, with floor division.

Everything here works on numpy int64 arrays, wide enough to represent every
int32 intermediate exactly, so the simulator never depends on overflow.  Between
layers the simulator stores each tensor's codes in the narrowest integer type that
holds its range (storage_dtype: int8 for an 8-bit tensor, as the C does), which
needs less memory traffic; every op widens its inputs to int64 (or an exact float)
before any arithmetic, so the type a code is stored in never changes a result.
"""
from __future__ import annotations

import math

import numpy as np

ACC_BITS = 32
ACC_MAX = (1 << (ACC_BITS - 1)) - 1
ACC_MIN = -(1 << (ACC_BITS - 1))
MAX_SHIFT = 31  # |s| beyond this is refused by the quantizer (C shifts of >= 32 are undefined)


def qrange(bits: int) -> tuple[int, int]:
    """The saturation range of a signed `bits`-bit integer (rule 3)."""
    if not 2 <= bits <= 32:
        raise ValueError(f"bit width {bits} outside 2..32")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def storage_dtype(lo: int, hi: int):
    """The narrowest of int8, int16, int32, int64 that holds every integer in [lo, hi]: how the
    simulator stores codes between layers (see the module docstring)."""
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    return np.int64


def asr(x, s: int):
    """Arithmetic (floor) right shift by s >= 0; numpy's >> on signed ints is one."""
    return np.right_shift(np.asarray(x, dtype=np.int64), s)


def rounding_shift(acc, s: int):
    """Rule 2: acc * 2^-s rounded half up, for int32-valued acc; result int64."""
    acc = np.asarray(acc, dtype=np.int64)
    if not -MAX_SHIFT <= s <= MAX_SHIFT:
        raise ValueError(f"shift {s} outside [-{MAX_SHIFT}, {MAX_SHIFT}]")
    if s > 0:
        return asr(acc, s) + (asr(acc, s - 1) & 1)
    if s == 0:
        return acc.copy()
    return acc * (np.int64(1) << np.int64(-s))


def rounding_shift_per_channel(acc, shifts, axis: int):
    """Rule 2 with one shift per slice along `axis` (per-channel requantization): the same
    arithmetic as rounding_shift, each slice with its own s, all slices at once."""
    acc = np.asarray(acc, dtype=np.int64)
    s = np.asarray(shifts, dtype=np.int64)
    if s.size and (s.min() < -MAX_SHIFT or s.max() > MAX_SHIFT):
        raise ValueError(f"shifts {s.min()}..{s.max()} outside [-{MAX_SHIFT}, {MAX_SHIFT}]")
    shape = [1] * acc.ndim
    shape[axis] = -1
    s = np.broadcast_to(s, (acc.shape[axis],)).reshape(shape)
    right = np.maximum(s, 0)
    rounded = asr(acc, right) + (asr(acc, np.maximum(right - 1, 0)) & 1) * (right > 0)  # s > 0: half up
    return rounded * (np.int64(1) << np.maximum(-s, 0))  # s <= 0: exact (the C's clamp-then-shift proof)


def requantize_float(acc: np.ndarray, bias, shifts, lo: int, hi: int, axis: int) -> np.ndarray:
    """Rules 2 and 3 on an accumulator of integers held in a float array (one bias and shift per
    slice along `axis`), overwriting `acc`; the result in storage_dtype(lo, hi).

    Per channel it computes floor(acc * 2^-s + (b + h) * 2^-s), h = 2^(s-1) for s > 0 (else 0), then
    clamps: that is (acc + b + h) * 2^-s floored, i.e. round half up of (acc + b) * 2^-s for s > 0 and
    (acc + b) * 2^-s exactly for s <= 0, as rounding_shift.  It is exact, in any float type, when
    |acc| + |b| + h is below 2^p (p: the type's significand bits, 24 or 53), which the caller proves:
    multiplying by a power of two is exact, and every sum is an integer below 2^p times 2^-s."""
    s = np.asarray(shifts, dtype=np.int64)
    shape = [1] * acc.ndim
    shape[axis] = -1
    s = np.broadcast_to(s, (acc.shape[axis],))
    half = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
    acc *= np.ldexp(1.0, -s).astype(acc.dtype).reshape(shape)
    acc += np.ldexp(np.asarray(bias, dtype=np.float64) + half, -s).astype(acc.dtype).reshape(shape)
    np.floor(acc, out=acc)
    np.clip(acc, lo, hi, out=acc)
    return acc.astype(storage_dtype(lo, hi))


def align(x, k: int):
    """Move values to k more frac bits: exact x * 2^k for k >= 0, a rule-2 rounding shift for k < 0.

    Used to bring the operands of an add or a concatenation to one format."""
    x = np.asarray(x, dtype=np.int64)
    return x * (np.int64(1) << np.int64(k)) if k >= 0 else rounding_shift(x, -k)


def saturate(x, lo: int, hi: int):
    """Rule 3."""
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def requantize(acc, s: int, lo: int, hi: int):
    """Rules 2 then 3: what every conv/linear does to its accumulator."""
    return saturate(rounding_shift(acc, s), lo, hi)


def round_half_up_div(total, n):
    """Rule 5: round half up of total / n for n > 0 (scalar or array), exact integers."""
    n = np.asarray(n, dtype=np.int64)
    if np.any(n <= 0):
        raise ValueError("divisor must be positive")
    total = np.asarray(total, dtype=np.int64)
    return np.floor_divide(2 * total + n, 2 * n)


def quantize_float(x, f: int, lo: int, hi: int):
    """Rule 4: q = sat(floor(x * 2^f + 1/2)).

    x * 2^f is exact (a power-of-two scale only changes the exponent), and so is
    x*2^f - floor(x*2^f) for the magnitudes that matter; comparing that fraction
    with 1/2 avoids the double rounding of floor(v + 0.5) (0.49999997 + 0.5 rounds
    to 1.0 in float32).  The C input helper uses the same steps.
    """
    if np.ndim(x) == 0 and np.ndim(f) == 0:  # one value (the format searches ask for many): the same steps in Python
        v = math.ldexp(float(x), int(f))
        if not math.isfinite(v):
            raise ValueError("cannot quantize NaN or Inf")
        fl = math.floor(v)
        return np.int64(min(max(fl + (v - fl >= 0.5), lo), hi))
    x = np.asarray(x)
    if x.dtype == np.float32 and np.ndim(f) == 0 and abs(int(f)) <= 100 and max(-lo, hi) < 1 << 24:
        # float32 inputs (model inputs, activations) without a float64 copy: x * 2^f is the same exact
        # value in float32 unless it overflows (then the float64 steps below decide), and so are its
        # floor and fraction; a value small enough to lose bits in float32 rounds to 0 either way; the
        # clamps are exact in float32 below 2^24
        with np.errstate(over="ignore"):
            v = x * np.float32(2.0 ** int(f))
        if np.all(np.isfinite(v)):
            return round_scaled(v, lo, hi).astype(np.int64)
    v = np.ldexp(np.asarray(x, dtype=np.float64), f)
    if not np.all(np.isfinite(v)):
        raise ValueError("cannot quantize NaN or Inf")
    return round_scaled(v, lo, hi).astype(np.int64)


def round_scaled(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rule 4's rounding and saturation of v = x * 2^f (a finite float array, overwritten): the codes as
    floats of v's type.  floor(v) plus 1 where the fraction v - floor(v) is at least 1/2, both exact."""
    fl = np.floor(v)
    v -= fl
    np.add(fl, v >= 0.5, out=fl, dtype=fl.dtype)
    return np.clip(fl, lo, hi, out=fl)


def dequantize(q, f: int, zero_point: int = 0):
    """Real value of q with frac bits f (per tensor): (q - zero_point) * 2^-f."""
    return np.ldexp(np.asarray(q, dtype=np.float64) - zero_point, -f)


def frac_bits_for_interval(lo_value: float, hi_value: float, bits: int,
                           f_min: int = -MAX_SHIFT, f_max: int = MAX_SHIFT) -> int:
    """The largest f for which every value in [lo_value, hi_value] quantizes without clipping.

    The negative end may use -2^(b-1), the positive end 2^(b-1) - 1 (rule 4
    rounding included).  An all-zero interval gets f = bits - 1 (any f is exact).
    """
    qlo, qhi = qrange(bits)
    neg, pos = max(-float(lo_value), 0.0), max(float(hi_value), 0.0)
    if not (np.isfinite(neg) and np.isfinite(pos)):
        raise ValueError("range is not finite")
    if neg == 0.0 and pos == 0.0:
        return min(max(bits - 1, f_min), f_max)
    wide = 1 << 62

    def fits(f: int) -> bool:
        return (quantize_float(pos, f, -wide, wide) <= qhi
                and quantize_float(-neg, f, -wide, wide) >= qlo)

    return _largest_fitting(fits, int(np.floor(np.log2((qhi + 0.5) / max(neg, pos)))), f_min, f_max)


def _largest_fitting(fits, estimate: int, f_min: int, f_max: int) -> int:
    """The largest f in [f_min, f_max] with fits(f) (or f_min): from the analytic estimate, step to
    the exact boundary (the rounding of rule 4 decides it, not the estimate)."""
    f = min(max(estimate, f_min), f_max)
    while f < f_max and fits(f + 1):
        f += 1
    while f > f_min and not fits(f):
        f -= 1
    return f


def frac_bits_for_intervals(lo_values, hi_values, bits: int, f_min: int = -MAX_SHIFT,
                            f_max: int = MAX_SHIFT) -> np.ndarray:
    """frac_bits_for_interval of many intervals at once (arrays of the same shape), the same f each."""
    qlo, qhi = qrange(bits)
    neg = np.maximum(-np.asarray(lo_values, dtype=np.float64), 0.0)
    pos = np.maximum(np.asarray(hi_values, dtype=np.float64), 0.0)
    if not (np.all(np.isfinite(neg)) and np.all(np.isfinite(pos))):
        raise ValueError("range is not finite")
    top = np.maximum(neg, pos)
    zero = top == 0.0
    wide = 1 << 62

    def fits(f):
        return (quantize_float(np.ldexp(pos, f), 0, -wide, wide) <= qhi) & \
            (quantize_float(np.ldexp(-neg, f), 0, -wide, wide) >= qlo)

    with np.errstate(divide="ignore"):
        f = np.floor(np.log2((qhi + 0.5) / np.where(zero, 1.0, top))).astype(np.int64)
    f = np.clip(f, f_min, f_max)
    while True:
        up = (f < f_max) & ~zero & fits(f + 1)
        if not up.any():
            break
        f = f + up
    while True:
        down = (f > f_min) & ~zero & ~fits(f)
        if not down.any():
            break
        f = f - down
    return np.where(zero, min(max(bits - 1, f_min), f_max), f)


def _interval_codes(lo_value: float, hi_value: float, f: int) -> tuple[int, int]:
    """The rule-4 codes of an interval's ends at frac bits f, widened to hold 0 (real zero must
    have a code: it is the padding of a conv and the floor of a ReLU)."""
    wide = 1 << 62
    return (min(int(quantize_float(lo_value, f, -wide, wide)), 0),
            max(int(quantize_float(hi_value, f, -wide, wide)), 0))


def frac_bits_for_span(lo_value: float, hi_value: float, bits: int,
                       f_min: int = -MAX_SHIFT, f_max: int = MAX_SHIFT) -> int:
    """The largest f for which [lo_value, hi_value] (0 included) spans at most 2^bits codes: with a
    zero point (zero_point_for_interval) it then quantizes without clipping.  One bit finer than
    frac_bits_for_interval for an interval on one side of 0, as much as that for a symmetric one."""
    if not (np.isfinite(lo_value) and np.isfinite(hi_value)):
        raise ValueError("range is not finite")
    top = (1 << bits) - 1

    def fits(f: int) -> bool:
        lo_code, hi_code = _interval_codes(lo_value, hi_value, f)
        return hi_code - lo_code <= top

    span = max(float(hi_value), 0.0) - min(float(lo_value), 0.0)
    if span == 0.0:
        return min(max(bits - 1, f_min), f_max)
    return _largest_fitting(fits, int(np.floor(np.log2(top / span))), f_min, f_max)


def zero_point_for_interval(lo_value: float, hi_value: float, f: int, bits: int) -> int:
    """The zero point z (the code of real 0, in the signed code range) that places [lo_value, hi_value]
    in the codes at frac bits f: at the bottom (z = -2^(b-1)) for an interval that starts at 0, a
    ReLU's; at the top for one that ends at 0; otherwise centred, so that the spare codes, or the
    clipping when the span does not fit, are shared equally by both ends."""
    qlo, qhi = qrange(bits)
    lo_code, hi_code = _interval_codes(lo_value, hi_value, f)
    if lo_code == 0:
        return qlo
    if hi_code == 0:
        return qhi
    z_keep_lo, z_keep_hi = qlo - lo_code, qhi - hi_code  # z >= the first keeps lo, z <= the second keeps hi
    return int(min(max((z_keep_lo + z_keep_hi) // 2, qlo), qhi))


def nearest_multiple_code(z: int, k: int, bits: int) -> int:
    """The multiple of 2^k nearest to z (ties up) within the signed `bits`-bit codes; -2^(b-1) is a
    multiple of every 2^k with k < b and 0 of all, so there is always one."""
    step = 1 << k
    qlo, qhi = qrange(bits)
    m = ((2 * z + step) // (2 * step)) * step
    while m > qhi:
        m -= step
    while m < qlo:
        m += step
    return int(m)


def frac_bits_for_range(max_abs: float, bits: int, f_min: int = -MAX_SHIFT, f_max: int = MAX_SHIFT) -> int:
    """Largest f that represents [-max_abs, max_abs] without clipping."""
    return frac_bits_for_interval(-max_abs, max_abs, bits, f_min, f_max)


def frac_bits_for_values(values, bits: int, f_min: int = -MAX_SHIFT, f_max: int = MAX_SHIFT) -> int:
    """Largest f with no clipping of any of `values`."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return min(max(bits - 1, f_min), f_max)
    return frac_bits_for_interval(float(np.min(values)), float(np.max(values)), bits, f_min, f_max)


def accumulator_bound(w_q, b_q, x_max: int) -> int:
    """Largest |bias + sum(w*x)| over any input with |x| <= x_max, per output row.

    w_q has the output channel first; returns the maximum over channels, as a
    Python int (no overflow).
    """
    w = np.abs(np.asarray(w_q, dtype=np.int64)).reshape(np.shape(w_q)[0], -1)
    b = np.abs(np.asarray(b_q, dtype=np.int64)) if b_q is not None else 0
    return int(np.max(w.sum(axis=1) * int(x_max) + b))

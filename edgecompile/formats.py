"""Calibration statistics and the Q-formats chosen from them.

What calibration saw of a tensor (TensorRange) and the (frac bits, zero point) that a
calibration method gives it.  The quantization pass (passes/quantize.py) picks every
activation's format with these; the ops use them too, for weights quantized by a
sample-based --weight-method (ops/weighted.py) and a recurrent cell's states
(ops/recurrent.py), so they live below both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import numerics
from .errors import EdgeCompileError

CALIB_METHODS = ("minmax", "percentile", "sigma", "mse")


SAMPLE_CAP = 65536  # values kept per tensor for the sample-based methods


@dataclass
class TensorRange:
    """What calibration saw of one tensor: its extremes, moments and a sample of values."""

    lo: float
    hi: float
    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    sample: np.ndarray | None = None
    # format_for's answers: the passes quantize the same ranges again and again
    formats: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def max_abs(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        return float(np.sqrt(max(self.total_sq / self.count - self.mean ** 2, 0.0))) if self.count else 0.0

    @classmethod
    def of(cls, values: np.ndarray) -> "TensorRange":
        """Statistics of an array kept whole, every value in the sample (a weight row)."""
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        return cls(float(flat.min()), float(flat.max()), flat.size, float(flat.sum()), float(np.dot(flat, flat)),
                   flat)

    def add(self, value: np.ndarray, rng: np.random.Generator) -> None:
        self.formats = {}
        # the values in their own type (float32 activations: no float64 copy of a whole batch); the
        # sums accumulate in float64, and the kept sample is float64 (exact)
        flat = np.asarray(value).reshape(-1)
        self.lo, self.hi = min(self.lo, float(flat.min())), max(self.hi, float(flat.max()))
        self.count += flat.size
        self.total += float(np.sum(flat, dtype=np.float64))
        self.total_sq += float(np.einsum("i,i->", flat, flat, dtype=np.float64))
        keep = flat if flat.size <= SAMPLE_CAP // 4 else rng.choice(flat, SAMPLE_CAP // 4, replace=False)
        keep = np.asarray(keep, dtype=np.float64)
        merged = keep if self.sample is None else np.concatenate([self.sample, keep])
        self.sample = merged if merged.size <= SAMPLE_CAP else rng.choice(merged, SAMPLE_CAP, replace=False)


def frac_bits_for(r: TensorRange, bits: int, method: str = "minmax", percentile: float = 99.99) -> int:
    """The Q-format of a tensor by a calibration method (min/max, percentile, 3 sigma, least squared error):
    minmax      the largest f that clips nothing seen;
    percentile  the largest f that clips at most (100 - percentile) % at each end;
    sigma       the largest f for mean +- 3 standard deviations (within the seen range);
    mse         of minmax's f and the 4 finer ones, the f with the least squared quantization
                error (rounding and clipping) over the calibration sample."""
    base = numerics.frac_bits_for_interval(r.lo, r.hi, bits)
    if method == "minmax" or r.sample is None or r.sample.size == 0:
        return base
    if method in ("sigma", "percentile"):
        return numerics.frac_bits_for_interval(*clip_interval(r, method, percentile), bits)
    if method == "mse":
        return min((sample_error(r, f, 0, bits), f) for f in range(base, min(base + 5, numerics.MAX_SHIFT) + 1))[1]
    raise EdgeCompileError(f"--calib-method {method}: choose one of {', '.join(CALIB_METHODS)}")


def zero_point_for(r: TensorRange, f: int, bits: int) -> int:
    """A tensor's zero point at frac bits f: numerics.zero_point_for_interval of its calibrated range.
    When the span does not fit (a finer f chosen by least squared error), both ends clip by the
    same number of codes.  Placing the clipping where a tensor's own squared error is least was
    measured to be worse: it clips one tail, and that error has a mean, which average pools and
    residual sums downstream do not average away (ShuffleNet lost 2.7 dB with it)."""
    return numerics.zero_point_for_interval(r.lo, r.hi, f, bits)


def format_for(r: TensorRange, bits: int, method: str = "minmax", percentile: float = 99.99,
               zero_point: bool = False) -> tuple[int, int]:
    """A tensor's (frac bits, zero point).  Without a zero point: (frac_bits_for, 0).  With one, the
    same methods over the span of the values instead of their largest magnitude
    (numerics.frac_bits_for_span), each f with its zero_point_for: a ReLU output [0, r] gets z = -128
    and one bit more than a signed code (unsigned codes), a skewed signed tensor up to one bit more,
    a symmetric one the same f."""
    key = (r.lo, r.hi, r.count, r.total, r.total_sq, bits, method, percentile, zero_point)
    known = r.formats.get(key)
    if known is not None and known[0] is r.sample:  # the same values: the same answer
        return known[1]
    answer = (frac_bits_for(r, bits, method, percentile), 0) if not zero_point else \
        _shifted_format(r, bits, method, percentile)
    r.formats[key] = (r.sample, answer)
    return answer


def sample_error(r: TensorRange, f: int, z: int, bits: int) -> float:
    """Mean squared quantization error (rounding and clipping) of the calibration sample at (f, z)."""
    qlo, qhi = numerics.qrange(bits)
    # rule 4 (numerics.round_scaled, what quantize_float does) then dequantize, in float64 throughout:
    # the same values (every code is an integer below 2^53 and 2^-f is exact) without int64 round
    # trips; the sample is finite (calibration checks it)
    x = r.sample
    q = numerics.round_scaled(x * 2.0 ** f, qlo - z, qhi - z)
    q *= 2.0 ** -f
    q -= x
    return float(np.mean(q * q))


def _shifted_format(r: TensorRange, bits: int, method: str, percentile: float) -> tuple[int, int]:
    """format_for's (f, z) with a zero point."""
    base = numerics.frac_bits_for_span(r.lo, r.hi, bits)
    if method == "minmax" or r.sample is None or r.sample.size == 0:
        return base, zero_point_for(r, base, bits)
    if method in ("sigma", "percentile"):
        lo, hi = clip_interval(r, method, percentile)
        f = numerics.frac_bits_for_span(lo, hi, bits)
        return f, numerics.zero_point_for_interval(lo, hi, f, bits)
    if method == "mse":
        best = None
        for f in range(base, min(base + 5, numerics.MAX_SHIFT) + 1):
            z = zero_point_for(r, f, bits)
            err = sample_error(r, f, z, bits)
            if best is None or err < best[0]:
                best = (err, f, z)
        return best[1], best[2]
    raise EdgeCompileError(f"--calib-method {method}: choose one of {', '.join(CALIB_METHODS)}")


def clip_interval(r: TensorRange, method: str, percentile: float) -> tuple[float, float]:
    """The interval (0 included) the sigma and percentile methods keep unclipped."""
    if method == "sigma":
        lo, hi = max(r.lo, r.mean - 3 * r.std), min(r.hi, r.mean + 3 * r.std)
    else:
        tail = (100.0 - percentile) / 100.0
        lo, hi = (float(v) for v in np.quantile(r.sample, [tail, 1.0 - tail]))
    return min(lo, 0.0), max(hi, 0.0)

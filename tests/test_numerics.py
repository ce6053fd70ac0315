"""The numerics contract at its edges: ties, negatives, zero and negative shifts, saturation."""
from __future__ import annotations

from fractions import Fraction
import math

import numpy as np
import pytest

from edgecompile import numerics


def exact_round_half_up(acc: int, s: int) -> int:
    """floor(acc * 2^-s + 1/2) with exact rationals: the definition, independent of the implementation."""
    return math.floor(Fraction(acc) / Fraction(2) ** s + Fraction(1, 2))


EDGE_ACCS = [0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -255, 256, -256, 2**30, -(2**30),
             2**31 - 1, -(2**31), 2**31 - 2, -(2**31) + 1]


@pytest.mark.parametrize("s", [1, 2, 3, 7, 8, 15, 16, 30, 31])
def test_rounding_shift_matches_definition_on_edges_and_ties(s):
    ties = [k * (1 << s) + (1 << (s - 1)) for k in (-3, -2, -1, 0, 1, 2)]  # exactly halfway
    near = [t + d for t in ties for d in (-1, 1)]
    values = [v for v in EDGE_ACCS + ties + near if -(2**31) <= v <= 2**31 - 1]
    got = numerics.rounding_shift(np.array(values), s)
    assert got.tolist() == [exact_round_half_up(v, s) for v in values]


def test_ties_go_towards_plus_infinity():
    # 2.5 -> 3, -2.5 -> -2, 0.5 -> 1, -0.5 -> 0 (acc = 5, -5, 1, -1 with s = 1)
    assert numerics.rounding_shift(np.array([5, -5, 1, -1, 3, -3]), 1).tolist() == [3, -2, 1, 0, 2, -1]


def test_shift_zero_is_identity_and_negative_shift_multiplies():
    acc = np.array(EDGE_ACCS)
    assert numerics.rounding_shift(acc, 0).tolist() == EDGE_ACCS
    assert numerics.rounding_shift(np.array([3, -3, 0]), -4).tolist() == [48, -48, 0]


def test_random_accumulators_match_definition(rng):
    values = rng.integers(-(2**31), 2**31, size=2000)
    for s in (1, 5, 9, 13, 20, 31):
        got = numerics.rounding_shift(values, s)
        assert got.tolist() == [exact_round_half_up(int(v), s) for v in values]


def test_requantize_saturates_both_ends_and_relu_lower_bound():
    acc = np.array([10_000, -10_000, 255, -257, 0])
    assert numerics.requantize(acc, 1, -128, 127).tolist() == [127, -128, 127, -128, 0]
    assert numerics.requantize(acc, 1, 0, 127).tolist() == [127, 0, 127, 0, 0]
    # negative shift: the product saturates, it never wraps
    assert numerics.requantize(np.array([100, -100, 1]), -3, -128, 127).tolist() == [127, -128, 8]


def test_shift_out_of_range_is_refused():
    with pytest.raises(ValueError):
        numerics.rounding_shift(np.array([1]), 32)


@pytest.mark.parametrize("x, f, expected", [
    (0.5, 0, 1), (-0.5, 0, 0), (1.5, 0, 2), (-1.5, 0, -1), (2.5, 0, 3), (-2.5, 0, -2),
    (0.49999997, 0, 0),  # float32 0.49999997 + 0.5 would round to 1.0: the rule avoids it
    (0.25, 1, 1), (-0.25, 1, 0), (0.75, 2, 3), (1.0, 7, 127), (-1.0, 7, -128), (-2.0, 7, -128),
    (100.0, -3, 13),  # 12.5 -> 13
])
def test_quantize_float_round_half_up_and_saturation(x, f, expected):
    assert int(numerics.quantize_float(np.float32(x), f, -128, 127)) == expected


def test_quantize_float_refuses_nan():
    with pytest.raises(ValueError):
        numerics.quantize_float(np.array([1.0, np.nan]), 3, -128, 127)
    with pytest.raises(ValueError):  # one value takes its own path: the same rule
        numerics.quantize_float(float("inf"), 3, -128, 127)


def test_quantize_float_of_one_value_equals_the_array_rule(rng):
    """A scalar is quantized by Python's math (much faster for the format searches' single values):
    the same codes as the array path at ties, negatives, both saturation ends and huge values."""
    values = np.concatenate([rng.standard_normal(2000) * 100, np.arange(-40, 41) / 4,
                             [0.49999997, -0.49999997, 1e30, -1e30, 5e-324, -0.0]])
    for lo, hi in ((-128, 127), (0, 255), (-(1 << 62), 1 << 62)):
        for f in (-3, 0, 2, 7, 20):
            codes = numerics.quantize_float(values, f, lo, hi)
            one_by_one = [numerics.quantize_float(v, f, lo, hi) for v in values]
            assert all(type(c) is np.int64 for c in one_by_one)
            assert np.array_equal(np.array(one_by_one), codes)


def test_quantize_float_of_float32_arrays_equals_the_float64_steps(rng):
    """float32 arrays are quantized without a float64 copy: the same codes as the float64 steps at
    ties and the floats beside them, tiny and huge values (an overflow in float32 falls back),
    every clamp range (those beyond float32's exact integers fall back too)."""
    x = (rng.standard_normal(20000) * rng.choice([1e-30, 1e-3, 1.0, 7.0, 1e3, 1e20, 1e37], 20000)).astype(np.float32)
    ties = (np.arange(-2000, 2000) / 4).astype(np.float32)
    x = np.concatenate([x, ties, np.nextafter(ties, np.float32(10)), np.nextafter(ties, np.float32(-10)),
                        np.float32([3.4e38, -3.4e38, 0.0, -0.0, 0.49999997, -0.49999997])])

    def float64_steps(f, lo, hi):
        v = np.ldexp(x.astype(np.float64), f)
        fl = np.floor(v)
        return np.clip(fl + (v - fl >= 0.5), lo, hi).astype(np.int64)
    for f in (-31, -7, 0, 1, 2, 5, 13, 31, 60, 100, 140):
        for lo, hi in ((-128, 127), (0, 255), (-32768, 32767), (-(1 << 31), (1 << 31) - 1)):
            codes = numerics.quantize_float(x, f, lo, hi)
            assert codes.dtype == np.int64
            np.testing.assert_array_equal(codes, float64_steps(f, lo, hi), err_msg=f"f={f} [{lo}, {hi}]")


@pytest.mark.parametrize("max_abs, bits, expected", [
    (1.0, 8, 6),            # 1.0 * 2^7 = 128 > 127
    (0.99, 8, 7),           # 126.7 -> 127 fits
    (127.4 / 128, 8, 7),    # rounds to 127
    (127.5 / 128, 8, 6),    # rounds to 128: clips at f = 7
    (0.0, 8, 7),            # all zero: any f is exact
    (300.0, 8, -2),         # 300 / 4 = 75
    (1.0, 4, 2),            # 1.0 * 4 = 4 <= 7, * 8 = 8 > 7
])
def test_frac_bits_for_range(max_abs, bits, expected):
    assert numerics.frac_bits_for_range(max_abs, bits) == expected


def test_frac_bits_uses_the_asymmetric_negative_end():
    # -1.0 needs q = -128 at f = 7, which int8 has; +1.0 would not fit.
    assert numerics.frac_bits_for_values(np.array([-1.0, 0.5]), 8) == 7
    assert numerics.frac_bits_for_values(np.array([1.0, -0.5]), 8) == 6


@pytest.mark.parametrize("total, n, expected", [
    (3, 2, 2), (-3, 2, -1), (5, 3, 2), (-5, 3, -2), (4, 3, 1), (-4, 3, -1), (0, 9, 0),
    (9, 6, 2),  # 1.5 -> 2
    (-9, 6, -1),  # -1.5 -> -1
    (-128 * 9, 9, -128), (127 * 9, 9, 127),
])
def test_round_half_up_division(total, n, expected):
    assert int(numerics.round_half_up_div(total, n)) == expected
    assert int(numerics.round_half_up_div(total, n)) == math.floor(Fraction(total, n) + Fraction(1, 2))


def test_round_half_up_division_equals_shift_for_powers_of_two(rng):
    totals = rng.integers(-128 * 16, 127 * 16, size=500)
    for k in (1, 2, 3, 4):
        assert (numerics.round_half_up_div(totals, 1 << k) == numerics.rounding_shift(totals, k)).all()


def test_accumulator_bound():
    w = np.array([[1, -2, 3], [-128, 0, 0]])
    b = np.array([10, -5])
    assert numerics.accumulator_bound(w, b, 128) == max(6 * 128 + 10, 128 * 128 + 5)

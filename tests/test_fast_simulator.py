"""The simulator's float path for conv and linear layers (WeightedOp.run_int) equals the int64 reference
(run_int_reference) bit for bit: random integer layers with saturation, strides, padding read as a zero
point, groups, dilation, odd sizes, left and large right shifts, int16 inputs and the float64 and int64
fallbacks."""
from __future__ import annotations

import numpy as np
import pytest

from edgecompile import numerics, ops
from edgecompile.ir import Graph


def conv_graph(rng, c, h, w, oc, k, stride=(1, 1), pads=(0, 0, 0, 0), groups=1, dilation=(1, 1), in_bits=8,
               zero_point=0, shifts=(3, 9), weight_bits=8, bias_scale=1000):
    g = Graph()
    g.add_tensor("x", (c, h, w)).bits = in_bits
    g.tensors["x"].zero_point = zero_point
    node = ops.Conv2d("conv", ["x"], ["y"], attrs={"stride": list(stride), "pads": list(pads), "groups": groups,
                                                    "dilation": list(dilation)})
    node.params["weight"] = np.zeros((oc, c // groups, k[0], k[1]))  # the geometry only
    g.add_tensor("y", node.infer_shape(g))
    g.add_node(node)
    g.inputs, g.outputs = ["x"], ["y"]
    lo, hi = numerics.qrange(weight_bits)
    node.qparams = {"weight": rng.integers(lo, hi + 1, size=(oc, c // groups) + tuple(k)).astype(np.int8),
                    "shift": rng.integers(shifts[0], shifts[1] + 1, size=oc).astype(np.int8),
                    "bias": rng.integers(-bias_scale, bias_scale + 1, size=oc).astype(np.int32)}
    node.qattrs = {"act_min": -128, "act_max": 127}
    return g, node


def inputs(rng, g, n, bits=8):
    lo, hi = numerics.qrange(bits)
    return rng.integers(lo, hi + 1, size=(n,) + g.shape("x"), dtype=np.int64)


def check(g, node, x):
    fast, reference = node.run_int(g, x), node.run_int_reference(g, x)
    # the fast path writes the clamps' storage type (numerics.storage_dtype), the reference int64
    assert fast.dtype.kind == reference.dtype.kind == "i" and fast.shape == reference.shape
    np.testing.assert_array_equal(fast, reference)
    return fast


CONVS = [  # c, h, w, oc, kernel, stride, pads, groups, dilation
    (3, 9, 7, 5, (3, 3), (2, 2), (1, 1, 1, 1), 1, (1, 1)),
    (4, 8, 8, 6, (1, 1), (1, 1), (0, 0, 0, 0), 1, (1, 1)),
    (4, 9, 11, 6, (1, 1), (2, 2), (0, 0, 0, 0), 1, (1, 1)),
    (4, 7, 7, 6, (1, 1), (1, 1), (1, 0, 1, 0), 1, (1, 1)),
    (6, 11, 9, 6, (3, 3), (1, 1), (1, 1, 1, 1), 6, (1, 1)),
    (6, 11, 9, 6, (3, 3), (2, 2), (0, 1, 2, 1), 6, (1, 1)),
    (5, 13, 8, 5, (5, 5), (2, 1), (2, 2, 2, 2), 5, (1, 1)),
    (4, 10, 10, 8, (3, 3), (1, 1), (1, 1, 1, 1), 4, (1, 1)),  # depthwise with channel multiplier 2
    (6, 8, 7, 9, (1, 1), (1, 1), (0, 0, 0, 0), 3, (1, 1)),  # grouped 1x1
    (6, 9, 9, 4, (3, 3), (1, 2), (2, 2, 2, 2), 2, (2, 2)),
    (6, 9, 9, 6, (3, 3), (1, 1), (2, 2, 2, 2), 6, (2, 2)),  # dilated depthwise
    (3, 5, 5, 4, (3, 2), (1, 1), (0, 0, 0, 0), 1, (1, 1)),
    (24, 7, 3, 24, (3, 3), (1, 1), (1, 1, 1, 1), 24, (1, 1)),  # depthwise on rows much shorter than the channels
    (32, 9, 6, 32, (3, 3), (2, 2), (1, 1, 1, 1), 32, (1, 1)),
]


@pytest.mark.parametrize("zero_point", [0, -128])
@pytest.mark.parametrize("geometry", CONVS)
def test_conv_fast_path_equals_reference(rng, geometry, zero_point):
    c, h, w, oc, k, stride, pads, groups, dilation = geometry
    g, node = conv_graph(rng, c, h, w, oc, k, stride, pads, groups, dilation, zero_point=zero_point)
    y = check(g, node, inputs(rng, g, 5))
    assert (y == 127).any() and (y == -128).any()  # the clamps were exercised


@pytest.mark.parametrize("geometry", CONVS)
def test_channels_last_inputs_give_the_same_integers(rng, geometry):
    """A depthwise conv's output is channels-last in memory (PyTorch computes it that way), and so is a
    1x1 conv's that reads it: the integers do not depend on the layout they arrive in."""
    c, h, w, oc, k, stride, pads, groups, dilation = geometry
    g, node = conv_graph(rng, c, h, w, oc, k, stride, pads, groups, dilation, zero_point=-128)
    x = inputs(rng, g, 5)
    x_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert x_last.transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_array_equal(check(g, node, x_last), node.run_int(g, x))


def test_depthwise_in_several_groups_of_samples(rng):
    g, node = conv_graph(rng, 8, 40, 41, 8, (3, 3), (1, 1), (1, 1, 1, 1), 8, zero_point=-128)
    check(g, node, inputs(rng, g, 9))  # 8 * 40 * 41 outputs a sample: tap_sum takes them 2 at a time


def test_rounding_ties_left_shifts_and_large_right_shifts(rng):
    g, node = conv_graph(rng, 4, 6, 6, 8, (3, 3), pads=(1, 1, 1, 1))
    node.qparams["shift"] = np.array([-3, 0, 1, 2, 13, 20, 24, 31], dtype=np.int8)
    check(g, node, inputs(rng, g, 4))
    x = np.zeros((1,) + g.shape("x"), dtype=np.int64)  # acc = bias: exact halves round up, both signs
    node.qparams["bias"] = np.array([5, -5, 3, -3, 6, -6, 1, -1], dtype=np.int32)
    node.qparams["shift"] = np.array([1, 1, 1, 1, 2, 2, 1, 1], dtype=np.int8)
    y = check(g, node, x)
    assert y[0, :, 0, 0].tolist() == [3, -2, 2, -1, 2, -1, 1, 0]


def test_per_tensor_shift_and_no_bias_and_activation_clamp(rng):
    g, node = conv_graph(rng, 3, 7, 7, 4, (3, 3), pads=(1, 1, 1, 1))
    node.qparams["shift"] = node.qparams["shift"][:1]
    del node.qparams["bias"]
    node.qattrs = {"act_min": 0, "act_max": 96}
    y = check(g, node, inputs(rng, g, 3))
    assert y.min() == 0 and y.max() == 96


def test_int16_inputs_take_the_float64_path_and_stay_exact(rng, monkeypatch):
    g, node = conv_graph(rng, 8, 6, 6, 4, (3, 3), pads=(1, 1, 1, 1), in_bits=16, shifts=(14, 18), bias_scale=10 ** 6)
    dtypes = []
    products = ops.Conv2d.float_products
    monkeypatch.setattr(ops.Conv2d, "float_products", lambda self, g_, x, w, dtype: dtypes.append(dtype) or products(
        self, g_, x, w, dtype))
    check(g, node, inputs(rng, g, 3, bits=16))
    assert dtypes == [np.float64]  # 8 * 9 * 128 * 32768 is beyond float32's 2^24


def test_int16_depthwise_takes_the_float64_path_and_stays_exact(rng):
    g, node = conv_graph(rng, 6, 9, 8, 6, (3, 3), (2, 1), (1, 1, 1, 1), 6, in_bits=16, shifts=(14, 18),
                         bias_scale=10 ** 6)
    check(g, node, inputs(rng, g, 3, bits=16))  # sums near 9 * 128 * 32768: float64 in PyTorch's conv


def test_beyond_int32_falls_back_to_the_reference(rng):
    g, node = conv_graph(rng, 8, 6, 6, 4, (3, 3), pads=(1, 1, 1, 1), bias_scale=0)
    node.qparams["weight"][:] = 127
    x = np.full((1,) + g.shape("x"), 2 ** 22, dtype=np.int64)  # 72 * 127 * 2^22 overflows int32
    with pytest.raises(AssertionError):
        node.run_int(g, x)  # the reference's rule-1 assertion, as before


def test_linear_fast_path_equals_reference(rng):
    g = Graph()
    g.add_tensor("x", (5, 37))
    node = ops.Linear("fc", ["x"], ["y"], params={"weight": np.zeros((11, 37))})
    g.add_tensor("y", (5, 11))
    g.add_node(node)
    g.inputs, g.outputs = ["x"], ["y"]
    node.qparams = {"weight": rng.integers(-128, 128, size=(11, 37)).astype(np.int8),
                    "shift": rng.integers(-2, 12, size=11).astype(np.int8),
                    "bias": rng.integers(-5000, 5000, size=11).astype(np.int32)}
    node.qattrs = {"act_min": -128, "act_max": 127}
    check(g, node, rng.integers(-128, 128, size=(7, 5, 37)))
    check(g, node, rng.integers(-128, 128, size=(3, 37)))

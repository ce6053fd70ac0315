"""The evaluations Graph.run_float and simulate.run_dequantized keep are returned only for the same
graph and inputs: any change of params, attrs, formats or integer parameters, even in place, misses,
and what a caller gets is its own copy."""
from __future__ import annotations

import numpy as np

from edgecompile import ir, ops, simulate
from edgecompile.ops import activation
from edgecompile.ir import Graph


def small_graph(rng) -> Graph:
    g = Graph()
    g.add_tensor("x", (2, 6, 6))
    conv = ops.Conv2d("conv", ["x"], ["h"], attrs={"stride": [1, 1], "pads": [1, 1, 1, 1], "groups": 1,
                                                    "dilation": [1, 1]},
                      params={"weight": rng.standard_normal((3, 2, 3, 3)), "bias": rng.standard_normal(3)})
    g.add_tensor("h", conv.infer_shape(g))
    g.add_node(conv)
    g.inputs, g.outputs = ["x"], ["h"]
    for t, f in (("x", 5), ("h", 4)):
        g.tensors[t].frac_bits = f
    conv.qparams = {"weight": rng.integers(-128, 128, size=(3, 2, 3, 3)).astype(np.int8),
                    "shift": np.array([6], dtype=np.int8), "bias": rng.integers(-500, 500, size=3).astype(np.int32)}
    conv.qattrs = {"act_min": -128, "act_max": 127}
    return g


def fresh_float(g: Graph, x: np.ndarray) -> np.ndarray:
    return g.join_outputs(g.evaluate(g.split_inputs(x)))


def test_float_outputs_kept_only_for_the_same_graph_and_inputs(rng):
    g = small_graph(rng)
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    first = g.run_float(x)
    np.testing.assert_array_equal(first, fresh_float(g, x))
    first[:] = 0  # the caller's own copy
    np.testing.assert_array_equal(g.run_float(x), fresh_float(g, x))
    conv = g.nodes[0]
    conv.params["weight"][0, 0, 0, 0] += 1.0  # in place
    np.testing.assert_array_equal(g.run_float(x), fresh_float(g, x))
    conv.attrs["act"] = activation.RELU
    assert g.run_float(x).min() >= 0
    x2 = x.copy()
    x2[0, 0, 0, 0] += 1
    np.testing.assert_array_equal(g.run_float(x2), fresh_float(g, x2))


def test_keep_all_tensors_are_read_only_and_repeat_exactly(rng):
    g = small_graph(rng)
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    env = g.run_float(x, keep_all=True)
    assert not env["h"].flags.writeable
    again = g.run_float(x, keep_all=True)
    assert again.keys() == env.keys() and all(np.array_equal(again[t], env[t]) for t in env)
    g.nodes[0].params["bias"][1] += 0.5
    np.testing.assert_array_equal(g.run_float(x, keep_all=True)["h"], fresh_float(g, x))


def test_integer_outputs_follow_every_change_of_the_integer_model(rng):
    g = small_graph(rng)
    x = rng.standard_normal((20, 2, 6, 6)).astype(np.float32)

    def fresh() -> np.ndarray:
        y_q = g.evaluate_int(g.split_inputs(simulate.quantize_input(g, x)))["h"]
        return simulate.dequantize(g, "h", y_q)

    np.testing.assert_array_equal(simulate.run_dequantized(g, x), fresh())
    conv = g.nodes[0]
    conv.qparams["weight"][0, 0, 0, 0] ^= 1  # in place
    np.testing.assert_array_equal(simulate.run_dequantized(g, x), fresh())
    conv.qparams["shift"] = np.array([7], dtype=np.int8)
    np.testing.assert_array_equal(simulate.run_dequantized(g, x), fresh())
    g.tensors["h"].frac_bits = 3
    np.testing.assert_array_equal(simulate.run_dequantized(g, x), fresh())
    g.tensors["x"].zero_point = -4
    np.testing.assert_array_equal(simulate.run_dequantized(g, x), fresh())


def test_a_batch_in_parts_equals_the_whole(rng, monkeypatch):
    g = small_graph(rng)
    x_q = rng.integers(-128, 128, size=(37, 2, 6, 6))
    monkeypatch.setattr(simulate, "WORKERS", 1)
    whole = simulate.run_integer(g, x_q, keep_all=True)
    monkeypatch.setattr(simulate, "WORKERS", 2)
    assert len(simulate.batch_parts(g, len(x_q))) == 2
    parts = simulate.run_integer(g, x_q, keep_all=True)
    assert all(np.array_equal(parts[t], whole[t]) for t in whole)
    np.testing.assert_array_equal(simulate.run_integer(g, x_q), whole["h"])


def test_recurrent_graphs_are_not_kept():
    g = Graph()

    class Cell:
        body = object()

    g.nodes.append(Cell())
    assert g.content_key(np.zeros((1, 1))) is None and ir.FLOAT_CACHE_SIZE > 0


def test_parts_run_inline_inside_the_pool(rng, monkeypatch):
    g = small_graph(rng)
    x_q = rng.integers(-128, 128, size=(32, 2, 6, 6))
    monkeypatch.setattr(simulate, "WORKERS", 2)
    nested = simulate.map_parts(lambda part: simulate.run_integer(g, x_q[part]), simulate.batch_parts(g, len(x_q)))
    np.testing.assert_array_equal(np.concatenate(nested), simulate.run_integer(g, x_q))

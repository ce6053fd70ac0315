"""The efficient-CNN operator set, one small ONNX graph each (built with onnx.helper, the way other
exporters write them): float vs onnxruntime, integer vs float, C vs simulator bit-exact."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecompile import numerics, ops
from edgecompile.export import ExportSettings, export
from edgecompile.verify import verify
from conftest import require_tool

F = TensorProto.FLOAT


def const(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)


def save_model(tmp_path, name, nodes, x_shape, inits=(), y_shape=None, x_name="x", opset=17, extra_outputs=()):
    """An ONNX model of `nodes` with input x_name and output y (then extra_outputs: (name, shape) pairs)."""
    outputs = [helper.make_tensor_value_info("y", F, y_shape)]
    outputs += [helper.make_tensor_value_info(n, F, shape) for n, shape in extra_outputs]
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(x_name, F, x_shape)], outputs, list(inits))
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def compile_and_check(tmp_path, path, sample_shape, rng, min_sqnr=25.0, verify_c=True, **settings):
    calib = rng.standard_normal((64,) + tuple(sample_shape)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64, **settings))
    s = result.summary
    assert s["oracle_max_abs_err"] <= 1e-4
    assert s["output_sqnr_db"] >= min_sqnr, s["output_sqnr_db"]
    if verify_c:
        require_tool("gcc", "make")
        v = verify(result.out_dir)
        assert v.ok, v.first_mismatch
    return result


def conv_w(rng, oc, ic, k):
    return rng.standard_normal((oc, ic, k, k)) * (1.0 / np.sqrt(ic * k * k))


def test_depthwise_grouped_and_dilated_convolutions(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "Wd", "Bd"], ["d"], group=6, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["d"], ["r"]),
             helper.make_node("Conv", ["r", "Wg", "Bg"], ["g"], group=3),
             helper.make_node("Conv", ["g", "Wl"], ["y"], dilations=[2, 2], pads=[2, 2, 2, 2], strides=[2, 1])]
    inits = [const("Wd", conv_w(rng, 6, 1, 3) * rng.uniform(0.1, 3, (6, 1, 1, 1))), const("Bd", rng.standard_normal(6)),
             const("Wg", conv_w(rng, 9, 2, 1)), const("Bg", rng.standard_normal(9) * 0.1),
             const("Wl", conv_w(rng, 4, 9, 3))]
    path = save_model(tmp_path, "dw", nodes, [1, 6, 11, 9], inits)
    result = compile_and_check(tmp_path, path, (6, 11, 9), rng)
    convs = [n for n in result.compiled.graph.nodes if isinstance(n, ops.Conv2d)]
    assert [c.groups for c in convs] == [6, 3, 1] and convs[2].dilation == (2, 2)
    assert convs[0].qparams["shift"].size == 6  # per-channel shifts by default on depthwise


def test_residual_add_of_different_formats_with_fused_relu(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "W1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "W2"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    inits = [const("W1", conv_w(rng, 4, 3, 3) * 8), const("W2", conv_w(rng, 4, 3, 1) * 0.05)]
    path = save_model(tmp_path, "add", nodes, [1, 3, 6, 6], inits)
    result = compile_and_check(tmp_path, path, (3, 6, 6), rng)
    add = next(n for n in result.compiled.graph.nodes if isinstance(n, ops.Add))
    assert add.attrs["act"]["name"] == "relu" and add.qattrs["shift_a"] != add.qattrs["shift_b"]


def test_squeeze_excite_mul_and_tables(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["c"], ["h"]),
             helper.make_node("GlobalAveragePool", ["h"], ["p"]),
             helper.make_node("Conv", ["p", "Wse"], ["q"]),
             helper.make_node("HardSigmoid", ["q"], ["gate"], alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["h", "gate"], ["m"]),
             helper.make_node("Sigmoid", ["m"], ["s"]), helper.make_node("Tanh", ["s"], ["y"])]
    inits = [const("W", conv_w(rng, 8, 3, 3) * 2), const("Wse", conv_w(rng, 8, 8, 1) * 3)]
    path = save_model(tmp_path, "se", nodes, [1, 3, 7, 7], inits)
    result = compile_and_check(tmp_path, path, (3, 7, 7), rng)
    assert sum(isinstance(n, ops.Lut) for n in result.compiled.graph.nodes) == 4
    assert any(isinstance(n, ops.Mul) for n in result.compiled.graph.nodes)


@pytest.mark.slow
def test_squeeze_excite_product_reads_unsigned_codes_bit_exact(tmp_path, rng):
    """A MobileNet-style gate: ReLU6(conv) * hardsigmoid(...).  The ReLU6 output keeps its unsigned
    codes (z = -128) although a Mul reads it, and the C is bit-exact under ASan/UBSan."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Conv", ["p", "Wse"], ["q"]),
             helper.make_node("HardSigmoid", ["q"], ["gate"], alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["r", "gate"], ["m"]),
             helper.make_node("Conv", ["m", "Wp"], ["y"])]
    inits = [const("W", conv_w(rng, 8, 3, 3) * 2), const("Wse", conv_w(rng, 8, 8, 1) * 3),
             const("Wp", conv_w(rng, 4, 8, 1)), const("lo", np.array(0.0)), const("hi", np.array(6.0))]
    path = save_model(tmp_path, "gate", nodes, [1, 3, 7, 7], inits)
    result = compile_and_check(tmp_path, path, (3, 7, 7), rng)
    g = result.compiled.graph
    mul = next(n for n in g.nodes if isinstance(n, ops.Mul))
    assert g.tensors[mul.inputs[0]].zero_point == -128 and mul.qattrs["zero_a"] == -128
    assert g.tensors[mul.outputs[0]].zero_point == 0
    v = verify(result.out_dir, sanitize=True)
    assert v.ok, v.first_mismatch


def test_mul_zero_points_are_the_product_of_the_values(rng):
    """A product over unsigned or zero-pointed codes computes what the product of the values
    q - z computes (the same integers), at right, zero and left shifts, saturating at both ends."""
    def mul(za, zb, shift, lo=-128, hi=127):
        node = ops.Mul("mul", ["a", "b"], ["y"], attrs={"act": None})
        node.qattrs = {"shift": shift, "zero_a": za, "zero_b": zb, "act_min": lo, "act_max": hi}
        return node

    a = np.concatenate([[-128, 127, -128, 127, 0, 1], rng.integers(-128, 128, 300)]).reshape(2, -1, 1)
    b = np.concatenate([[-128, -128, 127, 127, 0, 1], rng.integers(-128, 128, 300)]).reshape(2, -1, 1)
    for za, zb in ((-128, -128), (-128, 0), (37, -5)):
        for shift in (9, 1, 0, -2):
            got = mul(za, zb, shift).run_int(None, a, b)
            want = numerics.saturate(numerics.rounding_shift((a.astype(np.int64) - za) * (b - zb), shift), -128, 127)
            assert np.array_equal(got, want)
            assert np.array_equal(got, mul(0, 0, shift).run_int(None, a - za, b - zb))  # the values' product
    # ties round half up, also for negative products: (-128 - 37) * 1 = -165 -> -165/2 = -82.5 -> -82
    assert mul(37, 0, 1).run_int(None, np.array([-128]), np.array([1]))[0] == -82
    assert set(mul(-128, -128, 9).run_int(None, a, b).ravel()) <= set(range(-128, 128))
    assert mul(-128, -128, 0).run_int(None, np.array([127]), np.array([127]))[0] == 127  # 255 * 255 saturates
    assert mul(-128, 0, 0).run_int(None, np.array([127]), np.array([-128]))[0] == -128  # -32640 saturates


def test_concat_keeps_each_branch_format_until_the_join(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "Wa"], ["a"]), helper.make_node("Conv", ["x", "Wb"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["y"], axis=1)]
    inits = [const("Wa", conv_w(rng, 3, 2, 1) * 0.02), const("Wb", conv_w(rng, 5, 2, 1) * 20)]
    path = save_model(tmp_path, "cat", nodes, [1, 2, 5, 5], inits)
    result = compile_and_check(tmp_path, path, (2, 5, 5), rng, output_bits=8)  # an int8 join
    g = result.compiled.graph
    cat = next(n for n in g.nodes if isinstance(n, ops.Concat))
    fa, fb = (g.tensors[t].frac_bits for t in cat.inputs)
    fy = g.tensors[cat.outputs[0]].frac_bits
    assert fa > fb + 5  # the small branch was computed in its own, finer format
    assert cat.qattrs["shifts"] == [fa - fy, fb - fy] and fb - fy in (0, 1)  # (1: the output's zero point)


@pytest.mark.slow
def test_channel_shuffle_reshape_transpose_reshape(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], group=2),
             helper.make_node("Reshape", ["c", "s5"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "s4"], ["y"])]
    inits = [const("W", conv_w(rng, 6, 2, 1)), const("s5", [1, 2, 3, 4, 5], np.int64),
             const("s4", [1, 6, 4, 5], np.int64)]
    path = save_model(tmp_path, "shuffle", nodes, [1, 4, 4, 5], inits)
    result = compile_and_check(tmp_path, path, (4, 4, 5), rng)
    g = result.compiled.graph
    transpose = next(n for n in g.nodes if isinstance(n, ops.Transpose))
    # its C stores the output shape and input strides, an int32 per axis each: flash the summary counts
    assert transpose.weight_bytes() == 0 and transpose.flash_bytes(g) == 2 * 4 * len(transpose.attrs["perm"])
    from test_compression import generated_weight_bytes
    assert result.summary["weight_bytes"] == generated_weight_bytes(result.out_dir, result.name)


@pytest.mark.slow
def test_nhwc_input_with_symbolic_batch_and_clip_as_relu6(tmp_path, rng):
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xt", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r6"]),
             helper.make_node("MaxPool", ["r6"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Clip", ["p", "lo", "hi2"], ["y"])]
    inits = [const("W", conv_w(rng, 4, 3, 3) * 3), const("B", rng.standard_normal(4)), const("lo", 0.0),
             const("hi", 6.0), const("hi2", 2.0)]
    path = save_model(tmp_path, "nhwc", nodes, ["N", 8, 8, 3], inits)
    result = compile_and_check(tmp_path, path, (8, 8, 3), rng)
    g = result.compiled.graph
    assert g.input.shape == (8, 8, 3)
    conv = next(n for n in g.nodes if isinstance(n, ops.Conv2d))
    assert conv.attrs["act"]["name"] == "relu6"
    assert any(isinstance(n, ops.Clip) for n in g.nodes)  # after the pool it stays a clamp of its own
    header = (result.out_dir / "src" / "nhwc.h").read_text()
    assert "NHWC" in header and "H,W,C" in header


@pytest.mark.slow
def test_tf2onnx_patterns_dequantized_weights_pad_matmul_and_dynamic_flatten(tmp_path, rng):
    w_q = rng.integers(-127, 128, size=(4, 2, 3, 3)).astype(np.int8)
    nodes = [helper.make_node("DequantizeLinear", ["Wq", "scale", "zp"], ["W"], axis=0),
             helper.make_node("Pad", ["x", "pads"], ["xp"]),
             helper.make_node("Conv", ["xp", "W"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Shape", ["r"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "zero1d"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["r", "target"], ["f"]),
             helper.make_node("MatMul", ["f", "M"], ["mm"]),
             helper.make_node("Add", ["mm", "Bm"], ["y"])]
    inits = [numpy_helper.from_array(w_q, "Wq"), const("scale", rng.uniform(0.005, 0.02, 4)),
             numpy_helper.from_array(np.zeros(4, np.int8), "zp"),
             const("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64), const("zero", 0, np.int64),
             const("zero1d", [0], np.int64), const("minus1", [-1], np.int64),
             const("M", rng.standard_normal((4 * 6 * 6, 5)) * 0.1), const("Bm", rng.standard_normal(5))]
    path = save_model(tmp_path, "tf2onnx", nodes, ["N", 2, 6, 6], inits)
    result = compile_and_check(tmp_path, path, (2, 6, 6), rng)
    types = [type(n).__name__ for n in result.compiled.graph.nodes]
    assert types == ["Conv2d", "Reshape", "Linear"]  # Pad folded, Relu fused, Add became the bias
    assert result.compiled.graph.nodes[0].attrs["pads"] == [1, 1, 1, 1]


def test_softmax_integer_rule_and_drop(tmp_path, rng):
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["z"], transB=1), helper.make_node("Softmax", ["z"], ["y"])]
    inits = [const("W", rng.standard_normal((10, 16)) * 0.6), const("B", rng.standard_normal(10))]
    path = save_model(tmp_path, "softmax", nodes, [1, 16], inits)
    result = compile_and_check(tmp_path, path, (16,), rng, min_sqnr=30)
    assert result.compiled.graph.output.frac_bits == 7
    assert result.summary["top1_agreement"] >= 0.95
    dropped = export(ExportSettings(path, tmp_path / "dropped", tmp_path / "calib.npy", vectors=8, drop_softmax=True))
    assert not any(isinstance(n, ops.Softmax) for n in dropped.compiled.graph.nodes)
    assert any("dropped" in n for n in dropped.compiled.graph.notes)
    # the C returns logits, so they are judged against the float logits (not the probabilities)
    assert dropped.compiled.softmax_dropped and dropped.summary["output_sqnr_db"] > 25
    assert dropped.summary["top1_agreement"] >= 0.95


def test_division_by_a_zero_constant_is_a_clear_error(tmp_path, rng):
    from edgecompile.errors import EdgeCompileError
    from edgecompile.frontend import load_model

    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["z"], transB=1), helper.make_node("Div", ["z", "d"], ["y"])]
    inits = [const("W", rng.standard_normal((3, 4))), const("B", rng.standard_normal(3)), const("d", [1.0, 0.0, 2.0])]
    path = save_model(tmp_path, "div0", nodes, [1, 4], inits)
    with np.errstate(all="raise"):  # and no numpy warning on the way
        with pytest.raises(EdgeCompileError, match="Div.*holds 0"):
            load_model(path)


def test_a_derived_layer_name_never_takes_another_nodes_own_name(tmp_path, rng):
    """'fc/0' reads as fc.0, but a node literally named 'fc.0' keeps that name (found by fuzzing:
    --bits fc.0=4 reached the wrong layer)."""
    nodes = [helper.make_node("Gemm", ["x", "W1"], ["t1"], transB=1, name="fc/0"),
             helper.make_node("Gemm", ["t1", "W2"], ["y"], transB=1, name="fc.0")]
    inits = [const("W1", rng.standard_normal((6, 6))), const("W2", rng.standard_normal((3, 6)))]
    path = save_model(tmp_path, "names", nodes, [1, 6], inits)
    np.save(tmp_path / "calib.npy", rng.standard_normal((16, 6)).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=4, bits="8,fc.0=4"))
    first, second = result.compiled.graph.nodes
    assert second.name == "fc.0" and second.qattrs["weight_bits"] == 4
    assert first.name != "fc.0" and first.qattrs["weight_bits"] == 8


def test_layer_table_shows_uneven_padding_and_strides(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 0, 1, 0], strides=[2, 1])]
    path = save_model(tmp_path, "uneven", nodes, [1, 2, 6, 6], [const("W", conv_w(rng, 3, 2, 3))])
    np.save(tmp_path / "calib.npy", rng.standard_normal((8, 2, 6, 6)).astype(np.float32))
    conv = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=2)).compiled.graph.nodes[0]
    assert conv.describe().startswith("3x3 s2,1 p1,0,1,0")  # it printed '3x3 s2 p1'


@pytest.mark.slow
def test_opset_18_pad_with_axes_folds_into_the_conv(tmp_path, rng):
    nodes = [helper.make_node("Pad", ["x", "p", "", "ax"], ["xp"]), helper.make_node("Conv", ["xp", "W"], ["y"])]
    inits = [const("W", conv_w(rng, 3, 2, 3)), const("p", [1, 2], np.int64), const("ax", [-2], np.int64)]
    path = save_model(tmp_path, "pad18", nodes, [1, 2, 5, 5], inits, opset=18)
    result = compile_and_check(tmp_path, path, (2, 5, 5), rng)
    conv = result.compiled.graph.nodes[0]
    assert conv.attrs["pads"] == [1, 0, 2, 0]  # top, left, bottom, right: H only


def test_a_model_that_computes_nothing_is_a_clear_error(tmp_path, rng):
    from edgecompile.errors import EdgeCompileError

    path = save_model(tmp_path, "noop", [helper.make_node("Identity", ["x"], ["y"])], [1, 6])
    np.save(tmp_path / "calib.npy", rng.standard_normal((8, 6)).astype(np.float32))
    with pytest.raises(EdgeCompileError, match="noop.*computes nothing"):
        export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy"))


@pytest.mark.slow
def test_reduce_mean_is_a_global_pool(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]),
             helper.make_node("ReduceMean", ["c", "axes"], ["y"], keepdims=0)]
    path = save_model(tmp_path, "mean", nodes, [1, 3, 5, 4], [const("W", conv_w(rng, 6, 3, 1)),
                                                               const("axes", [2, 3], np.int64)], opset=18)
    result = compile_and_check(tmp_path, path, (3, 5, 4), rng)
    assert result.compiled.graph.output.shape == (6,)


# -- numerics of the new rules, at their edges -------------------------------------------------

def test_add_alignment_rule_edges():
    a = np.array([127, -128, 1, -1, 3])
    b = np.array([127, -128, -1, 1, -3])
    # a has 5 frac bits, b has 2: align b by 3 (exact), then shift the sum down to 4 frac bits
    acc = numerics.align(a, 0) + numerics.align(b, 3)
    assert acc.tolist() == [127 + 1016, -128 - 1024, 1 - 8, -1 + 8, 3 - 24]
    assert numerics.requantize(acc, 1, -128, 127).tolist() == [127, -128, -3, 4, -10]
    # a rounding alignment (k < 0) follows rule 2: ties towards +infinity
    assert numerics.align(np.array([3, -3, 5, -5]), -1).tolist() == [2, -1, 3, -2]


def test_lut_tables_are_exact_roundings(tmp_path, rng):
    from edgecompile.ir import Graph

    g = Graph()
    g.add_tensor("x", (4,)).frac_bits = 4
    g.add_tensor("y", (4,)).frac_bits = 6
    g.inputs, g.outputs = ["x"], ["y"]
    for fn, reference in (("hardswish", lambda v: v * np.clip(v / 6 + 0.5, 0, 1)), ("tanh", np.tanh),
                          ("sigmoid", lambda v: 1 / (1 + np.exp(-v)))):
        node = ops.Lut("l", ["x"], ["y"], attrs={"fn": fn})
        node.quantize(g, None)
        q = np.arange(-128, 128)
        want = np.clip(np.floor(reference(q / 16.0) * 64 + 0.5), -128, 127)
        assert np.array_equal(node.run_int(g, q[None]), want[None]), fn
    # a table over a coarse format reaches exp's overflow: the limits, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn, limits in (("sigmoid", [0.0, 0.5, 1.0]), ("silu", [0.0, 0.0, 1000.0])):
            assert ops.Lut("l", ["x"], ["y"], attrs={"fn": fn}).function(np.array([-1000.0, 0.0, 1000.0])).tolist() \
                == limits


def test_softmax_rule_matches_its_definition():
    from edgecompile.ir import Graph

    g = Graph()
    g.add_tensor("x", (5,)).frac_bits = 3
    g.add_tensor("y", (5,)).frac_bits = 7
    node = ops.Softmax("s", ["x"], ["y"])
    node.quantize(g, None)
    x = np.array([[127, -128, 0, 5, 5], [0, 0, 0, 0, 0]])
    e = np.floor(np.exp(-(x.max(1, keepdims=True) - x) / 8.0) * 2 ** 15 + 0.5)
    want = np.minimum(np.floor(e * 128 / e.sum(1, keepdims=True) + 0.5), 127)
    assert np.array_equal(node.run_int(g, x), want)
    assert node.run_int(g, x)[1].tolist() == [26, 26, 26, 26, 26]  # 128/5 = 25.6


def test_add_zero_points_are_the_signed_add_of_the_values(rng):
    """An add over unsigned codes (zero point -128) computes what the signed add computes on the
    values q - z (wider than int8 here, as ec_add_any would hold them), and an unsigned output is
    the signed result's code minus 128, its ReLU clamp at code -128."""
    def add(za, zb, zy, lo, hi, mult_b=1, shift_a=2, shift_b=0, shift_out=1):
        node = ops.Add("add", ["a", "b"], ["y"], attrs={"act": None})
        node.qattrs = {"mult_a": 1, "shift_a": shift_a, "mult_b": mult_b, "shift_b": shift_b,
                       "shift_out": shift_out, "zero_a": za, "zero_b": zb, "zero_y": zy, "act_min": lo, "act_max": hi}
        return node

    a = np.concatenate([[-128, 127, -128, 127], rng.integers(-128, 128, 200)])
    b = np.concatenate([[-128, -128, 127, 127], rng.integers(-128, 128, 200)])
    for mult_b, shift_b, shift_out in ((1, 0, 1), (-11585, -11, 3), (1, 3, 0), (1, -2, -3)):
        want = add(0, 0, 0, 0, 255, mult_b, 2, shift_b, shift_out).run_int(None, a + 128, b)  # ReLU, 9-bit
        got = add(-128, 0, -128, -128, 127, mult_b, 2, shift_b, shift_out).run_int(None, a, b)
        assert np.array_equal(got, np.minimum(want, 255) - 128)
        both = add(-128, -128, 0, -128, 127, mult_b, 2, shift_b, shift_out).run_int(None, a, b)
        assert np.array_equal(both, add(0, 0, 0, -128, 127, mult_b, 2, shift_b, shift_out).run_int(None, a + 128,
                                                                                                      b + 128))


def test_leaky_relu_bit_exact_on_the_host_and_under_qemu(tmp_path, rng):
    """ONNX LeakyRelu (its default alpha and a given one) after convolutions: float vs onnxruntime,
    integer vs float, C vs simulator on the host and on Cortex-M0+ and M4 under QEMU."""
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c1"], ["l1"]),
             helper.make_node("Conv", ["l1", "W2"], ["c2"]),
             helper.make_node("LeakyRelu", ["c2"], ["y"], alpha=0.2)]
    inits = [const("W1", conv_w(rng, 6, 3, 3)), const("B1", rng.standard_normal(6) * 0.5), const("W2", conv_w(rng, 4, 6, 1))]
    path = save_model(tmp_path, "leaky", nodes, [1, 3, 8, 8], inits)
    result = compile_and_check(tmp_path, path, (3, 8, 8), rng)
    leaky = [n for n in result.compiled.graph.nodes if isinstance(n, ops.LeakyRelu)]
    assert [n.attrs["alpha"] for n in leaky] == [pytest.approx(0.01), pytest.approx(0.2)]
    assert [n.qattrs["mult"] for n in leaky] == [164, 3277]  # round(alpha * 2^14)
    require_tool("arm-none-eabi-gcc", "qemu-system-arm")
    for target in ("qemu-m0plus", "qemu-m4"):
        v = verify(result.out_dir, target=target)
        assert v.ok and v.total == 64, (target, v.first_mismatch)


def test_leaky_relu_rule_edges():
    """y = x for x >= 0, else floor(x * m / 2^g + 1/2) saturated, for slopes that tie, flip and saturate."""
    from fractions import Fraction

    from edgecompile.ir import Graph

    g = Graph()
    g.add_tensor("x", (256,)).frac_bits = 4
    g.add_tensor("y", (256,)).frac_bits = 4
    x = np.arange(-128, 128)
    for alpha, m, shift in ((0.01, 164, 14), (0.5, 8192, 14), (0.0, 0, 14), (1.0, 1, 0), (-1.0, -1, 0),
                            (-0.25, -4096, 14), (3.0, 49152, 14)):
        node = ops.LeakyRelu("l", ["x"], ["y"], attrs={"alpha": alpha})
        node.quantize(g, None)
        assert (node.qattrs["mult"], node.qattrs["shift"]) == (m, shift)
        want = [v if v >= 0 else min(max(int(np.floor(Fraction(v * m, 2 ** shift) + Fraction(1, 2))), -128), 127)
                for v in x.tolist()]
        assert node.run_int(g, x[None]).tolist() == [want], alpha
    half = ops.LeakyRelu("l", ["x"], ["y"], attrs={"alpha": 0.5})
    half.quantize(g, None)
    assert half.run_int(g, np.array([[-1, -3, -128, 0, 127]])).tolist() == [[0, -1, -64, 0, 127]]  # ties go up


def test_leaky_relu_qat_forward_equals_the_simulator():
    """nn.LeakyReLU reaches the op through the PyTorch frontend (ONNX LeakyRelu), and QAT's forward
    pass computes the simulator's integers on it; gradients pass through its negative side."""
    import torch

    from edgecompile import qat, simulate

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.LeakyReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 4 * 4, 8), torch.nn.LeakyReLU(0.3), torch.nn.Linear(8, 3))
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((32, 2, 6, 6)).astype(np.float32)
    model = qat.prepare(net, calib, bits=8)
    assert sum(isinstance(n, ops.LeakyRelu) for n in model.graph.nodes) == 2
    x = torch.from_numpy(rng.standard_normal((16, 2, 6, 6)).astype(np.float32))
    model.train()
    model(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        q = model(x, integers=True).numpy().astype(np.int64)
    g = model.graph
    assert np.array_equal(q, simulate.run_integer(g, simulate.quantize_input(g, x.numpy())))

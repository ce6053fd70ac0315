"""Export -> C -> run: the generated C equals the integer simulator bit for bit,
and the integer model keeps the float model's accuracy."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from edgecompile import ops, simulate
from edgecompile.export import ExportSettings, export
from edgecompile.manifest import read_manifest
from edgecompile.verify import verify
from conftest import randomize_batchnorm, require_tool, save_torchscript
from models_for_tests import INPUT_SHAPES, ConvBNNet, OddConvNet, ResidualNet, WideMLP


@pytest.fixture(autouse=True)
def _tools():
    require_tool("gcc", "make")


@pytest.mark.slow
def test_digits_lenet_accuracy_and_bit_exactness(digits_lenet, digits_lenet_export):
    result = digits_lenet_export
    x, y = np.load(digits_lenet["test_x"]), np.load(digits_lenet["test_y"])
    int_acc = float(np.mean(simulate.run_dequantized(result.compiled.graph, x).argmax(1) == y))
    float_acc = digits_lenet["float_acc"]
    assert float_acc > 0.9
    assert int_acc >= float_acc - 0.01, (int_acc, float_acc)
    v = verify(result.out_dir)
    assert v.total == 256 and v.ok


@pytest.mark.slow
def test_digits_mlp_accuracy_and_bit_exactness(digits_mlp, tmp_path):
    result = export(ExportSettings(digits_mlp["model"], tmp_path / "mlp", digits_mlp["calib"]))
    x, y = np.load(digits_mlp["test_x"]), np.load(digits_mlp["test_y"])
    int_acc = float(np.mean(simulate.run_dequantized(result.compiled.graph, x).argmax(1) == y))
    assert int_acc >= digits_mlp["float_acc"] - 0.01
    assert verify(result.out_dir).ok
    assert result.compiled.plan.arena_size == 256 + 128  # the two hidden layers, input/output are the caller's


@pytest.mark.slow
def test_digits_lenet_under_sanitizers(digits_lenet_export):
    v = verify(digits_lenet_export.out_dir, sanitize=True, count=64)
    assert v.ok and v.total == 64


@pytest.mark.slow
def test_generated_c_is_warning_free_under_gcc_and_clang(digits_lenet_export, tmp_path):
    require_tool("clang")
    out = digits_lenet_export.out_dir
    name = digits_lenet_export.name
    for cc in ("gcc", "clang"):
        subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-c",
                        f"-I{out / 'runtime'}", str(out / "src" / f"{name}.c"), "-o", str(tmp_path / f"{cc}.o")],
                       check=True)


@pytest.mark.slow
def test_inference_path_has_no_float_or_malloc(digits_lenet_export):
    out = digits_lenet_export.out_dir
    model_c = (out / "src" / f"{digits_lenet_export.name}.c").read_text()
    kernels = "".join(p.read_text() for p in (out / "runtime").glob("ec_*.c"))
    for text in (model_c, kernels):
        assert "float" not in text and "double" not in text and "malloc" not in text


@pytest.mark.slow
def test_manifest_round_trip_gives_the_same_simulation(digits_lenet, digits_lenet_export):
    graph, _ = read_manifest(digits_lenet_export.out_dir)
    x = np.load(digits_lenet["test_x"])[:64]
    q = simulate.quantize_input(graph, x)
    assert np.array_equal(simulate.run_integer(graph, q),
                          simulate.run_integer(digits_lenet_export.compiled.graph, q))


@pytest.mark.slow
def test_rank_16_shrinks_fc_weights_by_the_formula_and_stays_exact(digits_lenet, tmp_path):
    result = export(ExportSettings(digits_lenet["model"], tmp_path / "r16", digits_lenet["calib"], rank=16))
    g = result.compiled.graph
    r = 16
    def shifts(node):  # one byte per output channel, or one for all when they agree
        return node.qparams["shift"].size

    for name, (i, o) in {"fc1": (400, 120), "fc2": (120, 84)}.items():
        v, u = g.node(f"{name}.V"), g.node(f"{name}.U")
        # r*in int8 weights (+ r int32 biases holding an unsigned input's zero point); out*r weights + out
        # int32 biases; plus the shift bytes
        unsigned_input = g.tensors[v.inputs[0]].zero_point != 0
        assert v.weight_bytes() == r * i + 4 * r * unsigned_input + shifts(v)
        assert u.weight_bytes() == o * r + 4 * o + shifts(u)
        assert shifts(v) in (1, r) and shifts(u) in (1, o)
    assert g.node("fc3").weight_bytes() == 84 * 10 + 40 + shifts(g.node("fc3"))  # 16 >= 8.9: kept whole
    assert verify(result.out_dir).ok
    x, y = np.load(digits_lenet["test_x"]), np.load(digits_lenet["test_y"])
    acc = float(np.mean(simulate.run_dequantized(g, x).argmax(1) == y))
    assert acc > 0.9


def random_model(cls, seed):
    torch.manual_seed(seed)
    model = cls().eval()
    randomize_batchnorm(model, seed)
    return model


@pytest.mark.parametrize("cls, rank", [(ConvBNNet, None), (ConvBNNet, 4), (OddConvNet, None),
                                       (WideMLP, None), (WideMLP, 12)],
                         ids=["convbn", "convbn-rank4", "oddconv", "mlp", "mlp-rank12"])
@pytest.mark.slow
def test_random_models_bit_exact(cls, rank, tmp_path, rng):
    shape = INPUT_SHAPES[cls]
    path = save_torchscript(random_model(cls, 3), tmp_path / "m.pt")
    calib = rng.standard_normal((96,) + shape).astype(np.float32) * 1.5
    np.save(tmp_path / "calib.npy", calib)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", rank=rank, vectors=128))
    assert result.summary["quantization_sqnr_db"] > 20
    v = verify(result.out_dir)
    assert v.ok and v.total == 128
    # random inputs beyond the calibration range saturate the same way in C and simulator
    wild = (rng.standard_normal((32,) + shape) * 6).astype(np.float32)
    np.save(tmp_path / "wild.npy", wild)
    assert verify(result.out_dir, inputs=tmp_path / "wild.npy").ok


@pytest.mark.slow
def test_residual_relu_codes_are_unsigned_through_adds_and_pools(tmp_path, rng):
    """ReLU outputs read by the skip Add, Add+ReLU outputs read by a conv and a global average pool, and
    the pools' outputs (read by Linears) are unsigned codes (zero point -128); the C is bit-exact."""
    from edgecompile import ops

    shape = INPUT_SHAPES[ResidualNet]
    path = save_torchscript(random_model(ResidualNet, 4), tmp_path / "m.pt")
    np.save(tmp_path / "calib.npy", rng.standard_normal((96,) + shape).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=128))
    g = result.compiled.graph
    adds = [n for n in g.nodes if isinstance(n, ops.Add)]
    skip = next(n for n in adds if (n.attrs.get("act") or {}).get("min") == 0)
    pools = [n for n in g.nodes if isinstance(n, ops.AvgPool2d)]
    convs = [n for n in g.nodes if isinstance(n, ops.Conv2d)]
    stem, head = convs[0], convs[-1]
    unsigned = [stem.outputs[0], skip.outputs[0], head.outputs[0]] + [p.outputs[0] for p in pools]
    assert len(pools) == 2 and all(g.tensors[t].zero_point == -128 for t in unsigned), \
        {t: g.tensors[t].zero_point for t in unsigned}
    assert skip.qattrs["zero_a"] == -128 and skip.qattrs["zero_y"] == -128 and skip.qattrs["act_min"] == -128
    assert all(p.qattrs["offset"] == -128 + (128 << p.qattrs["scale_shift"]) for p in pools)
    assert g.tensors[g.outputs[0]].zero_point == 0  # never a model output
    assert "u" in skip.formats(g)
    assert result.summary["quantization_sqnr_db"] > 25
    v = verify(result.out_dir)
    assert v.ok and v.total == 128
    wild = (rng.standard_normal((32,) + shape) * 6).astype(np.float32)  # saturating inputs too
    np.save(tmp_path / "wild.npy", wild)
    assert verify(result.out_dir, inputs=tmp_path / "wild.npy").ok


def _padded_readers_net():
    """ReLU convs feeding padded convs of every C path: a dense 3x3 (ec_conv2d_fast_s8's padded
    band), depthwise 3x3 (stride 1 and 2), a dilated grouped 3x3 (the general grouped loop), a
    grouped 3x3 with 2 channels per group (one ec_conv2d_fast_s8 per group) and a depthwise 5x5."""
    from torch import nn

    def block(cin, cout, k, stride=1, groups=1, dilation=1):
        return [nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation=dilation, groups=groups),
                nn.BatchNorm2d(cout), nn.ReLU()]

    model = nn.Sequential(*block(3, 8, 3), *block(8, 8, 3), *block(8, 8, 3, groups=8), *block(8, 8, 3, 2, groups=8),
                          *block(8, 8, 3, groups=4, dilation=2), *block(8, 8, 3, groups=4), *block(8, 8, 5, groups=8),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    torch.manual_seed(11)
    randomize_batchnorm(model, 11)
    return model.eval()


@pytest.mark.parametrize("storage", [{}, dict(bits="4"), dict(sparse="on"), dict(act_bits="3=16")],
                         ids=["dense", "packed", "sparse", "int16-output"])
@pytest.mark.slow
def test_padded_convs_read_unsigned_relu_codes_bit_exactly(storage, tmp_path, rng):
    """A ReLU conv's output read by padded convs (dense, depthwise, grouped, dilated; with packed
    or sparse weights; or writing int16, through ec_conv2d_any) is stored as unsigned codes (zero
    point -128), and the padding reads -128, the code of real zero, in the simulator and in every
    C kernel: bit-exact on the host."""
    path = save_torchscript(_padded_readers_net(), tmp_path / "padded.pt")
    np.save(tmp_path / "calib.npy", rng.standard_normal((64, 3, 13, 11)).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64, **storage))
    g = result.compiled.graph
    convs = [n for n in g.nodes if isinstance(n, ops.Conv2d)]
    readers = convs[1:]  # every conv after the first reads a ReLU conv's output
    assert len(readers) == 6 and all(any(n.attrs["pads"]) for n in readers)
    narrow = [n for n in readers if g.tensors[n.inputs[0]].bits == 8]  # an int16 ReLU output stays signed
    assert len(narrow) == 6 - ("act_bits" in storage)
    assert all(g.tensors[n.inputs[0]].zero_point == -128 for n in narrow)
    assert g.tensors[convs[-1].outputs[0]].zero_point == -128  # read by the (unpadded) average pool: unsigned too
    text = (result.out_dir / "src" / f"{result.name}.c").read_text()
    if "act_bits" in storage:  # conv 3 reads unsigned int8 codes and writes int16
        assert g.node("3").is_wide(g) and g.node("3") in narrow and "ec_conv2d_any(" in text
    elif storage:  # some padded readers take the packed or sparse kernel
        assert any(isinstance(n, (ops.PackedConv2d, ops.SparseConv2d)) for n in readers)
    assert re.search(r"ec_conv2d_\w+\([^;]*/\*pad_top=\*/1, /\*pad_left=\*/1, /\*pad_value=\*/-128, ", text)
    v = verify(result.out_dir, sanitize=bool(storage))
    assert v.ok and v.total == 64, v.first_mismatch


@pytest.mark.slow
def test_export_without_calibration_uses_batchnorm_statistics(tmp_path):
    path = save_torchscript(random_model(ConvBNNet, 5), tmp_path / "m.pt")
    result = export(ExportSettings(path, tmp_path / "out", None, input_shape=(3, 24, 24), vectors=64))
    assert result.compiled.calib_is_synthetic
    assert "BatchNorm statistics" in (tmp_path / "out" / "report.md").read_text()
    assert verify(result.out_dir).ok


def onnx_single_op(tmp_path, node, x_shape, y_shape, inits=()):
    graph = helper.make_graph([node], "op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], list(inits))
    path = tmp_path / f"{node.op_type}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def tensor(name, arr):
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.astype(np.float32).ravel())


ONNX_CASES = {
    "conv-pad-asym-stride": lambda r: (helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=[1, 0, 2, 1],
                                                        strides=[2, 3]), [1, 3, 9, 10], None,
                                       [tensor("W", r.standard_normal((4, 3, 3, 2))), tensor("B", r.standard_normal(4))]),
    "conv-same-upper": lambda r: (helper.make_node("Conv", ["x", "W"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2]),
                                  [1, 2, 7, 8], None, [tensor("W", r.standard_normal((3, 2, 4, 4)))]),
    "maxpool-ceil-pad": lambda r: (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                    pads=[1, 1, 1, 1], ceil_mode=1), [1, 3, 10, 11], None, []),
    "avgpool-exclude-pad": lambda r: (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
                                                       strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0),
                                      [1, 2, 7, 9], None, []),
    "avgpool-include-pad": lambda r: (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 3],
                                                       strides=[1, 2], pads=[1, 1, 0, 1], count_include_pad=1),
                                      [1, 2, 5, 6], None, []),
    "global-avgpool": lambda r: (helper.make_node("GlobalAveragePool", ["x"], ["y"]), [1, 4, 5, 7], None, []),
    "gemm-alpha-beta": lambda r: (helper.make_node("Gemm", ["x", "W", "B"], ["y"], alpha=0.5, beta=2.0),
                                  [1, 12], None, [tensor("W", r.standard_normal((12, 7))), tensor("B", r.standard_normal(7))]),
}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_single_onnx_ops_bit_exact_and_close_to_float(case, tmp_path, rng):
    node, x_shape, y_shape, inits = ONNX_CASES[case](rng)
    path = onnx_single_op(tmp_path, node, x_shape, y_shape, inits)
    calib = rng.standard_normal([64] + x_shape[1:]).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64))
    assert result.summary["oracle_max_abs_err"] <= 1e-4
    assert result.summary["output_sqnr_db"] > 25
    assert verify(result.out_dir).ok

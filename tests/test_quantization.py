"""Calibration methods with known answers, sub-8-bit packing, mixed precision, bias
correction, and quantization-aware training whose forward pass the C matches bit for bit."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgecompile import ops, packing, simulate
from edgecompile.errors import EdgeCompileError
from edgecompile.export import ExportSettings, export
from edgecompile.formats import TensorRange, frac_bits_for
from edgecompile.passes.quantize import parse_bits
from edgecompile.verify import verify
from conftest import require_tool


# -- calibration methods on inputs with a known answer ---------------------------------------------

def stats(values) -> TensorRange:
    return TensorRange.of(np.asarray(values, dtype=np.float64))


def test_minmax_keeps_every_value():
    assert frac_bits_for(stats([-1.0, 0.99]), 8, "minmax") == 7  # -1.0 -> -128 fits
    assert frac_bits_for(stats([-0.5, 1.0]), 8, "minmax") == 6   # +1.0 would be 128


def test_percentile_ignores_rare_outliers():
    values = np.concatenate([np.linspace(-0.9, 0.9, 100_000), [50.0] * 5])
    assert frac_bits_for(stats(values), 8, "minmax") == 1     # 50 * 2 = 100
    assert frac_bits_for(stats(values), 8, "percentile") == 7  # 0.9 * 128 = 115


def test_sigma_uses_three_standard_deviations():
    values = np.random.default_rng(0).standard_normal(200_000)  # mean 0, std 1: +-3 -> f = 5 (3.97)
    assert frac_bits_for(stats(values), 8, "sigma") == 5


def test_mse_trades_a_clipped_outlier_for_finer_steps():
    values = np.concatenate([np.linspace(-1, 1, 10_000), [8.0]])
    # f=3 keeps the 8 (error (1/8)^2/12 on every value); f=4 clips it by 1/16 and halves the step:
    # its total error is the smallest of f = 3..8 (f >= 5 clips the outlier by 4 or more)
    assert frac_bits_for(stats(values), 8, "minmax") == 3
    assert frac_bits_for(stats(values), 8, "mse") == 4


# -- packing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 3, 4])
def test_packing_round_trips_at_the_range_ends(bits, rng):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for k in (1, 2, 3, 5, 8, 13):
        w = rng.integers(lo, hi + 1, size=(3, k))
        w[0, 0], w[-1, -1] = lo, hi
        packed = packing.pack(w, bits)
        assert packed.size == 3 * packing.row_bytes(k, bits)
        assert np.array_equal(packing.unpack(packed, 3, k, bits), w)
    assert packing.pack(np.array([[-2, 1, 0, -1, 1]]), 2).tolist() == [0b11_00_01_10, 0b01]  # lowest field first
    assert packing.pack(np.array([[-8, 7, -1]]), 4).tolist() == [0x78, 0x0F]
    with pytest.raises(ValueError):
        packing.pack(np.array([[hi + 1]]), bits)


def linear_and_conv_model(tmp_path, rng):
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c"], pads=[1, 0, 1, 2], strides=[1, 2]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "W2", "B2"], ["y"], transB=1)]
    inits = [numpy_helper.from_array((rng.standard_normal((5, 3, 3, 3)) * 0.3).astype(np.float32), "W1"),
             numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "B1"),
             numpy_helper.from_array((rng.standard_normal((7, 5 * 5 * 3)) * 0.1).astype(np.float32), "W2"),
             numpy_helper.from_array(rng.standard_normal(7).astype(np.float32), "B2")]
    graph = helper.make_graph(nodes, "pk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "pk.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    np.save(tmp_path / "calib.npy", rng.standard_normal((64, 3, 5, 6)).astype(np.float32))
    return path, tmp_path / "calib.npy"


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.slow
def test_packed_kernels_bit_exact(bits, tmp_path, rng):
    require_tool("gcc", "make")
    path, calib = linear_and_conv_model(tmp_path, rng)
    result = export(ExportSettings(path, tmp_path / "out", calib, bits=str(bits), sparse="off", vectors=64))
    g = result.compiled.graph
    assert [type(n) for n in g.nodes if n.qattrs.get("weight_bits")] == [ops.PackedConv2d, ops.PackedLinear]
    assert all(n.qparams["weight"].min() >= -(1 << (bits - 1)) for n in g.nodes if "weight" in n.qparams)
    v = verify(result.out_dir, sanitize=True)
    assert v.ok, v.first_mismatch


@pytest.mark.slow
def test_4_bit_packing_halves_weight_flash(digits_lenet, tmp_path):
    eight = export(ExportSettings(digits_lenet["model"], tmp_path / "b8", digits_lenet["calib"], vectors=4,
                                  sparse="off"))
    four = export(ExportSettings(digits_lenet["model"], tmp_path / "b4", digits_lenet["calib"], bits="4", vectors=32,
                                 sparse="off"))
    for name in ("fc1", "fc2", "fc3"):
        w8, w4 = eight.compiled.graph.node(name), four.compiled.graph.node(name)
        assert isinstance(w4, ops.PackedLinear)
        k = w8.qparams["weight"].shape[1]
        assert w4.packed().size == w8.qparams["weight"].shape[0] * ((k + 1) // 2)  # half, rows byte-aligned
    assert four.summary["weight_bytes"] < 0.55 * eight.summary["weight_bytes"]
    require_tool("gcc", "make")
    assert verify(four.out_dir).ok


@pytest.mark.slow
def test_mixed_precision_per_layer(digits_lenet, tmp_path):
    result = export(ExportSettings(digits_lenet["model"], tmp_path / "mix", digits_lenet["calib"],
                                   bits=("8", "fc1=4,conv2=6,fc2=2"), vectors=32))
    bits = {n.name: n.qattrs.get("weight_bits") for n in result.compiled.graph.nodes}
    assert bits["conv1"] == 8 and bits["conv2"] == 6 and bits["fc1"] == 4 and bits["fc2"] == 2 and bits["fc3"] == 8
    table = result.layers.text()
    assert "w bits" in table
    report = (result.out_dir / "report.md").read_text()
    assert "fc1 4-bit" in report
    require_tool("gcc", "make")
    assert verify(result.out_dir).ok


@pytest.mark.slow
def test_bits_specs_and_errors(digits_lenet, tmp_path):
    assert parse_bits(["8", "fc1=4,conv2=6"]) == (8, {"fc1": 4, "conv2": 6})
    assert parse_bits("6") == (6, {})
    for bad, match in (("9", "2 to 8"), ("1", "2 to 8"), ("fc1=x", "expected N"), ("8,4", "two default")):
        with pytest.raises(EdgeCompileError, match=match):
            parse_bits(bad)
    with pytest.raises(EdgeCompileError, match="fcX.*layers with weights: conv1, conv2, fc1, fc2, fc3"):
        export(ExportSettings(digits_lenet["model"], tmp_path / "bad", digits_lenet["calib"], bits="fcX=4"))


@pytest.mark.slow
def test_bias_correction_changes_only_biases_and_stays_exact(digits_lenet, tmp_path):
    plain = export(ExportSettings(digits_lenet["model"], tmp_path / "p", digits_lenet["calib"], bits="4", vectors=8))
    corrected = export(ExportSettings(digits_lenet["model"], tmp_path / "c", digits_lenet["calib"], bits="4",
                                      bias_correction=True, vectors=32))
    changed = 0
    for a, b in zip(plain.compiled.graph.nodes, corrected.compiled.graph.nodes):
        if "weight" in a.qparams:
            assert np.array_equal(a.qparams["weight"], b.qparams["weight"])
            changed += int(not np.array_equal(a.qparams["bias"], b.qparams["bias"]))
    assert changed >= 3
    require_tool("gcc", "make")
    assert verify(corrected.out_dir).ok


# -- quantization-aware training -------------------------------------------------------------------

def qat_forward_integers(model, x):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x), integers=True).numpy().astype(np.int64)


def short_fine_tune(model, x, y, steps=8):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for i in range(steps):
        batch = slice(32 * i, 32 * i + 32)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.from_numpy(x[batch])), torch.from_numpy(y[batch])).backward()
        opt.step()


@pytest.mark.slow
def test_qat_forward_equals_simulator_and_c_on_lenet(digits_lenet, tmp_path):
    from edgecompile import qat

    x, y = np.load(digits_lenet["test_x"]), np.load(digits_lenet["test_y"])
    model = qat.prepare(digits_lenet["model"], np.load(digits_lenet["calib"]), bits=4)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    short_fine_tune(model, x, y)
    assert any(not torch.equal(before[k], v) for k, v in model.named_parameters())  # it trained
    result = model.export(tmp_path / "qat", vectors=16)
    g = result.compiled.graph
    q = qat_forward_integers(model, x[:96])
    assert np.array_equal(q, simulate.run_integer(g, simulate.quantize_input(g, x[:96])))
    require_tool("gcc", "make")
    np.save(tmp_path / "x.npy", x[:96])
    v = verify(result.out_dir, inputs=tmp_path / "x.npy")
    assert v.ok and np.array_equal(v.outputs.reshape(q.shape), q)


@pytest.mark.slow
def test_qat_covers_the_efficient_cnn_ops_bit_exactly(tmp_path):
    """Residual add, squeeze-excite gate, tables, depthwise conv, global pooling: still exact."""
    import cnn_zoo
    from edgecompile import qat

    net, shape = cnn_zoo.build("mobilenetv3_block")
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((32,) + shape).astype(np.float32)
    model = qat.prepare(net, calib, bits=6)
    x = rng.standard_normal((64,) + shape).astype(np.float32)
    short_fine_tune(model, x, rng.integers(0, 10, 64), steps=2)
    result = model.export(tmp_path / "qat_cnn", vectors=8)
    g = result.compiled.graph
    assert np.array_equal(qat_forward_integers(model, x[:16]), simulate.run_integer(g, simulate.quantize_input(g, x[:16])))


def test_qat_prepare_takes_tensors_and_refuses_bad_specs():
    from edgecompile import qat

    m = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = torch.randn(16, 20)
    assert isinstance(qat.prepare(m, x, bits=4), torch.nn.Module)  # a tensor, as the README writes it
    assert isinstance(qat.prepare(m, x.tolist(), bits=4), torch.nn.Module)
    for bits, match in ((4.5, "--bits 4.5"), (None, "--bits None"), ("8,nope=4", "nope")):
        with pytest.raises(EdgeCompileError, match=match):
            qat.prepare(m, x, bits=bits)
    with pytest.raises(EdgeCompileError, match="finite"):
        qat.prepare(m, torch.full((4, 20), float("nan")))
    model = qat.prepare(m, x, bits=4)
    for setting in ({"weight_method": "mse"}, {"bias_correction": True}, {"bits": 8}, {"per_tensor": True}):
        with pytest.raises(EdgeCompileError, match="cannot change after training"):
            model.export("unused", **setting)  # it used to export C that differs from the QAT model


class _Crop(torch.nn.Module):
    def forward(self, x):
        return x[:, :, 1:5, ::2]


def test_qat_forward_equals_simulator_through_a_slice_and_refuses_recurrent_layers():
    """A slice is a selection (exact in QAT); a recurrent layer is refused before training, with the reason."""
    from edgecompile import qat

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), _Crop(), torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 3, 4))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 2, 8, 8)).astype(np.float32)
    model = qat.prepare(net, x, bits=6)
    assert any(isinstance(n, ops.Slice) for n in model.graph.nodes)
    g = model.graph
    assert np.array_equal(qat_forward_integers(model, x), simulate.run_integer(g, simulate.quantize_input(g, x)))

    class Rnn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(3, 4, batch_first=True)

        def forward(self, x):
            return self.gru(x)[0][:, -1]

    with pytest.raises(EdgeCompileError, match=r"does not support Recurrent .*: recurrent cells"):
        qat.prepare(Rnn(), rng.standard_normal((8, 5, 3)).astype(np.float32))


@pytest.mark.slow
def test_qat_keeps_pruned_weights_at_zero(digits_lenet):
    from edgecompile import qat

    x, y = np.load(digits_lenet["test_x"]), np.load(digits_lenet["test_y"])
    model = qat.prepare(digits_lenet["model"], np.load(digits_lenet["calib"]), bits=8)
    with torch.no_grad():
        w = model.weights["fc1"]
        w[:, ::2] = 0.0
    model.masks["fc1"] = (w != 0).to(w.dtype)
    short_fine_tune(model, x, y, steps=3)
    assert np.all(model.float_params()["fc1"]["weight"][:, ::2] == 0)


@pytest.mark.slow
def test_qat_recovers_4_bit_lenet_within_2_points(digits_lenet):
    """At 4 bits with QAT the digits LeNet is within 2 points of float."""
    import qat as qat_example
    from edgecompile import qat

    x_test, y_test = np.load(digits_lenet["test_x"]), np.load(digits_lenet["test_y"])
    import datasets
    x_train, y_train, _, _ = datasets.digits_28x28()
    model = qat.prepare(digits_lenet["model"], np.load(digits_lenet["calib"]), bits=4)
    qat_example.fine_tune(model, x_train, y_train, epochs=2)
    assert qat_example.accuracy(model, x_test, y_test) >= digits_lenet["float_acc"] - 0.02


# -- 16-bit activations ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["squeezenet", "mobilenetv3_block", "shufflenet"])
@pytest.mark.slow
def test_16_bit_activations_bit_exact_through_every_op(name, tmp_path):
    """Concat, add, SE multiply, tables (kept 8-bit), depthwise and grouped convs, pools, transposes."""
    require_tool("gcc", "make")
    import cnn_zoo

    files = cnn_zoo.save(name, tmp_path)
    eight = export(ExportSettings(files["model"], tmp_path / "a8", files["calib"], vectors=4))
    wide = export(ExportSettings(files["model"], tmp_path / "a16", files["calib"], act_bits="16", vectors=64))
    g = wide.compiled.graph
    assert any(t.bits == 16 for t in g.tensors.values())
    assert g.input.bits == 8 and g.output.bits == 16  # ten logits: int16 (--output-bits auto)
    for node in g.nodes:
        if node.op_type in ("Lut", "Softmax"):
            assert all(g.tensors[t].bits == 8 for t in node.inputs + node.outputs)
    a = wide.summary["act16"]
    # the int8 model output bounds the output SQNR; 16 bits inside never makes it worse, beyond the
    # noise of the format search when that bound is all there is (SqueezeNet's output, with its
    # zero point: 0.9 dB either way on the calibration samples)
    assert a["sqnr_db"] >= a["sqnr_8bit_db"] - 1.0 and a["arena"] > a["arena_8bit"] == eight.summary["arena_bytes"]
    v = verify(wide.out_dir, sanitize=True)
    assert v.ok, v.first_mismatch


@pytest.mark.qemu
def test_16_bit_lenet_on_cortex_m(digits_lenet, tmp_path):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    result = export(ExportSettings(digits_lenet["model"], tmp_path / "a16", digits_lenet["calib"], act_bits="16",
                                   vectors=32))
    a = result.summary["act16"]
    # measured: 38.0 -> 38.7 dB (the 8-bit model's unsigned ReLU codes already hold one of the extra bits)
    assert a["sqnr_db"] > a["sqnr_8bit_db"] + 0.3
    assert a["arena_8bit"] < a["arena"]
    # layer by layer the inner activations double (conv1 + pool, 4,056 + 1,016 B at 8 bits), the output stays int8
    assert result.compiled.plan.layer_bound <= 2 * (4056 + 1016)
    for target in ("qemu-m0plus", "qemu-m4"):
        assert verify(result.out_dir, target=target).ok


@pytest.mark.slow
def test_16_bit_auto_and_per_layer(digits_lenet, tmp_path):
    result = export(ExportSettings(digits_lenet["model"], tmp_path / "auto", digits_lenet["calib"], bits="4",
                                   act_bits="auto", vectors=8))
    a = result.summary["act16"]
    assert a["sqnr_db"] >= a["sqnr_8bit_db"]
    assert "## 16-bit activations" in (result.out_dir / "report.md").read_text()
    per_layer = export(ExportSettings(digits_lenet["model"], tmp_path / "one", digits_lenet["calib"],
                                      act_bits="conv2=16", vectors=8))
    g = per_layer.compiled.graph
    wide = {n.name for n in g.nodes if g.tensors[n.outputs[0]].bits == 16}
    assert wide == {"conv2", "max_pool2d_1", "reshape", "fc3"}  # the pool and the view after it follow; fc3
    # writes the ten logits, int16 by --output-bits auto
    for bad, match in (("12", "8 or 16"), ("fc9=16", "fc9")):
        with pytest.raises(EdgeCompileError, match=match):
            export(ExportSettings(digits_lenet["model"], tmp_path / "bad", digits_lenet["calib"], act_bits=bad))


@pytest.mark.parametrize("storage", [dict(bits="4"), dict(sparse="on")])
@pytest.mark.slow
def test_16_bit_layers_keep_plain_weights_beside_packed_and_sparse_ones(digits_lenet, tmp_path, storage):
    """The packed and sparse kernels take int8 activations: a layer that reads or writes int16
    keeps one weight per byte (found by fuzzing: it used to call the int8 kernel and mismatch)."""
    require_tool("gcc", "make")
    result = export(ExportSettings(digits_lenet["model"], tmp_path / "mixed", digits_lenet["calib"],
                                   act_bits="conv2=16", vectors=64, **storage))
    g = result.compiled.graph
    special = (ops.PackedLinear, ops.PackedConv2d, ops.SparseLinear, ops.SparseConv2d)
    wide = [n for n in g.nodes if n.is_wide(g)]
    assert {n.name for n in wide} >= {"conv2", "fc1"}
    assert not any(isinstance(n, special) for n in wide)
    assert any(isinstance(n, special) for n in g.nodes)  # the int8 layers still use them
    v = verify(result.out_dir, sanitize=True)
    assert v.ok, v.first_mismatch


def test_a_bias_too_large_for_int32_lowers_the_weight_format_instead_of_clipping(tmp_path):
    """Found by fuzzing: a bias of 1e5 on weights of 1e-3 was saturated to int32 silently (12 dB)."""
    require_tool("gcc", "make")
    from conftest import save_torchscript

    torch.manual_seed(0)
    m = torch.nn.Linear(4, 3)
    with torch.no_grad():
        m.weight.mul_(1e-3)
        m.bias.copy_(torch.tensor([1e5, -1e5, 3.0]))
    path = save_torchscript(m, tmp_path / "big_bias.pt")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=32, sparse="off"))
    node = result.compiled.graph.nodes[0]
    f_in = result.compiled.graph.input.frac_bits
    f_w = np.broadcast_to(node.qattrs["weight_frac_bits"], (3,))
    stored = node.qparams["bias"].astype(np.float64) / 2.0 ** (f_in + f_w)
    assert np.allclose(stored, [1e5, -1e5, 3.0], rtol=1e-3, atol=0.01)
    assert np.all(np.abs(node.qparams["bias"].astype(np.int64)) < 2 ** 31 - 1)  # none saturated
    assert result.summary["output_sqnr_db"] > 40
    assert any("bias fits" in n for n in result.compiled.graph.notes)
    assert verify(result.out_dir).ok


class _TwoBranchConcat(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 4, 1)
        self.b = torch.nn.Conv2d(3, 2, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 5 * 5, 4)

    def forward(self, x):
        return self.fc(torch.flatten(torch.cat([self.a(x), torch.relu(self.b(x))], 1), 1))


def test_one_16_bit_branch_widens_the_concat_and_the_views_after_it(tmp_path):
    """Found by fuzzing: a Concat takes its widest branch's width when it is quantized, but the Flatten
    after it had been given the width before, so int16 codes went through an int8 view (the simulator
    stopped; the C misread them)."""
    require_tool("gcc", "make")
    from conftest import save_torchscript

    torch.manual_seed(0)
    path = save_torchscript(_TwoBranchConcat(), tmp_path / "m.pt")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((32, 3, 5, 5)).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", act_bits="a=16", vectors=16,
                                   output_bits=8))
    g = result.compiled.graph
    cat = next(n for n in g.nodes if n.op_type == "Concat")
    flat = next(n for n in g.nodes if n.inputs[0] == cat.outputs[0])
    assert g.tensors[cat.outputs[0]].bits == g.tensors[flat.outputs[0]].bits == 16
    assert verify(result.out_dir).ok

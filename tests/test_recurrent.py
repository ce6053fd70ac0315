"""Recurrent models (FastRNN, FastGRNN with low-rank W and U, GRU, LSTM, Elman RNN)
compile to a real loop over time that runs bit-exactly against the simulator."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgecompile import nn as enn
from edgecompile import numerics, ops, simulate
from edgecompile.errors import EdgeCompileError
from edgecompile.export import ExportSettings, export
from edgecompile.frontend import load_module
from edgecompile.verify import verify
from conftest import require_tool


class SeqModel(nn.Module):
    def __init__(self, kind: str, d: int = 8, h: int = 16, every_step: bool = False):
        super().__init__()
        self.kind, self.every_step = kind, every_step
        if kind in ("GRU", "LSTM", "RNN"):
            self.rnn = getattr(nn, kind)(d, h, batch_first=True)
        else:
            cell = {"FastRNN": lambda: enn.FastRNNCell(d, h), "FastRNN-lowrank": lambda: enn.FastRNNCell(d, h, w_rank=3,
                                                                                                        u_rank=5),
                    "FastGRNN": lambda: enn.FastGRNNCell(d, h),
                    "FastGRNN-lowrank": lambda: enn.FastGRNNCell(d, h, w_rank=3, u_rank=5)}[kind]()
            self.rnn = enn.RNN(cell, return_sequences=every_step)
        self.fc = nn.Linear(h, 5)

    def forward(self, x):
        if self.kind in ("GRU", "LSTM", "RNN"):
            out, _ = self.rnn(x)
            return self.fc(out if self.every_step else out[:, -1])
        return self.fc(self.rnn(x))


KINDS = ["FastRNN", "FastRNN-lowrank", "FastGRNN", "FastGRNN-lowrank", "GRU", "LSTM", "RNN"]


def compile_seq(kind, tmp_path, steps=8, every_step=False, vectors=256):
    torch.manual_seed(0)
    model = SeqModel(kind, every_step=every_step).eval()
    calib = np.random.default_rng(0).standard_normal((128, steps, 8)).astype(np.float32)
    loaded = load_module(model, (steps, 8), kind.lower().replace("-", "_"))
    result = export(ExportSettings(tmp_path / "m.pt", tmp_path / f"{kind}_{steps}_{int(every_step)}", calib,
                                   loaded=loaded, vectors=vectors))
    return model, result


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_recurrent_cells_bit_exact_over_256_sequences(kind, tmp_path):
    require_tool("gcc", "make")
    model, result = compile_seq(kind, tmp_path)
    g = result.compiled.graph
    rec = next(n for n in g.nodes if isinstance(n, ops.Recurrent))
    assert rec.steps == 8
    if kind.endswith("lowrank"):  # W = W1 W2 and U = U1 U2 stay two small products each
        assert {n.op_type for n in rec.body.nodes} >= {"Linear", "DualLinear"}
    x = np.random.default_rng(5).standard_normal((64, 8, 8)).astype(np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(g.run_float(x) - reference)) < 1e-4  # the IR's float loop is PyTorch's
    from edgecompile import metrics
    assert metrics.sqnr_db(reference, simulate.run_dequantized(g, x)) > 20
    v = verify(result.out_dir, sanitize=True)
    assert v.total == 256 and v.ok, v.first_mismatch


@pytest.mark.slow
def test_every_step_outputs(tmp_path):
    require_tool("gcc", "make")
    for kind in ("GRU", "FastGRNN"):
        _, result = compile_seq(kind, tmp_path, every_step=True, vectors=32)
        assert result.compiled.graph.output.shape == (8, 5)
        assert verify(result.out_dir).ok


def object_text_bytes(project, name) -> int:
    obj = project / "model.o"
    subprocess.run(["gcc", "-std=c99", "-O2", "-c", f"-I{project / 'runtime'}", str(project / "src" / f"{name}.c"),
                    "-o", str(obj)], check=True)
    out = subprocess.run(["size", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if line.startswith(".text"))


@pytest.mark.slow
def test_code_size_does_not_grow_with_the_sequence_length(tmp_path):
    require_tool("gcc")
    sizes = []
    for steps in (20, 28):  # (both place the cell past the same arena offsets: x86 immediates of one width)
        _, result = compile_seq("LSTM", tmp_path, steps=steps, vectors=4)
        sizes.append(object_text_bytes(result.out_dir, result.name))
        assert f"< {steps}; " in (result.out_dir / "src" / f"{result.name}.c").read_text()  # a real loop
    assert sizes[0] == sizes[1]


def test_fastgrnn_shares_w_and_u_between_its_gates(tmp_path):
    _, result = compile_seq("FastGRNN", tmp_path, vectors=4)
    text = (result.out_dir / "src" / f"{result.name}.c").read_text()
    rec = next(n for n in result.compiled.graph.nodes if isinstance(n, ops.Recurrent))
    duals = [n for n in rec.body.nodes if isinstance(n, ops.DualLinear)]
    assert len(duals) == 2 and np.array_equal(duals[0].qparams["weight_a"], duals[1].qparams["weight_a"])
    arrays = re.findall(r"static const int8_t\s+(\w+)\s*\[[^\]]*\][^=;]*=\s*\{([^}]*)\}", text)
    bodies = [re.sub(r"\s+", "", body) for _, body in arrays]
    assert len(arrays) == text.count("static const int8_t") >= 2, [name for name, _ in arrays]
    assert len(set(bodies)) == len(bodies), "an int8 array is stored twice"  # W and U once each
    assert text.count("_weight_a[") == 1  # stored once
    from edgecompile.report import weight_bits_text
    assert weight_bits_text(rec) == "8"  # the cell's width in the layer table (it printed '-')
    model = SeqModel("FastGRNN").eval()
    calib = np.random.default_rng(0).standard_normal((16, 8, 8)).astype(np.float32)
    with pytest.raises(EdgeCompileError, match="recurrent cell takes the default width"):
        export(ExportSettings(tmp_path / "m.pt", tmp_path / "bits", calib, bits=f"8,{rec.name}=3",
                              loaded=load_module(model, (8, 8), "fastgrnn")))


def test_fastrnn_cell_matches_its_formula():
    torch.manual_seed(0)
    cell = enn.FastRNNCell(4, 6, w_rank=2)
    x, h = torch.randn(3, 4), torch.randn(3, 6)
    w = cell.W.left @ cell.W.right
    expected = (torch.sigmoid(cell.alpha) * torch.tanh(x @ w.T + h @ cell.U.full.T + cell.bias_update)
                + torch.sigmoid(cell.beta) * h)
    assert torch.allclose(cell(x, h), expected, atol=1e-6)
    grnn = enn.FastGRNNCell(4, 6)
    z = torch.sigmoid(x @ grnn.W.full.T + h @ grnn.U.full.T + grnn.bias_gate)
    cand = torch.tanh(x @ grnn.W.full.T + h @ grnn.U.full.T + grnn.bias_update)
    expected = (torch.sigmoid(grnn.zeta) * (1 - z) + torch.sigmoid(grnn.nu)) * cand + z * h
    assert torch.allclose(grnn(x, h), expected, atol=1e-6)


@pytest.mark.slow
def test_sparse_recurrent_weights_stay_zero_and_exact(tmp_path):
    require_tool("gcc", "make")
    torch.manual_seed(0)
    model = SeqModel("FastGRNN").eval()
    model.rnn.cell.w_sparsity = model.rnn.cell.u_sparsity = 0.3
    model.rnn.cell.sparsify()
    assert float((model.rnn.cell.U.full == 0).float().mean()) >= 0.69
    calib = np.random.default_rng(0).standard_normal((64, 8, 8)).astype(np.float32)
    result = export(ExportSettings(tmp_path / "s.pt", tmp_path / "sparse", calib,
                                   loaded=load_module(model, (8, 8), "sparse_grnn"), vectors=64))
    rec = next(n for n in result.compiled.graph.nodes if isinstance(n, ops.Recurrent))
    dual = next(n for n in rec.body.nodes if isinstance(n, ops.DualLinear))
    assert np.mean(dual.qparams["weight_b"] == 0) >= 0.69
    assert isinstance(dual, ops.SparseDualLinear) and dual.attrs["format_b"] != "dense"  # the sparse kernel
    dense = export(ExportSettings(tmp_path / "s.pt", tmp_path / "dense", calib, sparse="off",
                                  loaded=load_module(model, (8, 8), "sparse_grnn"), vectors=4))
    assert result.summary["weight_bytes"] < dense.summary["weight_bytes"]
    assert "ec_dual_linear_sparse_s8" in (result.out_dir / "src" / f"{result.name}.c").read_text()
    assert verify(result.out_dir).ok


class Wrapped(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.rnn = layer
        self.fc = nn.Linear(layer.hidden_size * (2 if layer.bidirectional else 1), 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


def save_torch(model, examples: tuple, path):
    """The model as a .pt2 program or traced TorchScript, by the path's suffix."""
    if path.suffix == ".pt2":
        torch.export.save(torch.export.export(model, examples), str(path))
    else:
        torch.jit.save(torch.jit.trace(model, examples), str(path))
    return path


def export_sequence_model(model, steps: int, fmt: str, tmp_path):
    """Save a (N, steps, 8)-input model as .pt2 or TorchScript and export it with 64 calibration sequences."""
    path = save_torch(model, (torch.zeros(1, steps, 8),), tmp_path / f"m.{fmt}")
    calib = np.random.default_rng(0).standard_normal((64, steps, 8)).astype(np.float32)
    return export(ExportSettings(path, tmp_path / "out", calib, vectors=256))


def check_sequence_export(result, model, torch_inputs: tuple, flat_inputs, qemu: bool = False) -> None:
    """The export's float graph equals PyTorch, its integers are close, and 256 vectors are bit-exact
    on the host (and on qemu-m4 if asked)."""
    g = result.compiled.graph
    with torch.no_grad():
        reference = model(*[torch.from_numpy(a) for a in torch_inputs]).numpy()
    assert np.max(np.abs(g.run_float(flat_inputs) - reference)) < 1e-4
    from edgecompile import metrics
    assert metrics.sqnr_db(reference, simulate.run_dequantized(g, flat_inputs)) > 20
    for target in ["host"] + (["qemu-m4"] if qemu else []):
        if target != "host":
            require_tool("arm-none-eabi-gcc", "qemu-system-arm")
        v = verify(result.out_dir, target=target)
        assert v.total == 256 and v.ok, (target, v.first_mismatch)


class Bidirectional(nn.Module):
    """A bidirectional layer read three ways: its outputs concatenated at the last step, the two
    directions summed at every step, or both directions' final states."""

    def __init__(self, kind: str, readout: str, layers: int = 1, batch_first: bool = True):
        super().__init__()
        self.kind, self.readout, self.batch_first = kind, readout, batch_first
        self.rnn = getattr(nn, kind)(8, 12, num_layers=layers, batch_first=batch_first, bidirectional=True)
        self.fc = nn.Linear(12 if readout == "sum" else 24, 5)

    def forward(self, x):
        y, state = self.rnn(x if self.batch_first else x.transpose(0, 1))
        if not self.batch_first:
            y = y.transpose(0, 1)
        if self.readout == "concat":
            return self.fc(y[:, -1])
        if self.readout == "sum":
            return self.fc((y[..., :12] + y[..., 12:])[:, 0])  # (the backward half's final state)
        h = state[0] if self.kind == "LSTM" else state
        return self.fc(torch.cat([h[-2], h[-1]], dim=1))


@pytest.mark.slow
@pytest.mark.qemu  # (some of its cases also run on qemu-m4)
@pytest.mark.parametrize("kind,readout,layers,batch_first,fmt", [
    ("LSTM", "concat", 1, True, "pt2"), ("GRU", "concat", 1, False, "ts"), ("LSTM", "sum", 1, True, "ts"),
    ("GRU", "final", 1, True, "pt2"), ("LSTM", "final", 2, True, "ts"), ("RNN", "concat", 2, True, "pt2")])
def test_bidirectional_layers_bit_exact(kind, readout, layers, batch_first, fmt, tmp_path):
    """A forward and a reversed loop, their outputs side by side (concatenated or summed) or their
    final states: float equal to PyTorch, 256 sequences bit-exact on the host (one on qemu-m4)."""
    require_tool("gcc", "make")
    torch.manual_seed(2)
    model = Bidirectional(kind, readout, layers, batch_first).eval()
    result = export_sequence_model(model, 7, fmt, tmp_path)
    recurrent = [n for n in result.compiled.graph.nodes if isinstance(n, ops.Recurrent)]
    assert len(recurrent) == 2 * layers and sum(n.reverse for n in recurrent) == layers
    x = np.random.default_rng(3).standard_normal((32, 7, 8)).astype(np.float32)
    check_sequence_export(result, model, (x,), x, qemu=(kind, readout) == ("LSTM", "concat"))


@pytest.mark.slow
def test_stacked_layers_chain_two_loops(tmp_path):
    require_tool("gcc", "make")
    torch.manual_seed(0)
    model = Wrapped(nn.LSTM(8, 16, num_layers=2, batch_first=True)).eval()
    calib = np.random.default_rng(0).standard_normal((64, 8, 8)).astype(np.float32)
    result = export(ExportSettings(tmp_path / "s.pt", tmp_path / "stacked", calib,
                                   loaded=load_module(model, (8, 8), "stacked"), vectors=64))
    assert sum(isinstance(n, ops.Recurrent) for n in result.compiled.graph.nodes) == 2
    assert verify(result.out_dir).ok


class FinalState(nn.Module):
    """The everyday read-out through the final state: fc(h_n[-1]), or fc of every layer's h_n."""

    def __init__(self, kind: str, layers: int, batch_first: bool, every_layer: bool):
        super().__init__()
        self.kind, self.batch_first, self.every_layer = kind, batch_first, every_layer
        self.rnn = getattr(nn, kind)(8, 16, num_layers=layers, batch_first=batch_first)
        self.fc = nn.Linear(16 * (layers if every_layer else 1), 5)

    def forward(self, x):
        if not self.batch_first:
            x = x.transpose(0, 1)
        _, state = self.rnn(x)
        h = state[0] if self.kind == "LSTM" else state  # (layers, batch, hidden)
        if self.every_layer:
            return self.fc(h.transpose(0, 1).reshape(x.shape[0 if self.batch_first else 1], -1))
        return self.fc(h[-1])


@pytest.mark.slow
@pytest.mark.qemu  # (some of its cases also run on qemu-m4)
@pytest.mark.parametrize("kind,layers,batch_first,every_layer,fmt", [
    ("LSTM", 2, True, False, "pt2"), ("LSTM", 2, False, False, "ts"), ("GRU", 2, True, False, "ts"),
    ("GRU", 3, False, False, "pt2"), ("LSTM", 1, True, False, "pt2"), ("LSTM", 2, True, True, "pt2"),
    ("GRU", 2, True, True, "ts")])
def test_stacked_layers_read_by_their_final_state(kind, layers, batch_first, every_layer, fmt, tmp_path):
    """_, (h, c) = lstm(x); fc(h[-1]) (and _, h = gru(x)), batch first or not, through a .pt2 program
    and TorchScript: the layers' final states are concatenated time-major, (layer, batch, hidden)."""
    require_tool("gcc", "make")
    torch.manual_seed(1)
    model = FinalState(kind, layers, batch_first, every_layer).eval()
    result = export_sequence_model(model, 6, fmt, tmp_path)
    assert sum(isinstance(n, ops.Recurrent) for n in result.compiled.graph.nodes) == layers
    x = np.random.default_rng(3).standard_normal((32, 6, 8)).astype(np.float32)
    check_sequence_export(result, model, (x,), x, qemu=(kind, layers, fmt) in (("LSTM", 2, "pt2"), ("GRU", 2, "ts")))


@pytest.mark.slow
def test_trained_sequence_classifiers_within_2_points(tmp_path):
    """The example's models trained briefly on digits rows: integer accuracy within 2 points of float."""
    require_tool("gcc", "make")
    import rnn

    rows = rnn.main(["-o", str(tmp_path), "--models", "fastgrnn-lowrank,gru", "--epochs", "10"])
    for r in rows:
        assert r["float_accuracy"] > 0.7
        assert r["int8_accuracy"] >= r["float_accuracy"] - 0.02, r
        assert r["bit_exact"] == "256/256"
    assert (tmp_path / "gru.onnx").is_file()


def test_saved_onnx_with_custom_cell_compiles_through_the_cli(tmp_path):
    from click.testing import CliRunner

    from edgecompile.cli import cli

    torch.manual_seed(0)
    model = SeqModel("FastRNN-lowrank").eval()
    torch.onnx.export(model, (torch.zeros(1, 8, 8),), str(tmp_path / "frnn.onnx"), dynamo=False)
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((32, 8, 8)).astype(np.float32))
    r = CliRunner().invoke(cli, ["export", str(tmp_path / "frnn.onnx"), "--calib", str(tmp_path / "calib.npy"),
                                 "-o", str(tmp_path / "out"), "-q", "--vectors", "16"])
    assert r.exit_code == 0, r.output
    assert "Recurrent" in r.output and "FastRNN x8 steps" in r.output


def _onnx_recurrent_model(tmp_path, name, nodes, inits, x_shape, y_shape):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), str(path))
    return path


def _check_onnx_sequence_model(tmp_path, path, steps, d):
    calib = np.random.default_rng(0).standard_normal((64, steps, d)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=256))
    assert result.summary["oracle_max_abs_err"] <= 1e-4  # the IR's float loop is onnxruntime's
    assert result.summary["output_sqnr_db"] > 20
    require_tool("gcc", "make")
    v = verify(result.out_dir)
    assert v.total == 256 and v.ok, v.first_mismatch
    return result


def _onnx_gru(tmp_path, linear_before_reset, t=7, d=5, h=12):
    """A one-layer ONNX GRU of either form, read through its final state."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array((rng.standard_normal((1, 3 * h, d)) * 0.4).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((1, 3 * h, h)) * 0.3).astype(np.float32), "R"),
             numpy_helper.from_array((rng.standard_normal((1, 6 * h)) * 0.2).astype(np.float32), "B"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("GRU", ["xt", "W", "R", "B"], ["", "yh"], hidden_size=h,
                              linear_before_reset=linear_before_reset),
             helper.make_node("Squeeze", ["yh", "axes0"], ["y"])]
    return _onnx_recurrent_model(tmp_path, f"gru_lbr{linear_before_reset}", nodes, inits, ["N", t, d], ["N", h])


@pytest.mark.slow
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_onnx_gru_with_and_without_linear_before_reset(linear_before_reset, tmp_path):
    """ONNX's two GRU forms: r scales U_n h + b_hn (PyTorch; one GatedDualLinear, its tanh in the same
    kernel pass) or h before U_n (the ONNX default, Keras: r h by a Mul, then a DualLinear)."""
    result = _check_onnx_sequence_model(tmp_path, _onnx_gru(tmp_path, linear_before_reset), 7, 5)
    rec = next(n for n in result.compiled.graph.nodes if isinstance(n, ops.Recurrent))
    kinds = [n.op_type for n in rec.body.nodes]
    assert ("GatedDualLinear" in kinds) == bool(linear_before_reset) and "Linear" not in kinds
    assert kinds.count("DualLinear") == (2 if linear_before_reset else 3)
    assert kinds[-1] == "Lerp" and "Add" not in kinds  # h' = n + z (h - n) in one pass
    loop = (result.out_dir / "src" / f"{result.name}.c").read_text()
    assert ("ec_gated_linear_fast_s8(" in loop) == bool(linear_before_reset)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_onnx_gru_both_forms_bit_exact_on_cortex_m4_and_m55(linear_before_reset, tmp_path):
    """Both GRU forms with sizes not multiples of 4 (input 10, hidden 18: gate rows in groups of 4 plus
    2, tails of 2 values, the step's input copied to an aligned slot) bit-exact with the simulator on
    the host (sanitized) and under QEMU on the M4 (SMLAD) and the M55 (Helium)."""
    path = _onnx_gru(tmp_path, linear_before_reset, t=5, d=10, h=18)
    calib = np.random.default_rng(0).standard_normal((64, 5, 10)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64))
    require_tool("gcc", "make")
    assert verify(result.out_dir, sanitize=True).ok
    require_tool("arm-none-eabi-gcc", "qemu-system-arm")
    for target in ("qemu-m4", "qemu-m55"):
        v = verify(result.out_dir, target=target)
        assert v.total == 64 and v.ok, (target, v.first_mismatch)


def test_gru_n_gate_bounds_hold_for_large_weights():
    """GatedDualLinear's quantization keeps its proofs for weights and biases of any size: |v| <= 2^23,
    u's rounding constant inside int32, the gated sum's bound inside int32, every shift legal; and the
    simulator's result matches the float gate to its output's resolution."""
    from edgecompile.ir import Graph
    from edgecompile.passes.quantize import QuantOptions

    rng = np.random.default_rng(4)
    for scale, bias in ((0.3, 0.2), (40.0, 3000.0), (0.001, 0.0)):
        g = Graph("t")
        for name, shape, f in (("a", (10,), 5), ("b", (18,), 7), ("r", (18,), 7), ("y", (18,), 4)):
            g.add_tensor(name, shape)
            g.tensors[name].frac_bits = f
        op = ops.GatedDualLinear("n", ["a", "b", "r"], ["y"], attrs={"act": None}, params={
            "weight_a": rng.standard_normal((18, 10)) * scale, "bias_a": rng.standard_normal(18) * bias,
            "weight_b": rng.standard_normal((18, 18)) * scale, "bias_b": rng.standard_normal(18) * bias})
        op.quantize(g, QuantOptions())
        q = op.qattrs
        assert q["acc_bound"] <= numerics.ACC_MAX and q["p_bound"] <= 2**30
        assert max(q["down_a"], q["down_p"], q["shift_b"]) <= numerics.MAX_SHIFT and min(q["down_a"], q["down_p"]) == 0
        wb = op.qparams["weight_b"].astype(np.int64)
        assert (np.abs(wb).sum(1) * 128 + np.abs(op.qparams["bias_b"]) + (1 << q["shift_b"] >> 1)).max() \
            <= numerics.ACC_MAX
        a = rng.integers(-128, 128, (64, 10))
        b = rng.integers(-128, 128, (64, 18))
        r = rng.integers(0, 128, (64, 18))
        y = op.run_int(g, a, b, r)
        fwa, fwb = q["weight_frac_bits"]
        exact = ops.GatedDualLinear("n", ["a", "b", "r"], ["y"], attrs={"act": None}, params={
            "weight_a": op.qparams["weight_a"] / 2.0 ** fwa, "bias_a": op.params["bias_a"],
            "weight_b": op.qparams["weight_b"] / 2.0 ** fwb, "bias_b": op.params["bias_b"]})
        f = exact.run_float(a / 32, b / 128, r / 128) * 16  # the quantized weights' gate, in y's units
        # output rounding 1/2; bias_a and g v rounded at the common format; bias_b and v at theirs, times |g| <= 1
        fb = 7 + fwb
        err = 0.5 + 2.0 ** (-q["shift_out"]) + 2.0 ** (4 - fb - 1) * (1 + 2 ** q["shift_b"])
        inside = np.abs(f) < 127
        assert np.abs(y - f)[inside].max(initial=0) <= err + 1e-9, (scale, q)


@pytest.mark.slow
def test_keras_lstm_as_tf2onnx_writes_it(tmp_path):
    """A Keras LSTM(return_sequences=False) + Dense as tf2onnx converts it: a batch-major input
    transposed to time-major, the full sequence_lens, zero initial states as constants, the final
    state squeezed, and the Dense as MatMul + Add."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(3)
    t, d, h = 9, 6, 10
    f32 = np.float32
    inits = [numpy_helper.from_array((rng.standard_normal((1, 4 * h, d)) * 0.4).astype(f32), "W"),
             numpy_helper.from_array((rng.standard_normal((1, 4 * h, h)) * 0.3).astype(f32), "R"),
             numpy_helper.from_array((rng.standard_normal((1, 8 * h)) * 0.2).astype(f32), "B"),
             numpy_helper.from_array(np.full(1, t, np.int32), "lens"),
             numpy_helper.from_array(np.zeros((1, 1, h), f32), "h0"),
             numpy_helper.from_array(np.zeros((1, 1, h), f32), "c0"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array((rng.standard_normal((h, 4)) * 0.5).astype(f32), "Wd"),
             numpy_helper.from_array(rng.standard_normal(4).astype(f32), "Bd")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W", "R", "B", "lens", "h0", "c0"], ["", "yh", ""], hidden_size=h),
             helper.make_node("Squeeze", ["yh", "axes0"], ["hs"]),
             helper.make_node("MatMul", ["hs", "Wd"], ["mm"]),
             helper.make_node("Add", ["mm", "Bd"], ["y"])]
    path = _onnx_recurrent_model(tmp_path, "keras_lstm", nodes, inits, [1, t, d], [1, 4])
    result = _check_onnx_sequence_model(tmp_path, path, t, d)
    assert [type(n).__name__ for n in result.compiled.graph.nodes if type(n).__name__ != "Reshape"] == \
        ["Recurrent", "Linear"]


class GivenState(nn.Module):
    """A layer whose initial state the caller gives: lstm(x, (h0, c0)) or gru(x, h0)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.rnn = getattr(nn, kind)(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 5)

    def forward(self, frames, h0, c0):
        y, _ = self.rnn(frames, (h0, c0) if self.kind == "LSTM" else h0 + c0)
        return self.fc(y[:, -1])


@pytest.mark.slow
@pytest.mark.qemu  # (some of its cases also run on qemu-m4)
@pytest.mark.parametrize("kind,fmt", [("LSTM", "pt2"), ("GRU", "ts")])
def test_initial_states_given_as_inputs(kind, fmt, tmp_path):
    """States that start from inputs (h0 and c0, shape (1, H) a sample, as PyTorch takes them with
    a batch of 1): requantized into the state's format once, then the loop; bit-exact on the host,
    and the C API takes them as inputs."""
    require_tool("gcc", "make")
    torch.manual_seed(4)
    model = GivenState(kind).eval()
    path = save_torch(model, (torch.zeros(1, 6, 8), torch.zeros(1, 1, 16), torch.zeros(1, 1, 16)),
                      tmp_path / f"m.{fmt}")
    rng = np.random.default_rng(0)
    def arrays(n):
        return {"frames": rng.standard_normal((n, 6, 8)).astype(np.float32),
                "h0": (0.5 * rng.standard_normal((n, 1, 16))).astype(np.float32),
                "c0": (0.05 * rng.standard_normal((n, 1, 16))).astype(np.float32)}  # finer
    np.savez(tmp_path / "calib.npz", **arrays(64))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npz", vectors=256))
    g = result.compiled.graph
    rec = next(n for n in result.compiled.graph.nodes if isinstance(n, ops.Recurrent))
    assert len(rec.inputs) == (3 if kind == "LSTM" else 2) and rec.initial == ([0, 1] if kind == "LSTM" else [0])
    shifts = rec.qattrs["initial_shifts"]
    assert kind == "GRU" or max(shifts) > 0, shifts  # c0, finer than its state, is rounded into it
    header = (result.out_dir / "src" / "m.h").read_text()
    assert "'h0'" in header and "'c0'" in header and "#define M_INPUT_COUNT 3" in header
    x = arrays(32)
    states = [np.ascontiguousarray(x[k].transpose(1, 0, 2)) for k in ("h0", "c0")]  # PyTorch: (layers, N, H)
    flat = np.concatenate([x[k].reshape(32, -1) for k in ("frames", "h0", "c0")], axis=1)
    check_sequence_export(result, model, (x["frames"], *states), flat, qemu=kind == "LSTM")


def compile_odd_cell(kind, tmp_path, vectors=64):
    """A cell whose sizes are not multiples of 4 (input 10, hidden 18, 5 steps): the step's input copied
    to an aligned slot, gate rows in groups of 4 plus 2, tails of 2 values."""
    torch.manual_seed(3)
    model = SeqModel(kind, d=10, h=18).eval()
    calib = np.random.default_rng(1).standard_normal((64, 5, 10)).astype(np.float32)
    loaded = load_module(model, (5, 10), kind.lower().replace("-", "_"))
    return export(ExportSettings(tmp_path / "m.pt", tmp_path / kind, calib, loaded=loaded, vectors=vectors))


def test_recurrent_layer_ram_is_its_states_and_one_step(tmp_path):
    """The layer table's RAM of a recurrent layer: its output, its states (a next state written over its
    state has no buffer of its own) and one step's buffers, the sum being exactly what the plan gives
    the layer (output + scratch_bytes)."""
    from edgecompile.arena import round_up
    from edgecompile.report import layer_table

    result = compile_odd_cell("GRU", tmp_path, vectors=4)
    graph = result.compiled.graph
    rec = next(n for n in graph.nodes if isinstance(n, ops.Recurrent))
    parts = rec.ram_parts()
    assert parts["states"] == round_up(18)  # h, and h' written over it
    assert parts["step"] == round_up(10) + rec.body_plan.arena_size  # the aligned step input, the gates
    assert rec.scratch_bytes(graph) == sum(parts.values())
    row = next(r for r in layer_table(graph, result.compiled.plan).rows if r[0] == rec.name)
    out = graph.tensors[rec.outputs[0]].nbytes
    assert row[8] == f"{out + sum(parts.values())} = {out} + {parts['states']} states + {parts['step']} step"


def test_cells_call_the_fast_gate_kernel_with_their_tables_and_keep_states_in_place(tmp_path):
    """Generated C of an LSTM: four gate calls of ec_dual_linear_fast_s8, each with its activation's
    table (no separate lookup pass but tanh(c')), no copy of h' or c' after a step (they are written
    over h and c), and the step's 10 values copied to an aligned slot."""
    result = compile_odd_cell("LSTM", tmp_path, vectors=4)
    text = (result.out_dir / "src" / f"{result.name}.c").read_text()
    loop = text[text.index("for (int t_"):]
    loop = loop[:loop.index("\n    }\n")]
    assert loop.count("ec_dual_linear_fast_s8(") == 4 and "ec_dual_linear_s8(" not in loop
    assert loop.count("_table);") == 4 + 1  # four gates' tables as arguments, tanh(c') through ec_lut_s8
    assert loop.count("ec_lut_s8(") == 1
    copies = re.findall(r"ec_copy_s8\(([^;]*)\);", loop)
    assert len(copies) == 2 and "/*n=*/10" in copies[0]  # the aligned step input, and the every-step output
    rec = next(n for n in result.compiled.graph.nodes if isinstance(n, ops.Recurrent))
    assert rec.x_copied and len(rec._written_in_place()) == 2


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "FastRNN", "FastGRNN-lowrank"])
def test_fast_cell_kernels_bit_exact_on_cortex_m4_and_m55(kind, tmp_path):
    """The gates' fast kernels (SMLAD on the M4, Helium on the M55), the fused tables, the elementwise
    fast paths and the in-place states: 64 sequences bit-exact with the simulator on the host and
    under QEMU on both cores, for cells with sizes that are not multiples of 4."""
    require_tool("gcc", "make")
    result = compile_odd_cell(kind, tmp_path)
    assert verify(result.out_dir, sanitize=True).ok
    require_tool("arm-none-eabi-gcc", "qemu-system-arm")
    for target in ("qemu-m4", "qemu-m55"):
        v = verify(result.out_dir, target=target)
        assert v.total == 64 and v.ok, (target, v.first_mismatch)

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
from edgecompile import ops, simulate
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
    for steps in (8, 28):
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


def test_bidirectional_is_a_clear_error():
    with pytest.raises(EdgeCompileError, match="bidirectional"):
        load_module(Wrapped(nn.GRU(8, 16, batch_first=True, bidirectional=True)).eval(), (8, 8))


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

"""Rank selection (by rank, per layer, by energy), already-factorized models, sparse
storage bit-exact with the dense arithmetic, explore's table and plots, the pruning example."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from onnx import TensorProto, helper

from edgecompile import ops, sparse_format
from edgecompile.compiler import CompileOptions, optimize
from edgecompile.errors import EdgeCompileError
from edgecompile.export import ExportSettings, export
from edgecompile.frontend import load_model
from edgecompile.passes.factorize import RankSpec, factorize, rank_for_energy
from edgecompile.verify import verify
from conftest import randomize_batchnorm, require_tool, save_torchscript


# -- rank specs ----------------------------------------------------------------------------

def test_energy_picks_the_smallest_rank_keeping_beta():
    s = np.array([4.0, 3.0, 2.0, 1.0])  # squares 16, 9, 4, 1 of 30: cumulative .533 .833 .967 1
    assert [rank_for_energy(s, b) for b in (0.5, 0.533, 0.6, 0.833, 0.9, 0.967, 0.99, 1.0)] == \
        [1, 1, 2, 2, 3, 4, 4, 4]
    assert rank_for_energy(s, 16 / 30) == 1


def test_energy_rank_on_a_layer_with_known_singular_values(tmp_path):
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    v, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    s = np.array([10, 8, 6, 4, 2, 1] + [0.01] * 34)
    w = (u * s) @ v[:, :40].T  # 40 x 60 with exactly these singular values
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 60])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 40])],
                              [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.astype(np.float32).ravel())])
    path = tmp_path / "known.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    energy = np.cumsum(s ** 2) / np.sum(s ** 2)
    for beta in (0.5, 0.9, 0.99):
        g = load_model(path).graph
        decisions = optimize(g, CompileOptions(ranks=RankSpec.parse(energy=beta)))
        expected = int(np.argmax(energy >= beta) + 1)
        assert decisions[0].rank == expected and decisions[0].applied
        assert decisions[0].energy == pytest.approx(energy[expected - 1], rel=1e-4)


def test_rank_spec_parsing_and_errors():
    spec = RankSpec.parse("16,fc3=4")
    assert spec.default == 16 and spec.layers == {"fc3": 4}
    assert RankSpec.parse("fc1=32,fc2=8").layers == {"fc1": 32, "fc2": 8}
    for bad, match in (("0", "positive"), ("fc1=0", "positive"), ("fc1=x", "expected N"),
                       ("4,8", "more than one default")):
        with pytest.raises(EdgeCompileError, match=match):
            RankSpec.parse(bad)
    for beta in (0.0, 1.5, -0.1):
        with pytest.raises(EdgeCompileError, match=r"\(0, 1\]"):
            RankSpec.parse(energy=beta)
    with pytest.raises(EdgeCompileError, match="not both"):
        RankSpec.parse("8", energy=0.9)


@pytest.mark.slow
def test_unknown_layer_in_rank_spec_lists_the_factorizable_ones(digits_lenet):
    g = load_model(digits_lenet["model"], (1, 28, 28)).graph
    with pytest.raises(EdgeCompileError, match="fc9.*factorizable layers: fc1, fc2, fc3"):
        optimize(g, CompileOptions(ranks=RankSpec.parse("fc9=4")))


@pytest.mark.slow
def test_per_layer_ranks(digits_lenet, tmp_path):
    result = export(ExportSettings(digits_lenet["model"], tmp_path / "o", digits_lenet["calib"],
                                   rank="fc1=32,fc2=8", vectors=32))
    d = {x.layer: x for x in result.compiled.factorization}
    assert d["fc1"].rank == 32 and d["fc2"].rank == 8 and "fc3" not in d
    g = result.compiled.graph
    assert g.node("fc1.V").weight_shape == (32, 400) and g.node("fc2.U").weight_shape == (84, 8)
    assert verify(result.out_dir).ok


class AlreadyFactorized(nn.Module):
    """An SVD layer: two Linear layers with nothing between them."""

    def __init__(self):
        super().__init__()
        self.v = nn.Linear(50, 6, bias=False)
        self.u = nn.Linear(6, 40)
        self.out = nn.Linear(40, 5)

    def forward(self, x):
        return self.out(torch.relu(self.u(self.v(x))))


def test_already_factorized_model_stays_two_small_matmuls(tmp_path):
    require_tool("gcc", "make")
    torch.manual_seed(0)
    path = save_torchscript(AlreadyFactorized(), tmp_path / "f.pt")
    np.save(tmp_path / "c.npy", np.random.default_rng(0).standard_normal((64, 50)).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "o", tmp_path / "c.npy", vectors=32))
    shapes = [n.weight_shape for n in result.compiled.graph.nodes]
    assert shapes == [(6, 50), (40, 6), (5, 40)]  # never multiplied back into 40 x 50
    assert verify(result.out_dir).ok


def test_conv1x1_factorization(tmp_path, rng):
    w = rng.standard_normal((24, 32, 1, 1)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "W"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 5, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 5, 4])],
                              [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel())])
    path = tmp_path / "pw.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    np.save(tmp_path / "c.npy", rng.standard_normal((32, 32, 5, 4)).astype(np.float32))
    plain = export(ExportSettings(path, tmp_path / "a", tmp_path / "c.npy", rank=4, vectors=8))
    assert not plain.compiled.factorization  # convolutions only with the flag
    result = export(ExportSettings(path, tmp_path / "b", tmp_path / "c.npy", rank=4, factorize_conv1x1=True,
                                   vectors=16))
    assert [n.weight_shape for n in result.compiled.graph.nodes] == [(4, 32, 1, 1), (24, 4, 1, 1)]
    require_tool("gcc", "make")
    assert verify(result.out_dir).ok


# -- sparse storage --------------------------------------------------------------------------

@pytest.mark.parametrize("density", [0.0, 0.01, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("shape", [(7, 13), (1, 300), (16, 600), (3, 9)])
def test_sparse_formats_are_lossless(density, shape, rng):
    w = rng.integers(-128, 128, size=shape) * (rng.random(shape) < density)
    for enc in (sparse_format.encode_bitmap(w), sparse_format.encode_delta(w)):
        assert np.array_equal(sparse_format.decode(enc, *shape), w)


def test_delta_format_bridges_long_gaps():
    w = np.zeros((2, 700), dtype=np.int64)
    w[0, 600] = 5
    w[1, 0] = -3
    w[1, 699] = 7
    enc = sparse_format.encode_delta(w)
    assert np.array_equal(sparse_format.decode(enc, 2, 700), w)
    assert enc.arrays["counts"].tolist() == [3, 4]  # 600 = 2 fillers of 256 + 88


def sparse_onnx(tmp_path, rng, kind, density, name):
    if kind == "linear":
        w = rng.standard_normal((37, 91)) * (rng.random((37, 91)) < density)
        node = helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)
        x_shape, y_shape, b = [1, 91], [1, 37], rng.standard_normal(37)
    else:
        w = rng.standard_normal((9, 5, 3, 3)) * (rng.random((9, 5, 3, 3)) < density)
        node = helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1])
        x_shape, y_shape, b = [1, 5, 11, 8], None, rng.standard_normal(9)
    inits = [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.astype(np.float32).ravel()),
             helper.make_tensor("B", TensorProto.FLOAT, b.shape, b.astype(np.float32).ravel())]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    np.save(tmp_path / f"{name}.npy", rng.standard_normal([48] + x_shape[1:]).astype(np.float32))
    return path, tmp_path / f"{name}.npy", w


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.5, 1.0])
def test_sparse_kernels_bit_exact_with_dense(kind, density, tmp_path, rng):
    require_tool("gcc", "make")
    path, calib, w = sparse_onnx(tmp_path, rng, kind, density, f"{kind}{density}")
    formats = set()
    for fmt_density in (density,):
        result = export(ExportSettings(path, tmp_path / "out", calib, sparse="on", vectors=48))
        node = result.compiled.graph.nodes[0]
        assert isinstance(node, (ops.SparseLinear, ops.SparseConv2d))
        formats.add(node.attrs["sparse_format"])
        v = verify(result.out_dir, sanitize=True)
        assert v.ok, v.first_mismatch
    # both formats get exercised across the densities: very sparse -> delta, moderate -> bitmap
    if density in (0.0, 0.01):
        assert formats == {"delta"}
    if density == 0.5:
        assert formats == {"bitmap"}


def test_sparse_auto_keeps_dense_where_sparse_costs_more(tmp_path, rng):
    path, calib, _ = sparse_onnx(tmp_path, rng, "linear", 1.0, "dense")
    # int8 output: a dense last layer would otherwise write int16 (--output-bits auto) and never be judged
    result = export(ExportSettings(path, tmp_path / "out", calib, vectors=4, output_bits=8))
    assert type(result.compiled.graph.nodes[0]) is ops.Linear
    assert result.compiled.sparsity[0].format == "dense"


def test_zeros_stay_zero_through_batchnorm_folding_and_quantization(tmp_path, rng):
    class PrunedConvBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8 * 6 * 6, 4)

        def forward(self, x):
            return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))

    torch.manual_seed(0)
    m = PrunedConvBN().eval()
    randomize_batchnorm(m)
    masks = {}
    with torch.no_grad():
        for layer in (m.conv, m.fc):
            masks[layer] = torch.rand_like(layer.weight) > 0.7
            layer.weight.mul_(masks[layer])
    path = save_torchscript(m, tmp_path / "p.pt")
    np.save(tmp_path / "c.npy", rng.standard_normal((32, 3, 8, 8)).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "o", tmp_path / "c.npy", vectors=4))
    g = result.compiled.graph
    for name, layer in (("conv", m.conv), ("fc", m.fc)):
        q = g.node(name).qparams["weight"]
        pruned = ~masks[layer].numpy()
        assert np.all(q[pruned] == 0)  # a pruned weight never becomes +-1 LSB


# -- explore and the example --------------------------------------------------------------------

def generated_weight_bytes(project, name) -> int:
    text = (project / "src" / f"{name}.c").read_text()
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4}
    return sum(sizes[t] * int(n) for t, n in re.findall(r"static const (\w+) \w+\[(\d+)\]", text))


@pytest.mark.slow
def test_explore_table_plots_and_memory_figures_match_the_c(digits_lenet, tmp_path):
    from click.testing import CliRunner

    from edgecompile.cli import cli

    d = digits_lenet
    r = CliRunner().invoke(cli, ["explore", str(d["model"]), "--calib", str(d["calib"]), "--val", str(d["test_x"]),
                                 "--labels", str(d["test_y"]), "--ranks", "8,16", "--energies", "0.9",
                                 "-o", str(tmp_path / "ex")])
    assert r.exit_code == 0, r.output
    for f in ("tradeoff_memory_accuracy.png", "memory_vs_beta.png", "accuracy_vs_beta.png", "scree_fc1.png",
              "scree_fc2.png", "scree_fc3.png", "explore.json", "explore.md"):
        assert (tmp_path / "ex" / f).stat().st_size > 1000 or f.endswith((".json", ".md")), f
    assert "Pareto" in r.output and "rank 16 b8" in r.output
    import json
    points = {p["label"]: p for p in json.loads((tmp_path / "ex" / "explore.json").read_text())["points"]}
    assert sum(p["pareto"] for p in points.values()) >= 1
    for label, kwargs in (("beta 0.9 b8", {"energy": 0.9}), ("rank 16 b8", {"rank": 16}),
                          ("dense b8", {})):
        result = export(ExportSettings(d["model"], tmp_path / label.replace(" ", "_"), d["calib"], vectors=4,
                                       **kwargs))
        c_bytes = generated_weight_bytes(result.out_dir, result.name)
        assert result.summary["weight_bytes"] == c_bytes == points[label]["weight_bytes"], label


@pytest.mark.slow
def test_explore_bad_inputs(digits_lenet, tmp_path):
    from click.testing import CliRunner

    from edgecompile.cli import cli

    d = digits_lenet
    np.save(tmp_path / "y.npy", np.zeros(3, dtype=np.int64))
    r = CliRunner().invoke(cli, ["explore", str(d["model"]), "--calib", str(d["calib"]), "--val", str(d["test_x"]),
                                 "--labels", str(tmp_path / "y.npy"), "-o", str(tmp_path / "ex")])
    assert r.exit_code == 1 and "integer class labels" in r.output
    r = CliRunner().invoke(cli, ["explore", str(d["model"]), "--calib", str(d["calib"]), "--val", str(d["test_x"]),
                                 "--labels", str(d["test_y"]), "--energies", "1.5", "-o", str(tmp_path / "ex")])
    assert r.exit_code == 1 and "(0, 1]" in r.output
    # found by fuzzing: a traceback, or a message that did not say what a list should hold
    base = ["explore", str(d["model"]), "--calib", str(d["calib"]), "--val", str(d["test_x"]),
            "--labels", str(d["test_y"])]
    r = CliRunner().invoke(cli, base + ["--bits", "", "-o", str(tmp_path / "ex")])
    assert r.exit_code == 1 and "at least one weight width" in r.output, r.output
    (tmp_path / "afile").write_text("")
    r = CliRunner().invoke(cli, base + ["-o", str(tmp_path / "afile")])
    assert r.exit_code == 1 and "not a folder" in r.output, r.output
    np.save(tmp_path / "y50.npy", np.full(len(np.load(d["test_y"])), 50, dtype=np.int64))
    r = CliRunner().invoke(cli, base[:-1] + [str(tmp_path / "y50.npy"), "-o", str(tmp_path / "ex")])
    assert r.exit_code == 1 and "class indices 0..9" in r.output, r.output
    r = CliRunner().invoke(cli, base + ["--bits", "8,fc1=4", "-o", str(tmp_path / "ex")])
    assert r.exit_code == 1 and "whole numbers" in r.output, r.output
    r = CliRunner().invoke(cli, ["bench", str(tmp_path), "--save", str(tmp_path / "no" / "b.json")])
    assert r.exit_code == 1 and "--save" in r.output and "existing folder" in r.output, r.output


@pytest.mark.slow
def test_pruned_lenet_halves_weight_flash_at_the_same_accuracy(tmp_path):
    """70 % global magnitude pruning -> at least half the weight flash, same accuracy."""
    require_tool("gcc", "make")
    import compress

    rows = {r["config"]: r for r in compress.main(["-o", str(tmp_path)])}
    dense, pruned = rows["dense"], rows["pruned"]
    assert pruned["weight_bytes"] <= dense["weight_bytes"] / 2
    assert pruned["int8_accuracy"] >= dense["int8_accuracy"] - 0.01
    assert all(r["bit_exact"] == "64/64" for r in rows.values())
    assert rows["rank-16"]["weight_bytes"] < dense["weight_bytes"] / 3

"""Error-feedback weight rounding (passes/weight_rounding.py): lower layer error, same formats, still exact."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgecompile import numerics, simulate
from edgecompile.compiler import CompileOptions, compile_model
from edgecompile.frontend import load_model
from edgecompile.ops.conv2d import Conv2d
from edgecompile.ops.linear import Linear
from edgecompile.passes import weight_rounding
from edgecompile.passes.weight_rounding import round_weights
from conftest import randomize_batchnorm, require_tool, save_torchscript
from models_for_tests import INPUT_SHAPES, ConvBNNet, WideMLP


class GroupedNet(nn.Module):
    """A dense conv, a depthwise conv, a grouped 1x1 conv (two groups) and a linear head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.grouped = nn.Conv2d(8, 12, 1, groups=2)
        self.fc = nn.Linear(12 * 6 * 6, 6)

    def forward(self, x):
        x = F.relu(self.dw(F.relu(self.conv(x))))
        return self.fc(torch.flatten(F.relu(self.grouped(x)), 1))


SHAPES = {**INPUT_SHAPES, GroupedNet: (3, 12, 12)}


def correlated_inputs(rng, shape) -> np.ndarray:
    """Noise plus a level shared by each sample's channel, like images: neighbouring inputs are correlated
    (with independent inputs H is diagonal and nearest rounding is already the best there is)."""
    common = rng.standard_normal(shape[:2] + (1,) * (len(shape) - 2))
    return (rng.standard_normal(shape) + 1.5 * common).astype(np.float32)


def compiled_model(cls, tmp_path, seed=3):
    torch.manual_seed(seed)
    model = cls().eval()
    randomize_batchnorm(model, seed)
    path = save_torchscript(model, tmp_path / "m.pt")
    calib = correlated_inputs(np.random.default_rng(seed), (64,) + SHAPES[cls])
    return compile_model(load_model(path, SHAPES[cls]), calib, CompileOptions(sparse="off", weight_rounding="nearest",
                                                                         format_search=False))


def layer_errors(graph, reference, calib) -> dict[str, float]:
    """|| (W_deq - W) X ||^2 of every weighted layer, X = its inputs in `reference` (integer model, dequantized)."""
    env = simulate.run_integer(reference, simulate.quantize_input(reference, calib), keep_all=True)
    errors = {}
    for node in graph.nodes:
        if not isinstance(node, (Conv2d, Linear)):
            continue
        x = simulate.dequantize(graph, node.inputs[0], env[node.inputs[0]])
        n = node.out_channels
        f_w = np.broadcast_to(np.asarray(node.qattrs["weight_frac_bits"]), (n,))
        w_q = node.qparams["weight"].astype(np.float64)
        delta = np.ldexp(w_q, -f_w.reshape((n,) + (1,) * (w_q.ndim - 1))) - node.params["weight"]
        error = type(node)(node.name, node.inputs, node.outputs, attrs={**node.attrs, "act": None},
                           params={"weight": delta})
        errors[node.name] = float(np.sum(error.run_float(x) ** 2))
    return errors


@pytest.mark.parametrize("cls", [ConvBNNet, WideMLP, GroupedNet], ids=["conv", "linear", "grouped"])
@pytest.mark.slow
def test_lowers_every_layers_error_keeping_formats_and_bounds(cls, tmp_path):
    compiled = compiled_model(cls, tmp_path)
    nearest = compiled.graph
    rounded = copy.deepcopy(nearest)
    layers = [n.name for n in nearest.nodes if isinstance(n, (Conv2d, Linear))]
    assert round_weights(rounded, compiled.calib) == len(layers)
    # both roundings judged on the same inputs: those the re-rounded model feeds each layer
    before = layer_errors(nearest, rounded, compiled.calib)
    after = layer_errors(rounded, rounded, compiled.calib)
    for name in layers:
        assert after[name] < before[name], name
    for a, b in zip(nearest.nodes, rounded.nodes):
        if a.name not in layers:
            continue
        assert a.qattrs["weight_frac_bits"] == b.qattrs["weight_frac_bits"]
        assert a.qattrs["weight_bits"] == b.qattrs["weight_bits"]
        assert np.array_equal(a.qparams["shift"], b.qparams["shift"])
        # biases unchanged, but for the zero point of an unsigned input: -z * sum(w) of each row
        z = rounded.tensors[b.inputs[0]].zero_point
        moved = -z * (b.qparams["weight"].astype(np.int64) - a.qparams["weight"]).reshape(len(b.qparams["weight"]), -1).sum(1)
        assert np.array_equal(a.qparams.get("bias", 0) + moved, b.qparams.get("bias", 0))
        w = b.qparams["weight"]
        lo, hi = numerics.qrange(b.qattrs["weight_bits"])
        assert w.dtype == np.int8 and w.shape == a.qparams["weight"].shape
        assert w.min() >= lo and w.max() <= hi
        x_max = 1 << (rounded.tensors[b.inputs[0]].bits - 1)
        bound = numerics.accumulator_bound(w, b.qparams.get("bias"), x_max)
        assert b.qattrs["acc_bound"] == bound <= numerics.ACC_MAX
    # the simulator's own int32 and saturation asserts hold, also far outside the calibration range
    wild = np.random.default_rng(7).standard_normal((16,) + SHAPES[cls]) * 8
    simulate.run_integer(rounded, simulate.quantize_input(rounded, wild))


def test_channels_that_would_overflow_keep_nearest_rounding(tmp_path):
    node = next(n for n in compiled_model(WideMLP, tmp_path).graph.nodes if isinstance(n, Linear))
    nearest = node.qparams["weight"].astype(np.int64)
    bigger = nearest + np.sign(nearest)  # one more step of magnitude per weight
    bias = node.qparams["bias"].astype(np.int64)
    headroom = numerics.ACC_MAX - np.abs(nearest).sum(axis=1) * 128 - np.abs(bias)
    node.qparams["bias"][0] += np.sign(bias[0] or 1) * headroom[0]  # channel 0 now sits exactly at the bound
    kept = weight_rounding.keep_accumulator_bound(node, bigger, nearest, 8)
    assert np.array_equal(kept[0], nearest[0])
    assert np.array_equal(kept[1:], bigger[1:])


def test_layer_keeps_nearest_when_it_is_already_exact(tmp_path):
    """Weights already on their grid (as after quantization-aware training): nothing to improve, nothing changes."""
    compiled = compiled_model(WideMLP, tmp_path)
    graph = copy.deepcopy(compiled.graph)
    for node in graph.nodes:
        if isinstance(node, Linear):
            n = node.out_channels
            f_w = np.broadcast_to(np.asarray(node.qattrs["weight_frac_bits"]), (n,))[:, None]
            node.params["weight"] = np.ldexp(node.qparams["weight"].astype(np.float64), -f_w)
    weights = [n.qparams["weight"].copy() for n in graph.nodes if isinstance(n, Linear)]
    assert round_weights(graph, compiled.calib) == 0
    assert all(np.array_equal(w, n.qparams["weight"]) for w, n in zip(weights, [n for n in graph.nodes
                                                                             if isinstance(n, Linear)]))


@pytest.mark.slow
def test_generated_c_equals_the_simulator_with_the_pass(tmp_path):
    """The export runs the pass by default; the C it writes runs the re-rounded weights bit-exactly."""
    require_tool("gcc", "make")
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    torch.manual_seed(5)
    path = save_torchscript(GroupedNet().eval(), tmp_path / "m.pt")
    np.save(tmp_path / "calib.npy", correlated_inputs(np.random.default_rng(5), (64, 3, 12, 12)))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", sparse="off", vectors=64))
    assert result.summary["weight_rounding"]["layers_changed"] >= 3  # the C below really runs re-rounded weights
    assert verify(result.out_dir).ok
    nearest = export(ExportSettings(path, tmp_path / "near", tmp_path / "calib.npy", sparse="off", vectors=8,
                                    weight_rounding="nearest"))
    assert nearest.summary["weight_rounding"]["layers_changed"] == 0


def test_too_wide_a_layer_keeps_nearest_rounding(tmp_path, monkeypatch):
    """Its H would be fan_in^2 floats: a 40,000-input Linear asked for 12 GiB and died. Layers wider than
    MAX_FAN_IN keep their nearest weights, say so, and the narrower ones are still re-rounded."""
    result = compiled_model(WideMLP, tmp_path)  # fan-ins 64, 200, 150
    monkeypatch.setattr(weight_rounding, "MAX_FAN_IN", 100)
    graph = copy.deepcopy(result.graph)
    before = {n.name: n.qparams["weight"].copy() for n in graph.nodes if isinstance(n, Linear)}
    calib = correlated_inputs(np.random.default_rng(3), (64,) + SHAPES[WideMLP])
    round_weights(graph, calib)
    wide = [n for n in graph.nodes if isinstance(n, Linear) and n.params["weight"].shape[1] > 100]
    assert len(wide) == 2
    for node in wide:
        assert np.array_equal(node.qparams["weight"], before[node.name])
        assert any(node.name in note and "too many for error-feedback" in note for note in graph.notes)
    narrow = next(n for n in graph.nodes if isinstance(n, Linear) and n.params["weight"].shape[1] == 64)
    assert not np.array_equal(narrow.qparams["weight"], before[narrow.name])


@pytest.mark.parametrize("c, oc, k, stride, pads, groups, dilation", [
    (3, 4, (3, 3), (1, 1), (1, 1, 1, 1), 1, (1, 1)),
    (6, 6, (3, 3), (2, 2), (0, 1, 2, 1), 6, (1, 1)),  # depthwise, uneven padding
    (6, 4, (1, 1), (1, 1), (0, 0, 0, 0), 2, (1, 1)),  # grouped 1x1
    (5, 3, (1, 1), (2, 2), (0, 0, 0, 0), 1, (1, 1)),  # strided 1x1
    (4, 3, (1, 1), (1, 1), (1, 0, 0, 1), 1, (1, 1)),  # padded 1x1 (the general path)
    (4, 4, (3, 2), (1, 2), (2, 2, 2, 2), 2, (2, 2)),  # dilated, grouped
])
@pytest.mark.parametrize("chunk_rows", [1, 50, 4096])  # a sample at a time, several, all at once
def test_input_hessian_sums_every_im2col_row(rng, c, oc, k, stride, pads, groups, dilation, chunk_rows):
    """H per group = sum over samples and output positions of the patch x x^T, in the weights' order."""
    node = Conv2d("conv", ["x"], ["y"], attrs={"stride": list(stride), "pads": list(pads), "groups": groups,
                                               "dilation": list(dilation)},
                  params={"weight": np.zeros((oc, c // groups) + k)})
    x = rng.integers(-128, 128, size=(3, c, 7, 6)).astype(np.int64)
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    (kh, kw), (sh, sw), (dh, dw) = k, stride, dilation
    oh, ow = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1, (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    cpg = c // groups
    expected = np.zeros((groups, cpg * kh * kw, cpg * kh * kw))
    for s in range(len(x)):
        for i in range(oh):
            for j in range(ow):
                patch = xp[s, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                for gi in range(groups):
                    v = patch[gi * cpg:(gi + 1) * cpg].reshape(-1).astype(np.float64)
                    expected[gi] += np.outer(v, v)
    np.testing.assert_array_equal(weight_rounding.input_hessian(node, x, chunk_rows), expected)

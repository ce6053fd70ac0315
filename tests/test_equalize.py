"""Cross-layer equalization (passes/equalize.py): the float function is kept, only the pairs it may
rescale are rescaled, the ranges get more even, and the compiled model stays bit-exact in C."""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgecompile import ops
from edgecompile.compiler import CompileOptions, optimize
from edgecompile.frontend import load_model
from edgecompile.passes.equalize import HEADROOM, activation_ranges, consumer_channel_absmax, equalize, find_pairs, \
    row_absmax
from conftest import randomize_batchnorm, require_tool, save_torchscript
from models_for_tests import INPUT_SHAPES, ConvBNNet


class ConvConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 6, 3), nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class ConvPoolLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.fc = nn.Conv2d(2, 5, 3), nn.Linear(5 * 3 * 3, 4)

    def forward(self, x):
        return self.fc(torch.flatten(F.max_pool2d(F.relu(self.a(x)), 2), 1))


class ConvDepthwise(nn.Module):
    """pointwise -> depthwise -> grouped (2 groups) -> pointwise: every consumer kind."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.g = nn.Conv2d(8, 6, 3, groups=2)
        self.pw = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        return self.pw(F.relu(self.g(F.relu(self.dw(F.relu(self.a(x)))))))


class LinearLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(10, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class Relu6Producer(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 6, 3), nn.Conv2d(6, 4, 3)

    def forward(self, x):
        return self.b(F.relu6(self.a(x)))


class TwoReaders(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 6, 3), nn.Conv2d(6, 4, 1), nn.Conv2d(6, 4, 1)

    def forward(self, x):
        y = F.relu(self.a(x))
        return self.b(y) + self.c(y)


SHAPES = {ConvConv: (3, 8, 8), ConvPoolLinear: (2, 8, 8), ConvDepthwise: (3, 7, 7), LinearLinear: (10,),
          Relu6Producer: (3, 8, 8), TwoReaders: (3, 8, 8), ConvBNNet: INPUT_SHAPES[ConvBNNet]}


def spread_channels(model: nn.Module, seed: int = 0) -> None:
    """Scale each output channel of every conv/linear by a factor in [1/8, 8]: trained nets have
    such uneven channels, and they make equalization matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                f = torch.exp(torch.empty(m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
                              .uniform_(-np.log(8), np.log(8), generator=g))
                m.weight.mul_(f.reshape((-1,) + (1,) * (m.weight.dim() - 1)))
                if m.bias is not None:
                    m.bias.mul_(f)


def float_graph(cls, tmp_path, seed=0):
    torch.manual_seed(seed)
    model = cls().eval()
    randomize_batchnorm(model, seed)
    spread_channels(model, seed)
    lm = load_model(save_torchscript(model, tmp_path / "m.pt"), SHAPES[cls])
    optimize(lm.graph, CompileOptions())
    return lm.graph


def inputs(cls, n=32, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + SHAPES[cls]).astype(np.float32)


@pytest.mark.parametrize("method", ["weights", "activations", "noise", "activations-pow2"])
@pytest.mark.parametrize("cls, pairs", [(ConvConv, 1), (ConvPoolLinear, 1), (ConvDepthwise, 3), (LinearLinear, 1),
                                        (ConvBNNet, 4)],
                         ids=["conv-conv", "conv-pool-flatten-linear", "conv-depthwise-grouped", "linear-linear",
                              "convbn"])
def test_float_function_is_unchanged(cls, pairs, method, tmp_path):
    g = float_graph(cls, tmp_path)
    x, calib = inputs(cls, seed=1), inputs(cls, seed=2)
    before = g.run_float(x)
    weights = {n.name: n.params["weight"].copy() for n in g.nodes if "weight" in n.params}
    assert equalize(g, calib, method) == pairs
    after = g.run_float(x)
    assert np.max(np.abs(after - before)) <= 1e-5 * np.max(np.abs(before))
    assert any(not np.allclose(n.params["weight"], weights[n.name]) for n in g.nodes if "weight" in n.params)
    g.check()


def test_convbn_pairs_cross_pooling_and_flatten(tmp_path):
    g = float_graph(ConvBNNet, tmp_path)
    found = {(p.producer.name, p.consumer.name): p for p in find_pairs(g)}
    # conv2 -> pointwise is direct; pointwise -> avgpool -> flatten -> fc maps channel c to 9 columns
    pair = next(p for p in found.values() if isinstance(p.consumer, ops.Linear) and len(p.tensors) == 3)
    assert list(pair.columns) == list(np.repeat(np.arange(14), 9))


@pytest.mark.parametrize("cls", [Relu6Producer, TwoReaders], ids=["relu6", "two-readers"])
def test_producers_it_must_not_rescale_are_left_alone(cls, tmp_path):
    g = float_graph(cls, tmp_path)
    weights = {n.name: n.params["weight"].copy() for n in g.nodes if "weight" in n.params}
    assert find_pairs(g) == []
    assert equalize(g, inputs(cls), "activations") == 0
    assert all(np.array_equal(n.params["weight"], weights[n.name]) for n in g.nodes if "weight" in n.params)


def test_graph_output_producer_is_left_alone(tmp_path):
    g = float_graph(ConvConv, tmp_path)
    g.outputs.append(find_pairs(g)[0].tensors[0])  # the intermediate is now also a model output
    assert find_pairs(g) == []


def log_spread(r: np.ndarray) -> float:
    """max/min of the per-channel ranges, in octaves."""
    return float(np.log2(r.max() / r.min()))


def test_weight_method_equalizes_producer_rows_with_consumer_columns(tmp_path):
    g = float_graph(ConvConv, tmp_path)
    pair = find_pairs(g)[0]
    r1, r2 = row_absmax(pair.producer), consumer_channel_absmax(pair)
    assert np.max(np.abs(np.log2(r1 / r2))) > 1  # uneven before
    equalize(g, method="weights")
    r1, r2 = row_absmax(pair.producer), consumer_channel_absmax(pair)
    np.testing.assert_allclose(r1, r2, rtol=1e-5)


def test_activation_method_evens_out_the_shared_activation_format(tmp_path):
    g = float_graph(ConvPoolLinear, tmp_path)
    calib = inputs(ConvPoolLinear, 64)
    pair = find_pairs(g)[0]
    before = activation_ranges(g, [pair], calib)[0]
    equalize(g, calib, "activations")
    after = activation_ranges(g, [pair], calib)[0]
    assert log_spread(after) < log_spread(before) - 1
    # each activation channel's range is now proportional to the largest consumer weight reading it,
    # and the widest channel sits at HEADROOM of a power of two
    ratio = after / consumer_channel_absmax(pair)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    octaves = np.log2(after.max() / HEADROOM)
    assert abs(octaves - round(octaves)) < 1e-4


def test_batchnorm_fallback_range_still_encloses_the_channels(tmp_path):
    g = float_graph(ConvBNNet, tmp_path)
    equalize(g, method="weights")
    env = g.run_float(inputs(ConvBNNet, 256), keep_all=True)
    for node in g.nodes:
        if "bn_range" in node.attrs and node.attrs.get("act") is not None:
            lo, hi = node.attrs["bn_range"]
            y = env[node.outputs[0]]
            assert np.quantile(y, 0.999) <= hi  # BN's 4-sigma range, rescaled per channel


def spread_convbn_net(tmp_path):
    """The conv/BN net with random BatchNorm and channels spread over x1/8..x8, saved."""
    torch.manual_seed(3)
    model = ConvBNNet().eval()
    randomize_batchnorm(model, 3)
    spread_channels(model, 3)
    return save_torchscript(model, tmp_path / "m.pt")


@pytest.mark.slow
def test_equalized_model_is_bit_exact_in_c(tmp_path, rng):
    require_tool("gcc", "make")
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    path = spread_convbn_net(tmp_path)
    np.save(tmp_path / "calib.npy", rng.standard_normal((64,) + INPUT_SHAPES[ConvBNNet]).astype(np.float32))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64, equalize="activations"))
    assert any(n.startswith("cross-layer equalization") for n in result.compiled.graph.notes)
    v = verify(result.out_dir)
    assert v.ok and v.total == 64


def test_power_of_two_scales_keep_the_producer_integer_weights(tmp_path):
    """A power-of-two s_c only moves P's per-channel binary point: its int8 weights stay the same."""
    from edgecompile.compiler import compile_model

    model_path = tmp_path / "m.pt"
    torch.manual_seed(0)
    model = ConvConv().eval()
    spread_channels(model)
    save_torchscript(model, model_path)
    calib = inputs(ConvConv, 64)
    compiled = {m: compile_model(load_model(model_path, SHAPES[ConvConv]), calib, CompileOptions(
        equalize=m, weight_rounding="nearest", format_search=False, snap_ranges=False))  # P's own formats, rounding
                for m in ("off", "activations-pow2")}
    first = {m: c.graph.nodes[0] for m, c in compiled.items()}
    assert not np.array_equal(first["off"].params["weight"], first["activations-pow2"].params["weight"])
    assert np.array_equal(first["off"].qparams["weight"], first["activations-pow2"].qparams["weight"])


def test_noise_method_lowers_its_estimate_and_evens_a_depthwise_input(tmp_path):
    """Into a depthwise consumer, per-row weight formats absorb s: the estimate then prefers
    s_c ~ a_c, which makes the shared activation format fit every channel alike."""
    from edgecompile.passes.equalize import activation_stats, consumer_row_stats, estimated_noise

    g = float_graph(ConvDepthwise, tmp_path)
    calib = inputs(ConvDepthwise, 64)
    pairs = find_pairs(g)
    before = [estimated_noise(np.ones(p.producer.out_channels), *st, consumer_row_stats(p))
              for p, st in zip(pairs, activation_stats(g, pairs, calib))]
    spread = log_spread(activation_ranges(g, pairs[:1], calib)[0])
    equalize(g, calib, "noise", sweeps=1)
    after = [estimated_noise(np.ones(p.producer.out_channels), *st, consumer_row_stats(p))
             for p, st in zip(pairs, activation_stats(g, pairs, calib))]
    assert after[-1] <= before[-1] * (1 + 1e-9)  # the last consumer's rows are not rescaled later
    assert isinstance(pairs[0].consumer, ops.Conv2d) and pairs[0].consumer.groups == 8
    assert log_spread(activation_ranges(g, pairs[:1], calib)[0]) < 0.5 * spread


def _quantized_params(compiled) -> dict:
    return {(n.name, k): v for n in compiled.graph.nodes for k, v in n.qparams.items()}


@pytest.mark.parametrize("gain_db,same_as", [(100.0, "off"), (-100.0, "noise")])
def test_auto_is_one_of_off_and_noise_by_the_calibration_error(tmp_path, monkeypatch, gain_db, same_as):
    """--equalize auto compiles to exactly what `off` or `noise` compiles to: the equalized graph,
    calibrated and snapped like the plain one, is taken whole or not at all (when it makes no layer
    slower: that guard has its own tests below)."""
    from edgecompile.compiler import compile_model
    from edgecompile.passes import auto_equalize

    torch.manual_seed(0)
    model = ConvDepthwise().eval()
    spread_channels(model)
    path = save_torchscript(model, tmp_path / "m.pt")
    calib = inputs(ConvDepthwise, 64)
    monkeypatch.setattr(auto_equalize, "MIN_GAIN_DB", gain_db)
    monkeypatch.setattr(auto_equalize, "slower_layers", lambda *_: set())
    auto = compile_model(load_model(path, SHAPES[ConvDepthwise]), calib, CompileOptions(equalize="auto"))
    forced = compile_model(load_model(path, SHAPES[ConvDepthwise]), calib, CompileOptions(equalize=same_as))
    a, f = _quantized_params(auto), _quantized_params(forced)
    assert a.keys() == f.keys() and all(np.array_equal(a[k], f[k]) for k in a)
    assert any(n.startswith("cross-layer equalization") for n in auto.graph.notes)  # kept or not, it says so


def _left_shifting(compiled) -> set[str]:
    return {n.name for n in compiled.graph.nodes if "shift" in n.qparams and int(np.min(n.qparams["shift"])) < 0}


@pytest.mark.slow
def test_auto_leaves_alone_the_layers_equalization_would_make_shift_left(tmp_path, monkeypatch):
    """Spread channels make the noise equalization scale the last pointwise layer's weights up until
    it needs left shifts (the fast kernels' slow path); auto equalizes the other pairs only."""
    from edgecompile.compiler import compile_model
    from edgecompile.passes import auto_equalize

    torch.manual_seed(0)
    model = ConvDepthwise().eval()
    spread_channels(model)
    path = save_torchscript(model, tmp_path / "m.pt")
    calib = inputs(ConvDepthwise, 64)
    monkeypatch.setattr(auto_equalize, "MIN_GAIN_DB", -100.0)  # keep whatever it may keep
    compiled = {m: compile_model(load_model(path, SHAPES[ConvDepthwise]), calib, CompileOptions(equalize=m))
                for m in ("off", "noise", "auto")}
    assert _left_shifting(compiled["noise"]) - _left_shifting(compiled["off"]) == {"pw"}  # what it guards against
    assert _left_shifting(compiled["auto"]) <= _left_shifting(compiled["off"])
    assert "cross-layer equalization (noise) rescaled 2 layer pair(s)" in compiled["auto"].graph.notes  # not 3
    assert any("left pw as they were" in n for n in compiled["auto"].graph.notes)
    # the notes tell the kept graph's history: one range snapping, the equalized copy's
    assert sum(n.startswith("range snapping") for n in compiled["auto"].graph.notes) == 1


def test_slower_layers_names_a_layer_equalization_would_store_sparse(tmp_path):
    """A layer whose integer weights became mostly 0 (as an extreme channel factor can make them)
    would be stored sparse: that counts as slower, the same layer dense does not."""
    import copy

    from edgecompile.compiler import compile_model
    from edgecompile.passes.auto_equalize import slower_layers

    torch.manual_seed(0)
    path = save_torchscript(ConvConv().eval(), tmp_path / "m.pt")
    plain = compile_model(load_model(path, SHAPES[ConvConv]), inputs(ConvConv, 16), CompileOptions()).graph
    thinned = copy.deepcopy(plain)
    layer = next(n for n in thinned.nodes if n.name == "a")
    w = layer.qparams["weight"]
    w[np.arange(w.size).reshape(w.shape) % 10 != 0] = 0  # 90 % zeros
    assert slower_layers(plain, thinned, "auto") == {"a"}
    assert slower_layers(plain, plain, "auto") == set()
    assert slower_layers(plain, thinned, "off") == set()  # --sparse off stores it dense anyway


@pytest.mark.slow
def test_auto_equalizes_uneven_channels_and_stays_bit_exact_in_c(tmp_path):
    """--equalize auto on a conv/BN net with channels spread over x1/8..x8: equalization is kept,
    the output error on the calibration samples is below the plain graph's, and the C is bit-exact."""
    require_tool("gcc", "make")
    from edgecompile import metrics, simulate
    from edgecompile.compiler import compile_model
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    path = spread_convbn_net(tmp_path)
    calib = inputs(ConvBNNet, 64, 3)
    np.save(tmp_path / "calib.npy", calib)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64, equalize="auto"))
    assert any("equalization (noise) rescaled" in n for n in result.compiled.graph.notes)
    plain = compile_model(load_model(path, SHAPES[ConvBNNet]), calib, CompileOptions(equalize="off"))
    reference = result.compiled.imported.run_float(calib)
    sqnr = {k: metrics.sqnr_db(reference, simulate.run_dequantized(c.graph, calib))
            for k, c in (("auto", result.compiled), ("off", plain))}
    assert sqnr["auto"] > sqnr["off"], sqnr
    v = verify(result.out_dir)
    assert v.ok and v.total == 64

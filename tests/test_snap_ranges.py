"""Range snapping (passes/snap_ranges.py): which tensors it may rescale, that the float function is
kept, that a rescaled tensor fills its power-of-two format better, and that the compiled model
stays bit-exact in C."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgecompile.compiler import CompileOptions, optimize
from edgecompile.frontend import load_model
from edgecompile.passes.quantize import QuantOptions, calibrate
from edgecompile.passes.snap_ranges import CANDIDATES, find_groups, relative_noise, snap_ranges
from conftest import require_tool, save_torchscript


class Relu6Chain(nn.Module):
    """conv -> ReLU6 -> depthwise -> ReLU6 -> max pool -> flatten -> linear: ReLU6's [0, 6] wastes a
    quarter of an 8-bit power-of-two format."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8 * 3 * 3, 5)

    def forward(self, x):
        y = F.relu6(self.a(x) * 4)
        y = F.max_pool2d(F.relu6(self.dw(y) * 4), 2)
        return self.fc(torch.flatten(y, 1))


class Residual(nn.Module):
    """A tensor read by an Add (not a conv/linear layer) and one that is the model's output."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = F.relu(self.a(x))
        return self.b(y) + y


SHAPE = (3, 8, 8)


def float_graph(cls, tmp_path):
    torch.manual_seed(0)
    lm = load_model(save_torchscript(cls().eval(), tmp_path / "m.pt"), SHAPE)
    optimize(lm.graph, CompileOptions())
    return lm.graph


def samples(n, seed):
    return np.random.default_rng(seed).standard_normal((n,) + SHAPE).astype(np.float32)


def test_groups_are_the_tensors_only_layers_read(tmp_path):
    g = float_graph(Relu6Chain, tmp_path)
    groups = {grp.producer.name: grp for grp in find_groups(g)}
    assert len(groups) == 2  # the conv and the depthwise conv; the linear layer writes the output
    dw = next(grp for grp in groups.values() if len(grp.tensors) > 1)
    assert [type(r).__name__ for r in dw.readers] == ["Linear"]  # through the max pool and the flatten
    assert find_groups(float_graph(Residual, tmp_path)) == []  # read by the add; the model's output


def test_float_function_is_unchanged_and_relu6_bounds_scale(tmp_path):
    g = float_graph(Relu6Chain, tmp_path)
    x, calib = samples(16, 1), samples(64, 2)
    before = g.run_float(x)
    ranges = calibrate(g, calib)
    applied = snap_ranges(g, ranges, QuantOptions(calib_method="mse", unsigned_relu=True))
    assert applied and all(a in CANDIDATES and a > 1 for a in applied.values())
    after = g.run_float(x)
    assert np.max(np.abs(after - before)) <= 1e-5 * np.max(np.abs(before))
    for layer, a in applied.items():
        node = next(n for n in g.nodes if n.name == layer)
        assert node.attrs["act"]["max"] == pytest.approx(6.0 * a)
        # the calibration ranges follow the rescaled tensor
        seen = float(g.run_float(calib, keep_all=True)[node.outputs[0]].max())
        assert ranges[node.outputs[0]].hi == pytest.approx(seen, rel=1e-5)


def test_a_snapped_tensor_has_less_relative_noise(tmp_path):
    g = float_graph(Relu6Chain, tmp_path)
    ranges = calibrate(g, samples(64, 2))
    options = QuantOptions(calib_method="minmax", unsigned_relu=True)
    first = g.nodes[0].outputs[0]
    original = copy.deepcopy(ranges[first])
    applied = snap_ranges(g, ranges, options)
    a = applied[g.nodes[0].name]
    # the same values as 9-bit (unsigned) codes, before and after the factor a
    assert relative_noise(original, a, 9, options) < relative_noise(original, 1.0, 9, options)


def test_snapping_is_skipped_without_real_calibration_data(tmp_path):
    from edgecompile.compiler import compile_model

    path = save_torchscript(Relu6Chain().eval(), tmp_path / "m.pt")
    plain = compile_model(load_model(path, SHAPE), None, CompileOptions())  # synthetic calibration
    assert not any(n.startswith("range snapping") for n in plain.graph.notes)
    assert all(n.attrs.get("act") is None or n.attrs["act"]["max"] in (None, 6.0) for n in plain.graph.nodes)


def test_snapped_model_is_bit_exact_in_c(tmp_path):
    require_tool("gcc", "make")
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    torch.manual_seed(3)
    path = save_torchscript(Relu6Chain().eval(), tmp_path / "m.pt")
    np.save(tmp_path / "calib.npy", samples(64, 4))
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64))
    assert any(n.startswith("range snapping rescaled") for n in result.compiled.graph.notes)
    v = verify(result.out_dir)
    assert v.ok and v.total == 64


def test_vectorized_weight_formats_equal_the_scalar_rule():
    from edgecompile import numerics

    rng = np.random.default_rng(5)
    rows = rng.standard_normal((400, 9)) * np.exp(rng.uniform(-12, 12, (400, 1)))
    rows[:5] = 0.0
    rows[5:20] = np.round(rows[5:20] * 64) / 64  # values on the format grid: the rounding ties
    rows[20] = [127.5 / 64] * 9  # rounds to 128 at f = 6
    for bits in (2, 4, 8):
        expected = [numerics.frac_bits_for_interval(r.min(), r.max(), bits) for r in rows]
        assert numerics.frac_bits_for_intervals(rows.min(axis=1), rows.max(axis=1), bits).tolist() == expected


@pytest.mark.parametrize("per_channel", [True, False])
def test_the_noise_of_every_factor_at_once_is_each_factors_own(tmp_path, per_channel):
    """best_factor scores the 16 factors in one pass per layer and tensor; each score is the one the
    factor gets alone, by the formats quantize_graph would give (a plain loop over the factors here)."""
    from edgecompile.formats import format_for, sample_error
    from edgecompile.passes.snap_ranges import MARGIN, relative_noises, scaled_range, weight_noises

    graph = float_graph(Relu6Chain, tmp_path)
    ranges = calibrate(graph, samples(16, 1))
    options = QuantOptions(per_channel=per_channel)
    for layer in (n for n in graph.nodes if "weight" in n.params):
        rows = np.asarray(layer.params["weight"], np.float64).reshape(len(layer.params["weight"]), -1)
        for c, got in zip(1.0 / CANDIDATES, weight_noises(layer, 1.0 / CANDIDATES, options)):
            f = layer._rows_frac_bits(rows * c, 8, options)
            f = f if per_channel else np.full_like(f, f.min())
            err = layer._quantize_weights(rows * c, f, 8) * np.ldexp(1.0, -f)[:, None] - rows * c
            assert got == np.mean(np.mean(err ** 2, axis=1) / np.mean((rows * c) ** 2, axis=1)), (layer.name, c)
    r = ranges[graph.nodes[0].outputs[0]]
    for zero_point in (False, True):
        for a, got in zip(CANDIDATES, relative_noises(r, CANDIDATES, 8, options, zero_point)):
            wide = scaled_range(r, a)
            wide.lo, wide.hi = wide.lo * MARGIN, wide.hi * MARGIN
            f, z = format_for(wide, 8, options.calib_method, options.percentile, zero_point)
            assert got == sample_error(scaled_range(r, a), f, z, 8) / (a * a * np.mean(r.sample ** 2))
    assert not r.formats  # the scaled copies' answers are not kept with the calibrated range

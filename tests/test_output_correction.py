"""Output correction: the least-squares gain and offset of each model output, its leave-one-out
check and top-1 guard, and an export where it lowers the held-out error with the float graph, the
other layers and the C's exactness untouched."""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from onnx import helper

from edgecompile import metrics, simulate
from edgecompile.compiler import CompileOptions, compile_model
from edgecompile.frontend import load_model
from edgecompile.ops.weighted import WeightedOp
from edgecompile.passes import output_correction as oc
from conftest import require_tool
from test_ops import const, save_model


def test_affine_fit_is_least_squares_per_channel():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((40, 3, 2, 5)) * [[[[1.0]], [[4.0]], [[0.1]]]] + 2.0  # channels on axis 1
    f = q * np.array([0.5, -1.5, 2.0])[None, :, None, None] + np.array([0.3, 0.0, -7.0])[None, :, None, None]
    f += 0.01 * rng.standard_normal(f.shape)
    a, c = oc.affine_fit(q, f, axis=1)
    for ch in range(3):
        slope, intercept = np.polyfit(q[:, ch].ravel(), f[:, ch].ravel(), 1)
        assert a[ch] == pytest.approx(slope, rel=1e-9) and c[ch] == pytest.approx(intercept, rel=1e-9, abs=1e-9)
    assert np.allclose(a, [0.5, -1.5, 2.0], atol=0.05)
    # a channel whose integer output never varies keeps gain 1 and takes the mean difference
    q[:, 0] = 3.0
    a, c = oc.affine_fit(q, f, axis=1)
    assert a[0] == 1.0 and c[0] == pytest.approx(f[:, 0].mean() - 3.0)


def test_squared_error_and_leave_one_out_from_the_sums_match_refitting():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((12, 4))
    f = 0.7 * q + rng.standard_normal((12, 4))
    stats = oc.sample_stats(q, f, axis=-1)
    a, c = oc.fit(stats.sum(axis=0))
    qc, fc = q - q.mean(0), f - f.mean(0)  # the sums are of centred values
    assert np.allclose(oc.squared_error(stats, a, c), (a * qc + c - fc) ** 2)
    loo_a, loo_c = oc.leave_one_out(stats)
    for i in range(len(q)):
        rest = np.arange(len(q)) != i
        for ch in range(4):
            slope, intercept = np.polyfit(qc[rest, ch], fc[rest, ch], 1)
            assert loo_a[i, ch] == pytest.approx(slope) and loo_c[i, ch] == pytest.approx(intercept)


def test_noisy_outputs_are_shrunk_and_close_ones_left_alone():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((64, 10)) * 0.5 + np.linspace(-2, 2, 10)
    noisy = f + rng.standard_normal(f.shape) * 0.5  # correlation ~0.7: the gain should be ~corr^2
    found = oc.decide(noisy, f, axis=-1)
    assert found is not None
    a, c, gain_db, correlation = found
    assert 0.3 < correlation < 0.85 and gain_db >= oc.GAIN_DB
    assert np.all((a > 0.2) & (a < 0.8))
    assert oc.decide(f + rng.standard_normal(f.shape) * 0.05, f, axis=-1) is None  # corr 0.99: left alone
    # corr 0.93: shrinking would still gain about 0.6 dB, too little to tell from 64 samples' noise
    close = f + rng.standard_normal(f.shape) * 0.2
    stats = oc.sample_stats(close, f, axis=-1)
    loo_gain = oc.squared_error(stats, 1.0, 0.0).sum() / oc.squared_error(stats, *oc.leave_one_out(stats)).sum()
    assert 10 * np.log10(loo_gain) > oc.GAIN_DB
    assert oc.decide(close, f, axis=-1) is None
    assert oc.decide(f, f, axis=-1) is None  # nothing to correct


def test_the_note_tells_constant_float_outputs_from_amplified_rounding():
    rng = np.random.default_rng(5)
    varied = rng.standard_normal((64, 10))
    assert oc.why(varied, -1) == "the net amplifies rounding"
    constant = np.linspace(-1, 1, 10) + 1e-5 * rng.standard_normal((64, 10))  # what random weights often give
    spread = re.search(r"hardly vary with the input, by (\S+) of their size", oc.why(constant, -1))
    assert spread and 1e-5 <= float(spread.group(1)) <= 3e-5  # 1e-5 / rms(linspace(-1, 1, 10)) = 1.6e-5
    planes = np.ones((8, 3, 4, 4)) + 1e-6 * rng.standard_normal((8, 3, 4, 4))  # a conv's output, channels on axis 1
    assert "hardly vary" in oc.why(planes, 1)


def test_a_map_that_would_cost_top1_agreement_is_refused():
    """Noise common to every logit leaves the argmax alone; shrinking each logit on its own would not."""
    rng = np.random.default_rng(3)
    n = 200
    f = np.zeros((n, 2))
    f[:, 0] = rng.choice([-0.1, 0.1], n)  # class 0 when positive
    q = f + rng.standard_normal((n, 1))  # the same noise on both logits
    assert metrics.top1_agreement(f, q) == 1.0
    stats = oc.sample_stats(q, f, axis=-1)
    loo_a, loo_c = oc.leave_one_out(stats)
    gain = oc.squared_error(stats, 1.0, 0.0).sum() / oc.squared_error(stats, loo_a, loo_c).sum()
    assert 10 * np.log10(gain) > 3  # the error alone would call for it
    assert metrics.top1_agreement(f, q * loo_a + oc.real_offsets(q, f, -1, loo_a, loo_c)) < 0.9
    assert oc.decide(q, f, axis=-1) is None


def test_top1_loss_counts_only_beyond_chance():
    f = np.zeros((64, 2))
    f[:, 1] = 1.0  # float answers class 1 throughout
    q = f.copy()

    def turned(wrong: int, right: int):
        before, after = q.copy(), q.copy()
        before[:right, 1] = -1.0  # wrong before, right after
        after[right:right + wrong, 1] = -1.0  # right before, wrong after
        return before, after

    assert not oc.loses_top1(*turned(2, 0), f)  # 2 of 64: noise
    assert not oc.loses_top1(*turned(10, 8), f)
    assert oc.loses_top1(*turned(12, 0), f)
    assert oc.loses_top1(*turned(30, 10), f)


def cancelling_mlp(tmp_path, individual: float = 0.003):
    """x(24) -> 32 hidden units that share one large direction and differ by a small one -> ReLU -> two
    outputs whose +-1 weights cancel the shared part: what is left is small beside the rounding
    noise of 32 units in a format the shared part sets, so the integer outputs follow float loosely."""
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal(24) / 5 + individual * rng.standard_normal((32, 24))
    w2 = np.stack([np.tile([1.0, -1.0], 16), np.tile([1.0, 1.0, -1.0, -1.0], 8)])
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], transB=1)]
    inits = [const("W1", w1), const("B1", np.full(32, 3.0)), const("W2", w2), const("B2", [0.5, -0.2])]
    return save_model(tmp_path, "cancel", nodes, [1, 24], inits, y_shape=[1, 2])


CALIB = np.random.default_rng(7).standard_normal((64, 24)).astype(np.float32)
HELD_OUT = np.random.default_rng(8).standard_normal((512, 24)).astype(np.float32)


def test_export_lowers_the_held_out_error_and_changes_only_the_output_layer(tmp_path):
    path = cancelling_mlp(tmp_path)
    plain = compile_model(load_model(path, (24,)), CALIB, CompileOptions(output_correction=False))
    fixed = compile_model(load_model(path, (24,)), CALIB, CompileOptions())
    assert [c.layer for c in fixed.output_corrections] == ["Gemm_2"]
    correction = fixed.output_corrections[0]
    assert correction.correlation < oc.MAX_CORRELATION and np.all(correction.gains < 1)
    assert any(note.startswith("output correction: Gemm_2") and "the net amplifies rounding" in note
               for note in fixed.graph.notes)
    reference = plain.graph.run_float(HELD_OUT)
    assert np.array_equal(fixed.graph.run_float(HELD_OUT), reference)  # the float graph is the reference still
    before = metrics.sqnr_db(reference, simulate.run_dequantized(plain.graph, HELD_OUT))
    after = metrics.sqnr_db(reference, simulate.run_dequantized(fixed.graph, HELD_OUT))
    assert after >= before + 0.5, (before, after)
    for a, b in zip(plain.graph.nodes, fixed.graph.nodes):
        same = all(np.array_equal(a.qparams[k], b.qparams[k]) for k in a.qparams)
        assert same == (a.name != "Gemm_2"), a.name


def test_only_writers_of_outputs_no_layer_reads_are_corrected(tmp_path):
    """A hidden layer's output that is also a model output feeds the layers after it: correcting it would
    change them too."""
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], transB=1)]
    inits = [const("W1", rng.standard_normal((16, 24)) / 5), const("B1", np.zeros(16)),
             const("W2", rng.standard_normal((3, 16))), const("B2", np.zeros(3))]
    path = save_model(tmp_path, "two_outputs", nodes, [1, 24], inits, y_shape=[1, 3], extra_outputs=[("h", [1, 16])])
    graph = compile_model(load_model(path, (24,)), CALIB, CompileOptions(output_correction=False)).graph
    y, h = graph.outputs
    hidden = graph.producer(h)
    assert isinstance(hidden, WeightedOp) and hidden.attrs.get("act") is None and graph.consumers(h)
    assert oc.correctable_writers(graph) == [graph.producer(y)]


def test_trained_weights_are_left_as_trained(tmp_path):
    """Weights given by quantization-aware training (param_overrides) must reach the C as trained."""
    path = cancelling_mlp(tmp_path)
    graph = load_model(path, (24,)).graph
    overrides = {n.name: copy.deepcopy(n.params) for n in graph.nodes if "weight" in n.params}
    trained = compile_model(load_model(path, (24,)), CALIB, CompileOptions(param_overrides=overrides))
    assert trained.output_corrections == []


def test_a_correction_that_does_not_help_the_calibration_samples_is_undone(tmp_path, monkeypatch):
    path = cancelling_mlp(tmp_path)
    plain = compile_model(load_model(path, (24,)), CALIB, CompileOptions(output_correction=False))
    monkeypatch.setattr(oc, "decide", lambda q, f, axis: (np.full(q.shape[-1], 5.0), np.zeros(q.shape[-1]), 1.0, 0.5))
    wild = compile_model(load_model(path, (24,)), CALIB, CompileOptions())
    assert wild.output_corrections == []
    for a, b in zip(plain.graph.nodes, wild.graph.nodes):
        assert a.qattrs == b.qattrs and all(np.array_equal(a.qparams[k], b.qparams[k]) for k in a.qparams)
    out = plain.graph.outputs[0]
    assert (wild.graph.tensors[out].frac_bits, wild.graph.tensors[out].zero_point) == \
        (plain.graph.tensors[out].frac_bits, plain.graph.tensors[out].zero_point)


@pytest.mark.slow
def test_corrected_export_is_bit_exact_in_c(tmp_path):
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    np.save(tmp_path / "calib.npy", CALIB)
    result = export(ExportSettings(cancelling_mlp(tmp_path), tmp_path / "out", tmp_path / "calib.npy", vectors=64))
    assert [c["layer"] for c in result.summary["output_correction"]] == ["Gemm_2"]
    require_tool("gcc", "make")
    assert verify(result.out_dir).ok

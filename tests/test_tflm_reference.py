"""The TFLM int8 emulation the accuracy benchmark compares against (benchmarks/tflm_reference.py):
it must quantize like TFLite (per-channel symmetric conv weights, asymmetric activations) and
land where an int8 model should, or the benchmark's baseline means nothing."""
from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, randomize_batchnorm
from edgecompile import metrics, ops
from edgecompile.compiler import CompileOptions, optimize
from edgecompile.frontend import load_model
from models import save_program
from models_for_tests import ConvBNNet

sys.path.insert(0, str(ROOT / "benchmarks"))
import tflm_reference as tflm  # noqa: E402


def float_graph(model, shape, tmp_path):
    torch.manual_seed(0)
    path = save_program(model.eval(), shape, tmp_path / "m.pt2")
    g = copy.deepcopy(load_model(path, shape).graph)
    optimize(g, CompileOptions())
    return g


@pytest.mark.slow
def test_emulated_int8_is_close_to_float_but_not_exact(tmp_path, rng):
    torch.manual_seed(0)
    model = ConvBNNet()
    randomize_batchnorm(model)
    g = float_graph(model, (3, 24, 24), tmp_path)
    calib = rng.standard_normal((64, 3, 24, 24)).astype(np.float32)
    x = rng.standard_normal((128, 3, 24, 24)).astype(np.float32)
    sqnr = metrics.sqnr_db(g.run_float(x), tflm.tflm_int8_outputs(g, calib, x))
    assert 25 < sqnr < 60, sqnr  # int8 through five layers: tens of dB, never float-exact


@pytest.mark.slow
def test_conv_weights_per_channel_symmetric_and_linear_per_tensor(tmp_path, rng):
    torch.manual_seed(0)
    model = ConvBNNet()
    randomize_batchnorm(model)
    g = float_graph(model, (3, 24, 24), tmp_path)
    nodes, _ = tflm.prepare(g, rng.standard_normal((16, 3, 24, 24)).astype(np.float32))
    for original, node in zip(g.nodes, nodes):
        if not isinstance(node, ops.Conv2d | ops.Linear):
            continue
        w = np.asarray(original.params["weight"], np.float64).reshape(original.out_channels, -1)
        q = np.asarray(node.params["weight"]).reshape(len(w), -1)
        peak = np.abs(w).max(axis=1, keepdims=True)
        scale = peak / 127 if isinstance(node, ops.Conv2d) else np.full_like(peak, np.abs(w).max() / 127)
        levels = q / scale
        assert np.allclose(levels, np.round(levels), atol=1e-3)  # on the grid of its channel (or tensor)
        assert np.abs(levels).max() <= 127 + 1e-3
        if isinstance(node, ops.Conv2d):  # every channel spends its full symmetric range
            assert np.allclose(np.abs(levels).max(axis=1), 127, atol=1e-3)
    flipped, _ = tflm.fake_quantize_weights(-np.asarray(g.nodes[0].params["weight"]), per_channel=True)
    assert np.array_equal(flipped, -nodes[0].params["weight"])  # zero point 0: symmetric


@pytest.mark.slow
def test_single_conv_matches_an_integer_implementation(tmp_path, rng):
    """int32 accumulation of (x_q - zp) * w_q + b_q, requantized with s_in * s_w / s_out, rounded
    half away from zero: TFLM's conv arithmetic, which the float emulation claims to reproduce."""
    torch.manual_seed(1)
    conv = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU())
    g = float_graph(conv, (2, 6, 6), tmp_path)
    calib = rng.standard_normal((32, 2, 6, 6)).astype(np.float32)
    x = rng.standard_normal((16, 2, 6, 6)).astype(np.float32)
    nodes, qp = tflm.prepare(g, calib)
    node = g.nodes[0]
    qx, qy = qp[g.inputs[0]], qp[g.outputs[0]]
    x_q = qx.quantize(x)
    w = np.asarray(node.params["weight"], np.float64)
    s_w = np.abs(w).reshape(4, -1).max(axis=1).astype(np.float32).astype(np.float64) / 127
    w_q = tflm.round_half_away(w / s_w[:, None, None, None])
    b_q = tflm.round_half_away(np.asarray(node.params["bias"], np.float64) / (qx.scale * s_w))
    xp = np.pad(x_q - qx.zero_point, ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = np.zeros((16, 4, 6, 6), np.int64)
    for i in range(3):
        for j in range(3):
            acc += np.einsum("nchw,oc->nohw", xp[:, :, i:i + 6, j:j + 6], w_q[:, :, i, j]).astype(np.int64)
    acc += b_q.astype(np.int64)[None, :, None, None]
    y_q = tflm.round_half_away(acc * (qx.scale * s_w / qy.scale)[None, :, None, None]) + qy.zero_point
    y_q = np.clip(y_q, qy.zero_point, 127)  # the fused ReLU clamps at the zero point
    emulated = qy.quantize(tflm.run(g, nodes, qp, x))
    assert np.array_equal(emulated, y_q)

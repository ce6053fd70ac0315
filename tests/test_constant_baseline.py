"""The export's constant-output baseline: what a model that ignores its input (the float model's mean
output over the calibration samples) scores, and the note when it comes near the integer model's score."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import helper

from edgecompile import metrics
from edgecompile.cli import cli
from test_ops import const, save_model


def mlp(tmp_path, name: str, head_scale: float):
    """x(24) -> 16 ReLU units -> 3 outputs; a tiny head_scale leaves the outputs nearly their biases."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], transB=1)]
    inits = [const("W1", rng.standard_normal((16, 24)) / 5), const("B1", np.zeros(16)),
             const("W2", rng.standard_normal((3, 16)) * head_scale), const("B2", [1.0, -2.0, 0.5])]
    return save_model(tmp_path, name, nodes, [1, 24], inits, y_shape=[1, 3])


@pytest.mark.parametrize("head_scale, noted", [(1.0, False), (1e-5, True)])
def test_constant_output_baseline_and_its_note(tmp_path, head_scale, noted):
    path = mlp(tmp_path, "mlp", head_scale)
    calib = np.random.default_rng(1).standard_normal((64, 24)).astype(np.float32)
    held_out = np.random.default_rng(2).standard_normal((100, 24)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    np.save(tmp_path / "val.npy", held_out)
    r = CliRunner().invoke(cli, ["export", str(path), "--calib", str(tmp_path / "calib.npy"), "--val",
                                 str(tmp_path / "val.npy"), "-o", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    session = ort.InferenceSession(str(path))
    run = lambda x: np.concatenate([session.run(None, {"x": row[None]})[0] for row in x])  # noqa: E731
    reference, mean = run(held_out), run(calib).mean(axis=0)
    constant = np.broadcast_to(mean, reference.shape)
    assert s["constant_output_sqnr_db"] == pytest.approx(metrics.sqnr_db(reference, constant), abs=0.01)
    assert s["constant_output_top1_agreement"] == metrics.top1_agreement(reference, constant)
    # noted where the constant comes within 3 dB of the integer model: its figures then say little
    assert (s["constant_output_sqnr_db"] >= s["output_sqnr_db"] - 3) == noted
    assert ("note: a constant output" in r.output) == noted
    report = (tmp_path / "out" / "report.md").read_text()
    assert "- a constant output (the float model's mean over the calibration samples) scores" in report
    assert ("hardly vary with the input" in report) == noted

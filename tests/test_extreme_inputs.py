"""Every example model's C on the extreme int8 inputs, all -128, all 127 and alternating -128/127
(the largest accumulators and the saturation at both ends), built with ASan and UBSan on the host:
no memory or undefined-behaviour error, and bit-exact against the simulator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgecompile.export import ExportSettings, export
from edgecompile.frontend import load_module
from edgecompile.manifest import read_manifest
from edgecompile.simulate import run_integer
from edgecompile.verify import build_and_run
from conftest import require_tool

pytestmark = pytest.mark.slow


def extreme_inputs(graph) -> np.ndarray:
    """All -128, all 127, and -128/127 alternating, then the other way round: (4, *sample_shape) int8."""
    n = graph.sample_size
    alternating = np.where(np.arange(n) % 2 == 0, -128, 127)
    rows = [np.full(n, -128), np.full(n, 127), alternating, -1 - alternating]
    return np.stack(rows).astype(np.int8).reshape((4,) + tuple(graph.sample_shape))


def check_extremes(out_dir) -> None:
    require_tool("gcc", "make")
    graph, _ = read_manifest(out_dir)
    q = extreme_inputs(graph)
    got = build_and_run(out_dir, graph, q, "host", sanitize=True)  # a sanitizer report fails the run
    np.testing.assert_array_equal(got, run_integer(graph, q).reshape(len(q), -1))


def _export_example(files: dict, out):
    return export(ExportSettings(files["model"], out, files["calib"], vectors=4)).out_dir


@pytest.mark.parametrize("name", ["lenet", "mlp"])
def test_trained_examples(name, digits_lenet, digits_mlp, tmp_path):
    check_extremes(_export_example({"lenet": digits_lenet, "mlp": digits_mlp}[name], tmp_path / "out"))


@pytest.mark.parametrize("name", ["dscnn", "resnet8", "mobilenetv2", "squeezenet", "shufflenet", "mobilenetv3_block"])
def test_cnn_zoo(name, tmp_path):
    import cnn_zoo

    check_extremes(_export_example(cnn_zoo.save(name, tmp_path / "zoo"), tmp_path / "out"))


def _hard_model_names():
    import hard_models

    return sorted(hard_models.MODELS)


@pytest.mark.parametrize("name", _hard_model_names())
def test_hard_models(name, tmp_path):
    import hard_models

    check_extremes(_export_example(hard_models.save(name, tmp_path / "hard"), tmp_path / "out"))


@pytest.mark.parametrize("kind", ["fastrnn", "fastrnn-lowrank", "fastgrnn", "fastgrnn-lowrank", "gru", "lstm"])
def test_recurrent_examples(kind, tmp_path):
    import rnn

    torch.manual_seed(0)
    model = rnn.Classifier(kind, 8).eval()
    calib = np.random.default_rng(0).standard_normal((64, 8, 8)).astype(np.float32)
    result = export(ExportSettings(tmp_path / "m.pt", tmp_path / "out", calib, vectors=4,
                                   loaded=load_module(model, (8, 8), kind.replace("-", "_"))))
    check_extremes(result.out_dir)

"""The efficient-CNN example models: each exports, runs bit-exactly on the host over 256 inputs, and
keeps its accuracy (SQNR on fresh inputs; top-1 agreement for a classifier trained on digits)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgecompile import metrics, simulate
from edgecompile.export import ExportSettings, export
from models import load_float_model
from edgecompile.verify import verify
from conftest import require_tool

# SQNR floors from the issue: nets up to about 8 layers 25 dB, ResNet-8 and MobileNetV2 18 dB
FLOORS = {"dscnn": 25, "squeezenet": 25, "shufflenet": 25, "mobilenetv3_block": 25, "resnet8": 18,
          "mobilenetv2": 18}


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo")


@pytest.mark.parametrize("name", sorted(FLOORS))
@pytest.mark.slow
def test_zoo_model_exports_bit_exact_and_accurate(name, zoo_dir):
    require_tool("gcc", "make")
    import cnn_zoo

    files = cnn_zoo.save(name, zoo_dir)
    result = export(ExportSettings(files["model"], zoo_dir / f"{name}_out", files["calib"], vectors=256))
    # accuracy on inputs the calibration never saw
    x = np.random.default_rng(99).standard_normal((32,) + files["shape"]).astype(np.float32)
    model, _ = cnn_zoo.build(name)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    sqnr = metrics.sqnr_db(reference, simulate.run_dequantized(result.compiled.graph, x))
    assert sqnr >= FLOORS[name], sqnr
    plan = result.compiled.plan
    assert plan.lower_bound <= plan.arena_size <= plan.layer_bound < plan.total_activation_bytes
    if name in ("dscnn", "mobilenetv2", "mobilenetv3_block"):  # depthwise and pointwise layers write over their inputs
        assert plan.arena_size < plan.layer_bound and (plan.overlapping or plan.patches)
    v = verify(result.out_dir)
    assert v.total == 256 and v.ok, v.first_mismatch


@pytest.mark.slow
def test_trained_mobilenet_style_classifier_keeps_agreement(tmp_path):
    """A classifier with the efficient-CNN ops trained on real data (digits): >= 98 % top-1 agreement."""
    require_tool("gcc", "make")
    import train

    train.main(["--model", "mobilenet", "--epochs", "30", "-o", str(tmp_path)])
    x, y = np.load(tmp_path / "test_x.npy"), np.load(tmp_path / "test_y.npy")
    result = export(ExportSettings(tmp_path / "mobilenet_digits.pt2", tmp_path / "out", tmp_path / "calib.npy"))
    net = load_float_model(tmp_path / "mobilenet_digits.pt2")
    with torch.no_grad():
        float_pred = net(torch.from_numpy(x)).numpy().argmax(1)
    int_pred = simulate.run_dequantized(result.compiled.graph, x).argmax(1)
    assert np.mean(float_pred == int_pred) >= 0.98
    assert np.mean(int_pred == y) >= np.mean(float_pred == y) - 0.01
    assert verify(result.out_dir).ok

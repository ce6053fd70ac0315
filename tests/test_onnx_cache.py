"""The ONNX conversions of PyTorch files kept between runs (frontend/onnx_cache.py): a repeat load
reads the kept conversion and exports the same bytes; any change to what the conversion depends on
converts afresh; broken, unwritable or turned-off caches never fail a load."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgecompile.export import ExportSettings, export
from edgecompile.frontend import load_model, onnx_cache, torch_frontend
from conftest import save_torchscript


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def save_program(path, seed=0):
    torch.manual_seed(seed)
    model = Tiny().eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 2, 6, 6),)), str(path))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The cache turned on (conftest turns it off for every other test), in a folder of its own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("EDGECOMPILE_CACHE", "on")
    monkeypatch.setenv("EDGECOMPILE_CACHE_DIR", str(folder))
    return folder


def no_conversion(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("converted again: the kept conversion was not used")
    monkeypatch.setattr(torch_frontend, "load_torch_module", refuse)


@pytest.mark.slow
def test_a_repeat_export_reads_the_kept_conversion_and_writes_the_same_bytes(tmp_path, cache, monkeypatch):
    path = save_program(tmp_path / "tiny.pt2")
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).standard_normal((16, 2, 6, 6)).astype(np.float32))
    first = export(ExportSettings(path, tmp_path / "first", calib))
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1
    no_conversion(monkeypatch)
    lines = []
    second = export(ExportSettings(path, tmp_path / "second", calib), log=lines.append)
    assert any("an earlier run kept" in line for line in lines)
    for folder in ("src", "vectors"):
        files = sorted(p.name for p in (first.out_dir / folder).iterdir())
        assert files and files == sorted(p.name for p in (second.out_dir / folder).iterdir())
        for name in files:
            assert (first.out_dir / folder / name).read_bytes() == (second.out_dir / folder / name).read_bytes(), name
    assert first.summary["output_sqnr_db"] == second.summary["output_sqnr_db"]


def test_the_file_the_shape_and_the_versions_name_the_entry(tmp_path, cache, monkeypatch):
    path = save_program(tmp_path / "tiny.pt2")
    key = onnx_cache.entry_key(path, None)
    assert key == onnx_cache.entry_key(path, None)
    assert key != onnx_cache.entry_key(path, (2, 6, 6))  # another shape asked for
    assert onnx_cache.entry_key(path, (2, 6, 6)) == onnx_cache.entry_key(path, (np.int64(2), 6, 6))
    other = save_program(tmp_path / "other.pt2", seed=1)  # other weights
    assert onnx_cache.entry_key(other, None) != key
    converter, edited = onnx_cache.CONVERTER, tmp_path / "torch_frontend.py"  # another conversion
    edited.write_text(converter.read_text() + "\n# edited\n")
    monkeypatch.setattr(onnx_cache, "CONVERTER", edited)
    assert onnx_cache.entry_key(path, None) != key
    monkeypatch.setattr(onnx_cache, "CONVERTER", converter)
    monkeypatch.setattr(onnx_cache, "_version", lambda package: "0.0-" + package)  # another PyTorch or ONNX
    assert onnx_cache.entry_key(path, None) != key


def test_a_changed_file_is_converted_again(tmp_path, cache, monkeypatch):
    path = save_program(tmp_path / "tiny.pt2")
    first = load_model(path)  # the shape the program records
    assert not first.kept
    again = load_model(path)
    assert again.kept and again.kind == "export"
    assert again.onnx_model.SerializeToString() == first.onnx_model.SerializeToString()
    save_program(path, seed=1)
    changed = load_model(path)
    assert not changed.kept  # the new weights, not the kept ones
    w_old = first.onnx_model.graph.initializer[0].raw_data
    w_new = changed.onnx_model.graph.initializer[0].raw_data
    assert w_old != w_new


def test_torchscript_is_kept_too_with_its_input_shape(tmp_path, cache, monkeypatch):
    torch.manual_seed(0)
    path = save_torchscript(Tiny(), tmp_path / "tiny.pt")
    first = load_model(path, (2, 6, 6))
    no_conversion(monkeypatch)
    again = load_model(path, (2, 6, 6))
    assert again.kept and again.kind == "torchscript"
    assert again.onnx_model.SerializeToString() == first.onnx_model.SerializeToString()
    x = np.random.default_rng(1).standard_normal((4, 2, 6, 6)).astype(np.float32)
    assert np.array_equal(again.graph.run_float(x), first.graph.run_float(x))


def test_off_keeps_and_reads_nothing(tmp_path, cache, monkeypatch):
    path = save_program(tmp_path / "tiny.pt2")
    monkeypatch.setenv("EDGECOMPILE_CACHE", "off")
    assert not load_model(path).kept and not load_model(path).kept
    assert not cache.exists()


def test_a_broken_entry_is_converted_and_replaced(tmp_path, cache):
    path = save_program(tmp_path / "tiny.pt2")
    load_model(path)
    (entry,) = (cache / "onnx").glob("*.onnx")
    entry.write_bytes(b"\x08\xff not a model")
    loaded = load_model(path)
    assert not loaded.kept and len(loaded.graph.nodes) >= 2
    assert load_model(path).kept  # replaced by a whole one
    (about,) = (cache / "onnx").glob("*.json")
    about.write_text("{")
    assert not load_model(path).kept


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("EDGECOMPILE_CACHE", "on")
    monkeypatch.setenv("EDGECOMPILE_CACHE_DIR", str(blocker))
    path = save_program(tmp_path / "tiny.pt2")
    assert not load_model(path).kept and not load_model(path).kept
    assert blocker.read_text() == "not a folder"


def test_models_with_edgecompile_ops_and_pickles_are_not_kept(tmp_path, cache):
    path = save_program(tmp_path / "tiny.pt2")
    model = load_model(path).onnx_model
    onnx_cache.store(onnx_cache.key_for(path, (2, 6, 6)), path, model, (2, 6, 6), "pickle")
    custom = type(model)()
    custom.CopyFrom(model)
    custom.graph.node[0].domain = "edgecompile"
    onnx_cache.store(onnx_cache.key_for(path, (1, 2, 3)), path, custom, (1, 2, 3), "export")
    assert len(list((cache / "onnx").glob("*.json"))) == 1  # only the first load's own entry


def test_the_newest_entries_are_kept(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(onnx_cache, "MAX_ENTRIES", 2)
    path = save_program(tmp_path / "tiny.pt2")
    model = load_model(path, (2, 6, 6)).onnx_model
    (oldest,) = (cache / "onnx").glob("*.json")
    os.utime(oldest, (1e9, 1e9))
    for shape in ((2, 6, 7), (2, 6, 8)):
        onnx_cache.store(onnx_cache.key_for(path, shape), path, model, shape, "export")
    kept = sorted(json.loads(p.read_text())["shape"] for p in (cache / "onnx").glob("*.json"))
    assert len(kept) == 2 and [2, 6, 6] not in kept
    assert len(list((cache / "onnx").glob("*.onnx"))) == 2

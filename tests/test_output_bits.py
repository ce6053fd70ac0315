"""--output-bits: a model output of a few values is int16 by default (its own rounding error was
the largest left in most classifiers), larger ones and those of int8-only writers stay int8; the
C API, the test vectors and the runner's records carry each output's type, bit-exact."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import helper

from edgecompile import c_api, metrics, simulate
from edgecompile.cli import cli
from edgecompile.compiler import CompileOptions, compile_model
from edgecompile.errors import EdgeCompileError
from edgecompile.frontend import load_model
from edgecompile.manifest import read_manifest
from edgecompile.passes.quantize import WIDE_OUTPUT_MAX
from edgecompile.verify import verify
from conftest import require_tool
from test_ops import compile_and_check, const, conv_w, save_model


def mlp(tmp_path, rng, outputs: int, name: str = "mlp", softmax: bool = False, hidden_output: bool = False):
    """x(24) -> Gemm -> ReLU -> Gemm(outputs) [-> Softmax]; with hidden_output the hidden layer's
    output (which the second Gemm also reads) is a model output too."""
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["z" if softmax else "y"], transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["y"], axis=1))
    inits = [const("W1", rng.standard_normal((16, 24)) / 5), const("B1", rng.standard_normal(16) * 0.1),
             const("W2", rng.standard_normal((outputs, 16)) * 2), const("B2", rng.standard_normal(outputs))]
    extra = [("r", [1, 16])] if hidden_output else []
    return save_model(tmp_path, name, nodes, [1, 24], inits, y_shape=[1, outputs], extra_outputs=extra)


def compiled(path, rng, **options):
    calib = np.random.default_rng(7).standard_normal((64, 24)).astype(np.float32)  # the same for every call
    return compile_model(load_model(path, (24,)), calib, CompileOptions(**options))


def bits_of_outputs(c) -> list[int]:
    return [c.graph.tensors[t].bits for t in c.graph.outputs]


def test_auto_makes_a_few_values_int16_and_many_int8(tmp_path, rng):
    assert bits_of_outputs(compiled(mlp(tmp_path, rng, 10), rng)) == [16]
    assert bits_of_outputs(compiled(mlp(tmp_path, rng, WIDE_OUTPUT_MAX), rng)) == [16]
    assert bits_of_outputs(compiled(mlp(tmp_path, rng, WIDE_OUTPUT_MAX + 1, "big"), rng)) == [8]
    small = mlp(tmp_path, rng, 10)
    assert bits_of_outputs(compiled(small, rng, output_bits=8)) == [8]
    assert bits_of_outputs(compiled(mlp(tmp_path, rng, 300, "big16"), rng, output_bits=16)) == [16]
    inner = [t for name, t in compiled(small, rng).graph.tensors.items() if name not in ("x", "y")]
    assert inner and all(t.bits == 8 for t in inner)  # only the output widens


def test_int8_only_writers_and_outputs_read_inside_stay_int8(tmp_path, rng):
    assert bits_of_outputs(compiled(mlp(tmp_path, rng, 10, "soft", softmax=True), rng)) == [8]  # a softmax table
    both = compiled(mlp(tmp_path, rng, 10, "both", hidden_output=True), rng)
    assert bits_of_outputs(both) == [16, 8]  # y is the caller's alone; r is also read by the second Gemm
    assert bits_of_outputs(compiled(mlp(tmp_path, rng, 10, "four"), rng, bits=4)) == [8]  # packed weights
    dense = compiled(mlp(tmp_path, rng, 10, "four16"), rng, bits=4, output_bits=16)
    assert bits_of_outputs(dense) == [16]  # asked for: the layer then keeps one weight per byte
    assert type(dense.graph.nodes[-1]).__name__ == "Linear"


def test_a_16_bit_output_removes_the_output_rounding(tmp_path, rng):
    """On a classifier-like head (large weights, a handful of logits) the int8 output's rounding
    is half the error: int16 gains over 2 dB on held-out inputs and never loses top-1 agreement."""
    path = mlp(tmp_path, rng, 10)
    x = rng.standard_normal((256, 24)).astype(np.float32)
    scores = {}
    for bits in (8, 16):
        c = compiled(path, rng, output_bits=bits)
        y = simulate.run_dequantized(c.graph, x)
        scores[bits] = (metrics.sqnr_db(c.imported.run_float(x), y), metrics.top1_agreement(c.imported.run_float(x), y))
    assert scores[16][0] >= scores[8][0] + 2.0, scores  # measured: +2.6 dB
    assert scores[16][1] >= scores[8][1], scores


def test_a_view_of_a_conv_output_is_int16_and_bit_exact_with_asan(tmp_path, rng):
    """Conv -> Flatten -> output: the conv writes the caller's int16 buffer through the view."""
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Flatten", ["c"], ["y"])]
    inits = [const("W", conv_w(rng, 3, 2, 3)), const("B", rng.standard_normal(3))]
    path = save_model(tmp_path, "cv", nodes, [1, 2, 7, 7], inits, y_shape=[1, 48])
    result = compile_and_check(tmp_path, path, (2, 7, 7), rng, verify_c=False)
    g = result.compiled.graph
    assert g.tensors["c"].bits == g.tensors["y"].bits == 16
    require_tool("gcc", "make")
    v = verify(result.out_dir, sanitize=True)
    assert v.ok and v.total == 64, v.first_mismatch
    header = (result.out_dir / "src" / "cv.h").read_text()
    assert "void cv_run(const int8_t *input, int16_t *output);" in header
    assert "void cv_dequantize_output(const int16_t *q, float *y);" in header
    assert "48 int16_t values" in header


def test_mixed_output_types_in_the_api_vectors_and_runner(tmp_path, rng):
    """int8 and int16 outputs side by side: NAME_run's types, expected.bin's records, the
    per-output files, vectors.h, and the runner's outputs.bin, bit-exact on the host."""
    require_tool("gcc", "make")
    path = mlp(tmp_path, rng, 10, "mixed", hidden_output=True)
    np.save(tmp_path / "calib.npy", rng.standard_normal((64, 24)).astype(np.float32))
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["export", str(path), "--calib", str(tmp_path / "calib.npy"), "-o", str(out),
                                 "--vectors", "20", "-q"])
    assert r.exit_code == 0, r.output
    header = (out / "src" / "mixed.h").read_text()
    assert "void mixed_run(const int8_t *input, int16_t *output0, int8_t *output1);" in header
    g, _ = read_manifest(out)
    expected = c_api.read_outputs(g, (out / "vectors" / "expected.bin").read_bytes(), "expected.bin")
    assert expected.shape == (20, 26)
    assert (out / "vectors" / "expected.bin").stat().st_size == 20 * (10 * 2 + 16)
    y0 = np.fromfile(out / "vectors" / "expected_output0.bin", dtype="<i2").reshape(20, 10)
    y1 = np.fromfile(out / "vectors" / "expected_output1.bin", dtype=np.int8).reshape(20, 16)
    assert np.array_equal(expected, np.concatenate([y0, y1], axis=1))
    assert np.abs(y0).max() > 127  # the int16 output uses its range
    linked = (out / "vectors" / "vectors.h").read_text()
    assert "static const int16_t ec_vector_expected_output0[4][10]" in linked
    assert "static const int8_t ec_vector_expected_output1[4][16]" in linked
    v = verify(out)
    assert v.ok and v.total == 20, v.first_mismatch
    r = CliRunner().invoke(cli, ["export", str(path), "--calib", str(tmp_path / "calib.npy"), "-o", str(out),
                                 "--output-bits", "8", "--vectors", "8", "-q"])
    assert r.exit_code == 0, r.output
    assert "void mixed_run(const int8_t *input, int8_t *output0, int8_t *output1);" in (out / "src" / "mixed.h").read_text()
    assert json.loads((out / "manifest.json").read_text())
    assert verify(out).ok


def test_output_records_round_trip_and_refuse_a_partial_record(tmp_path, rng):
    c = compiled(mlp(tmp_path, rng, 10, "rec", hidden_output=True), rng)
    record = c_api.output_record(c.graph)
    assert record.itemsize == 10 * 2 + 16
    values = np.concatenate([rng.integers(-32768, 32768, (5, 10)), rng.integers(-128, 128, (5, 16))], axis=1)
    raw = c_api.output_bytes(c.graph, values)
    assert len(raw) == 5 * record.itemsize
    assert np.array_equal(c_api.read_outputs(c.graph, raw, "r"), values)
    with pytest.raises(EdgeCompileError, match="outputs.bin: 35 bytes is not a whole number of 36-byte"):
        c_api.read_outputs(c.graph, raw[:35], "outputs.bin")


def test_bad_output_bits_is_a_clear_error(tmp_path, rng):
    path = mlp(tmp_path, rng, 10)
    with pytest.raises(EdgeCompileError, match="--output-bits 12: outputs are 8 or 16 bits, or auto"):
        compiled(path, rng, output_bits=12)
    r = CliRunner().invoke(cli, ["export", str(path), "-o", str(tmp_path / "o"), "--output-bits", "4"])
    assert r.exit_code == 2 and "--output-bits" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()

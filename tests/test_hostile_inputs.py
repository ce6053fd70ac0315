"""Hostile inputs as data: every way a user can hand the CLI something broken, one row each.

Each row is a command line and the words its error message must contain.  Every row must
fail with a non-zero exit, name the problem, print no traceback, and leave an existing
project folder (with a file of the user's in it) exactly as it was.  A new way to break the
CLI is a new row here.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgecompile.cli import cli
from conftest import require_tool, save_torchscript
from models_for_tests import WithUnsupported


class Tiny(nn.Module):
    def __init__(self, width=8, hidden=16, out=4):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, out)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def tiny_with_weight(value: float) -> Tiny:
    torch.manual_seed(0)
    m = Tiny().eval()
    with torch.no_grad():
        m.fc2.weight[1, 3] = value
    return m


def onnx_file(path, nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def build_files(d):
    """Every file the rows refer to, by name; built once for the module."""
    torch.manual_seed(0)
    f = {}
    model = Tiny().eval()
    f["pt"] = save_torchscript(model, d / "tiny.pt")
    example = torch.zeros(2, 8)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, d / "tiny.pt2")
    f["pt2"] = d / "tiny.pt2"
    torch.onnx.export(model, (example,), d / "tiny.onnx", dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    f["onnx"] = d / "tiny.onnx"
    for kind in ("pt", "pt2", "onnx"):
        data = f[kind].read_bytes()
        (d / f"empty.{kind}").write_bytes(b"")
        (d / f"truncated.{kind}").write_bytes(data[: len(data) // 2])
        (d / f"garbage.{kind}").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    with zipfile.ZipFile(d / "zip.pt2", "w") as z:
        z.writestr("archive/data.pkl", b"not a program")
    torch.save(model.state_dict(), d / "state_dict.pt")
    torch.save(model, d / "pickled.pt")
    save_torchscript(WithUnsupported(), d / "floor.pt")
    x8 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    onnx_file(d / "erf.onnx", [helper.make_node("Erf", ["x"], ["y"], name="the_erf")], [x8],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    onnx_file(d / "custom.onnx", [helper.make_node("Frobnicate", ["x"], ["y"], name="frob", domain="com.acme")],
              [x8], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    w = numpy_helper.from_array(np.ones((4, 8), np.float32), "W")
    onnx_file(d / "dynamic.onnx", [helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)],
              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "features"])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [w])
    onnx_file(d / "empty_gemm.onnx", [helper.make_node("Gemm", ["x", "W"], ["y"], name="fc_empty", transB=1)], [x8],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 0])],
              [numpy_helper.from_array(np.zeros((0, 8), np.float32), "W")])
    # PyTorch's ceil-mode pool drops a window that starts in the padding; onnxruntime keeps it, so
    # the exporter's Gemm does not fit the shape onnxruntime infers
    ceil = nn.Sequential(nn.MaxPool2d(4, 4, 2, ceil_mode=True), nn.Flatten(), nn.Linear(4 * 8 * 11, 3)).eval()
    torch.onnx.export(ceil, (torch.zeros(2, 4, 30, 40),), d / "ceil_pool.onnx", dynamo=False, opset_version=16,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    save_torchscript(tiny_with_weight(float("nan")), d / "nan_weight.pt")
    save_torchscript(tiny_with_weight(float("inf")), d / "inf_weight.pt")
    save_torchscript(tiny_with_weight(1e30), d / "huge_weight.pt")
    save_torchscript(Tiny(width=256, hidden=512, out=8), d / "big.pt")  # 128 KiB of int8 weights
    (d / "model.h5").write_bytes(b"\x89HDF\r\n")
    rng = np.random.default_rng(0)
    np.save(d / "calib.npy", rng.standard_normal((32, 8)).astype(np.float32))
    save_torchscript(nn.Linear(40_000, 2), d / "wide_input.pt")  # its input alone outgrows a small board's RAM
    np.save(d / "wide_input.npy", rng.standard_normal((4, 40_000)).astype(np.float32))
    np.save(d / "wrong_shape.npy", np.zeros((4, 7), np.float32))
    np.save(d / "rank3.npy", np.zeros((2, 4, 2), np.float32))
    np.save(d / "nan.npy", np.full((4, 8), np.nan, np.float32))
    np.save(d / "inf.npy", np.full((4, 8), np.inf, np.float32))
    np.save(d / "ints.npy", np.zeros((4, 8), np.int32))
    np.save(d / "empty.npy", np.zeros((0, 8), np.float32))
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(d / "labels.npy", rng.integers(0, 4, 32))
    (d / "a_file").write_text("not a folder")
    foreign = d / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("someone else's folder")
    return f


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The files, and one good exported project for the verify/build/bench rows."""
    d = tmp_path_factory.mktemp("hostile")
    build_files(d)
    project = d / "project"
    r = CliRunner().invoke(cli, ["export", str(d / "tiny.pt"), "--calib", str(d / "calib.npy"), "-o", str(project),
                                 "-q", "--vectors", "4"])
    assert r.exit_code == 0, r.output
    big = d / "big_project"
    r = CliRunner().invoke(cli, ["export", str(d / "big.pt"), "--input-shape", "256", "-o", str(big), "-q",
                                 "--vectors", "1", "--no-format-search", "--weight-rounding", "nearest",
                                 "--equalize", "off", "--no-snap-ranges"])
    assert r.exit_code == 0, r.output
    truncated = d / "truncated_project"
    r = CliRunner().invoke(cli, ["export", str(d / "tiny.pt"), "--calib", str(d / "calib.npy"), "-o", str(truncated),
                                 "-q", "--vectors", "4"])
    assert r.exit_code == 0, r.output
    with open(truncated / "vectors" / "inputs.bin", "ab") as fh:
        fh.write(b"\x01\x02\x03")
    return d


@dataclass
class Case:
    id: str
    args: list  # "{d}" in an argument is the module's folder; "{out}" the existing project (the sentinel)
    expect: tuple  # substrings of the message
    tools: tuple = ()
    subprocess: bool = False  # PyTorch writes some tracebacks straight to the process's stderr
    max_lines: int | None = None  # a message that must not carry a dump (of a graph, a log)


E = ["export"]
OUT = ["-o", "{out}"]
TINY = ["{d}/tiny.pt"]
CALIB = ["--calib", "{d}/calib.npy"]


def export_case(id, args, *expect, **kw):
    return Case(id, E + args + OUT, expect, **kw)


CASES = [
    # model files
    export_case("missing-model", ["{d}/missing.pt", "--input-shape", "8"], "missing.pt", "no such file",
                subprocess=True),
    export_case("model-is-a-folder", ["{d}/foreign", "--input-shape", "8"], "foreign"),
    export_case("unknown-extension", ["{d}/model.h5", "--input-shape", "8"], "model.h5"),
    export_case("empty-torchscript", ["{d}/empty.pt", "--input-shape", "8"], "empty.pt"),
    export_case("truncated-torchscript", ["{d}/truncated.pt", "--input-shape", "8"], "truncated.pt"),
    export_case("garbage-torchscript", ["{d}/garbage.pt", "--input-shape", "8"], "garbage.pt"),
    export_case("empty-pt2", ["{d}/empty.pt2"], "empty.pt2", subprocess=True),
    export_case("truncated-pt2", ["{d}/truncated.pt2"], "truncated.pt2", "torch.export program", subprocess=True),
    export_case("garbage-pt2", ["{d}/garbage.pt2"], "garbage.pt2", "not a torch.export program", subprocess=True),
    export_case("zip-not-a-program", ["{d}/zip.pt2"], "zip.pt2", "not a readable torch.export program",
                subprocess=True),
    export_case("empty-onnx", ["{d}/empty.onnx"], "empty.onnx"),
    export_case("truncated-onnx", ["{d}/truncated.onnx"], "truncated.onnx"),
    export_case("garbage-onnx", ["{d}/garbage.onnx"], "garbage.onnx", "not a valid ONNX file"),
    export_case("state-dict", ["{d}/state_dict.pt", "--input-shape", "8"], "state_dict"),
    export_case("state-dict-with-calib", ["{d}/state_dict.pt"] + CALIB, "state_dict"),
    export_case("pickle-without-trust", ["{d}/pickled.pt", "--input-shape", "8"], "--trust-pickle"),
    export_case("unsupported-op-torch", ["{d}/floor.pt", "--input-shape", "8"], "Floor", "Supported ONNX ops"),
    export_case("unsupported-op-onnx", ["{d}/erf.onnx"], "Erf", "the_erf"),
    export_case("custom-domain-op", ["{d}/custom.onnx"], "Frobnicate", "frob"),
    export_case("dynamic-feature-axis", ["{d}/dynamic.onnx"], "dynamic.onnx", "[N, features]", "--input-shape"),
    export_case("gemm-empty-output", ["{d}/empty_gemm.onnx"], "empty_gemm.onnx", "'fc_empty'", "empty output"),
    export_case("onnxruntime-cannot-run-it", ["{d}/ceil_pool.onnx"], "ceil_pool.onnx", "onnxruntime",
                "cannot run this model", "Gemm"),
    export_case("no-input-shape", TINY, "tiny.pt", "--input-shape"),
    export_case("bad-input-shape", TINY + ["--input-shape", "a,b"], "--input-shape"),
    export_case("wrong-input-shape", TINY + ["--input-shape", "3,5"], "tiny.pt", "(3, 5)"),
    export_case("streaming-without-time-axis", TINY + ["--input-shape", "8", "--streaming"], "--streaming", "(8,)",
                "(C, time, W)"),
    # weights
    export_case("nan-weight", ["{d}/nan_weight.pt", "--input-shape", "8"], "fc2", "NaN"),
    export_case("inf-weight", ["{d}/inf_weight.pt", "--input-shape", "8"], "fc2", "inf"),
    export_case("huge-weight", ["{d}/huge_weight.pt", "--input-shape", "8"], "fc2", "1e+30", "[1, 3]"),
    Case("huge-weight-inspect", ["inspect", "{d}/huge_weight.pt", "--input-shape", "8"], ("fc2", "1e+30")),
    # calibration data
    export_case("calib-missing", TINY + ["--calib", "{d}/nope.npy"], "nope.npy"),
    export_case("calib-garbage", TINY + ["--calib", "{d}/garbage.npy"], "garbage.npy"),
    export_case("calib-wrong-shape", TINY + ["--input-shape", "8", "--calib", "{d}/wrong_shape.npy"],
                "wrong_shape.npy", "(4, 7)"),
    export_case("calib-implies-wrong-shape", TINY + ["--calib", "{d}/wrong_shape.npy"], "wrong_shape.npy", "(4, 7)"),
    export_case("calib-rank3", TINY + ["--calib", "{d}/rank3.npy"], "rank3.npy", "(4, 2)", "RuntimeError",
                max_lines=3),  # PyTorch's message carries a graph dump
    export_case("calib-nan", TINY + ["--calib", "{d}/nan.npy"], "nan.npy", "NaN"),
    export_case("calib-inf", TINY + ["--calib", "{d}/inf.npy"], "inf.npy", "inf"),
    export_case("calib-integers", TINY + ["--calib", "{d}/ints.npy"], "ints.npy", "floating point"),
    export_case("calib-empty", TINY + ["--calib", "{d}/empty.npy"], "empty.npy", "no values"),
    export_case("val-wrong-shape", TINY + CALIB + ["--val", "{d}/wrong_shape.npy"], "wrong_shape.npy",
                "validation inputs"),
    # options out of range or naming layers that do not exist
    export_case("bits-9", TINY + CALIB + ["--bits", "9"], "--bits 9"),
    export_case("bits-1", TINY + CALIB + ["--bits", "1"], "--bits 1"),
    export_case("bits-text", TINY + CALIB + ["--bits", "eight"], "--bits", "eight"),
    export_case("bits-unknown-layer", TINY + CALIB + ["--bits", "nolayer=4"], "nolayer", "fc1"),
    export_case("rank-0", TINY + CALIB + ["--rank", "0"], "--rank 0"),
    export_case("rank-negative", TINY + CALIB + ["--rank", "-3"], "--rank", "-3"),
    export_case("rank-unknown-layer", TINY + CALIB + ["--rank", "nolayer=2"], "nolayer", "fc1"),
    export_case("energy-above-1", TINY + CALIB + ["--energy", "1.5"], "--energy", "1.5"),
    export_case("energy-0", TINY + CALIB + ["--energy", "0"], "--energy"),
    export_case("energy-nan", TINY + CALIB + ["--energy", "nan"], "--energy"),
    export_case("act-bits-12", TINY + CALIB + ["--act-bits", "12"], "--act-bits", "12"),
    export_case("act-bits-unknown-layer", TINY + CALIB + ["--act-bits", "nolayer=16"], "nolayer", "fc1"),
    export_case("prune-unknown-layer", TINY + CALIB + ["--prune", "nolayer=0.5"], "nolayer", "fc1"),
    export_case("prune-share-above-1", TINY + CALIB + ["--prune", "fc1=1.5"], "fc1", "1.5"),
    export_case("vectors-0", TINY + CALIB + ["--vectors", "0"], "--vectors 0"),
    export_case("vectors-absurd", TINY + CALIB + ["--vectors", "1000000000000"], "--vectors 1000000000000",
                "1 to 65,536"),
    export_case("name-taken", TINY + CALIB + ["--name", "ec_fixed"], "--name ec_fixed", "model_ec_fixed"),
    export_case("patch-budget-negative", TINY + CALIB + ["--patch-budget", "-1"], "--patch-budget"),
    # output paths
    Case("output-is-a-file", E + TINY + CALIB + ["-o", "{d}/a_file"], ("a_file", "not a directory")),
    Case("output-is-foreign", E + TINY + CALIB + ["-o", "{d}/foreign"], ("foreign", "not an edgecompile project")),
    Case("output-below-a-file", E + TINY + CALIB + ["-o", "{d}/a_file/out"], ("a_file",)),
    # verify
    Case("verify-foreign", ["verify", "{d}/foreign"], ("foreign", "not an edgecompile project")),
    Case("verify-missing", ["verify", "{d}/nowhere"], ("nowhere",)),
    Case("verify-sentinel-is-no-project", ["verify", "{out}"], ("{out}",)),
    Case("verify-wrong-size-inputs", ["verify", "{d}/project", "--inputs", "{d}/wrong_shape.npy"],
         ("wrong_shape.npy", "(4, 7)")),
    Case("verify-empty-inputs", ["verify", "{d}/project", "--inputs", "{d}/empty.npy"], ("empty.npy", "no values")),
    Case("verify-count-0", ["verify", "{d}/project", "--count", "0"], ("--count",)),
    Case("verify-count-too-many", ["verify", "{d}/project", "--count", "99"], ("--count 99", "4 inputs")),
    Case("verify-truncated-vectors", ["verify", "{d}/truncated_project"], ("inputs.bin", "multiple")),
    Case("verify-unknown-target", ["verify", "{d}/project", "--target", "qemu-z80"], ("qemu-z80", "qemu-m4")),
    Case("verify-on-a-board", ["verify", "{d}/project", "--target", "nucleo-f446re"], ("nucleo-f446re", "board")),
    Case("verify-sanitize-on-qemu", ["verify", "{d}/project", "--target", "qemu-m4", "--sanitize"],
         ("--sanitize", "host")),
    # build, bench, fit
    Case("build-unknown-board", ["build", "{d}/project", "--target", "nucleo-nope"], ("nucleo-nope", "nucleo-f446re")),
    Case("build-foreign", ["build", "{d}/foreign", "--target", "host"], ("foreign", "not an edgecompile project")),
    Case("build-too-big-for-board", ["build", "{d}/big_project", "--target", "nucleo-g071rb"],
         ("nucleo-g071rb", "does not fit", "FLASH"), tools=("arm-none-eabi-gcc",)),
    Case("bench-samples-0", ["bench", "{d}/project", "--samples", "0"], ("--samples",)),
    Case("bench-samples-too-many", ["bench", "{d}/project", "--samples", "9"], ("--samples 9", "4 test vectors")),
    Case("bench-on-host", ["bench", "{d}/project", "--target", "host"], ("host",)),
    Case("fit-unknown-board", ["fit", "{d}/tiny.pt", "--board", "nucleo-nope", "--calib", "{d}/calib.npy", "--val",
                               "{d}/calib.npy"] + OUT, ("nucleo-nope",)),
    Case("fit-too-big-for-board", ["fit", "{d}/wide_input.pt", "--board", "nucleo-g071rb", "--calib",
                                   "{d}/wide_input.npy", "--val", "{d}/wide_input.npy"] + OUT,
         ("nucleo-g071rb", "40,004 B", "more RAM")),
    Case("fit-budget-too-small", ["fit", "{d}/tiny.pt", "--flash", "10", "--calib", "{d}/calib.npy", "--val",
                                  "{d}/calib.npy", "--jobs", "1"] + OUT, ("no configuration fits", "10 B of flash")),
    Case("fit-bad-size", ["fit", "{d}/tiny.pt", "--ram", "lots", "--calib", "{d}/calib.npy", "--val",
                          "{d}/calib.npy"] + OUT, ("--ram", "lots")),
]


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run_cli(args, in_subprocess):
    if in_subprocess:
        proc = subprocess.run([sys.executable, "-m", "edgecompile.cli", *args], capture_output=True, text=True)
        return proc.returncode, proc.stdout + proc.stderr
    r = CliRunner().invoke(cli, args)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        import traceback

        raise AssertionError("crash:\n" + "".join(traceback.format_exception(r.exception)))
    return r.exit_code, r.output


def test_the_table_is_big_enough():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.slow  # (about 20 s for the table)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, world, tmp_path):
    if case.tools:
        require_tool(*case.tools)
    out = tmp_path / "existing"  # a previous export the user keeps working with, and a file of theirs
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / "keep.txt").write_text("mine")
    before = snapshot(out)
    foreign = snapshot(world / "foreign")
    fill = {"{d}": str(world), "{out}": str(out)}

    def expand(text):
        for k, v in fill.items():
            text = text.replace(k, v)
        return text

    code, output = run_cli([expand(str(a)) for a in case.args], case.subprocess)
    assert code != 0, output
    assert "Traceback" not in output, output
    assert "error: " in output.lower(), output
    for fragment in case.expect:
        assert expand(fragment) in output, (fragment, output)
    if case.max_lines is not None:
        assert len(output.strip().splitlines()) <= case.max_lines, output
    assert snapshot(out) == before
    assert snapshot(world / "foreign") == foreign
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]

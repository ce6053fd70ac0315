"""Every command through click's test runner.  The bad inputs, each with the message it must
give, are the table in test_hostile_inputs.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgecompile.cli import cli
from conftest import require_tool, save_torchscript
from models_for_tests import WideMLP


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_clean_error(result, *fragments):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ") or "\nerror: " in result.output, result.output
    for f in fragments:
        assert f in result.output, (f, result.output)


@pytest.fixture(scope="module")
def mlp_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    path = save_torchscript(WideMLP(), d / "mlp.pt")
    np.save(d / "calib.npy", np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32))
    return d, path


def test_help_and_version():
    assert run("--help").exit_code == 0
    assert "export" in run("--help").output
    assert run("--version").exit_code == 0


@pytest.mark.slow
def test_export_verify_inspect(mlp_files, tmp_path):
    require_tool("gcc", "make")
    d, model = mlp_files
    out = tmp_path / "out"
    r = run("export", model, "--calib", d / "calib.npy", "-o", out, "--rank", 8, "-q", "--vectors", 64)
    assert r.exit_code == 0, r.output
    for col in ("layer", "MACs", "flash B", "RAM B", "Q-format", "SQNR dB"):
        assert col in r.output
    assert "layer-by-layer bound" in r.output and "top-1 agreement" in r.output
    for f in ("Makefile", "manifest.json", "weights.npz", "report.md", "src/mlp.c", "src/mlp.h",
              "vectors/inputs.bin", "vectors/expected.bin", "runtime/ec_fixed.h", "runtime/ec_linear_fast.c"):
        assert (out / f).is_file(), f
    assert not (out / "runtime" / "ec_conv2d.c").exists()  # only the kernels it needs
    header = (out / "src" / "mlp.h").read_text()
    for macro in ("MLP_INPUT_SIZE 64", "MLP_OUTPUT_SIZE 30", "MLP_INPUT_FRAC_BITS", "MLP_OUTPUT_FRAC_BITS",
                  "MLP_ARENA_SIZE", "void mlp_run(const int8_t *input, int16_t *output);"):
        assert macro in header
    r = run("verify", out)
    assert r.exit_code == 0 and "bit-exact: 64/64" in r.output
    r = run("verify", out, "--count", 10, "--inputs", d / "calib.npy")
    assert r.exit_code == 0 and "bit-exact: 10/10" in r.output
    r = run("inspect", model, "--input-shape", "64")
    assert r.exit_code == 0 and "layers.0" in r.output and "MACs" in r.output


@pytest.mark.slow
def test_generated_project_builds_and_tests_with_make_alone(mlp_files, tmp_path):
    require_tool("gcc", "make")
    d, model = mlp_files
    out = tmp_path / "out"
    assert run("export", model, "--calib", d / "calib.npy", "-o", out, "-q", "--vectors", 16).exit_code == 0
    proc = subprocess.run(["make", "-C", str(out), "test"], capture_output=True, text=True)
    assert proc.returncode == 0 and "bit-exact" in proc.stdout
    proc = subprocess.run(["make", "-C", str(out), "TARGET=bogus"], capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown TARGET 'bogus'" in proc.stderr and "qemu-m4" in proc.stderr


@pytest.mark.slow
def test_make_builds_the_kernels_side_by_side_and_follows_the_flags(mlp_files, tmp_path):
    """One object per source file, so `make -j` compiles them at once; a second make compiles nothing;
    other flags or a changed runtime header compile them again (no build links objects made with
    other flags), and the library builds from the same kernel objects."""
    require_tool("gcc", "make")
    d, model = mlp_files
    out = tmp_path / "out"
    assert run("export", model, "--calib", d / "calib.npy", "-o", out, "-q", "--vectors", 8).exit_code == 0

    def make(*args, goal="all"):
        proc = subprocess.run(["make", "-C", str(out), "--no-print-directory", "-j2", *args, goal],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout.count(" -c runtime/"), "-o build/host/model_test " in proc.stdout

    kernels = len(list((out / "runtime").glob("*.c")))
    assert kernels >= 2
    assert make() == (kernels, True)
    assert make() == (0, False)
    assert make("EXTRA_CFLAGS=-DEC_UNUSED_FLAG") == (kernels, True)
    assert "-DEC_UNUSED_FLAG" in (out / "build/host/flags.txt").read_text()
    assert make("EXTRA_CFLAGS=-DEC_UNUSED_FLAG") == (0, False)
    header = out / "runtime" / "ec_fixed.h"
    later = max(o.stat().st_mtime for o in (out / "build/host/kernels").glob("*.o")) + 1  # newer than them
    os.utime(header, (later, later))
    assert make("EXTRA_CFLAGS=-DEC_UNUSED_FLAG") == (kernels, True)
    assert make() == (kernels, True)  # back to the plain flags: compiled again, not the -D objects linked
    proc = subprocess.run(["make", "-C", str(out), "-j2", "test"], capture_output=True, text=True)
    assert proc.returncode == 0 and "bit-exact" in proc.stdout
    make(goal="lib")
    assert (out / "build/host/libmlp.a").stat().st_size > 0


@pytest.mark.parametrize("version,synced", [("GNU Make 4.3\n", True), ("GNU Make 3.81\n", False), ("", False)])
def test_make_runs_on_every_core_and_keeps_job_output_whole_where_it_can(monkeypatch, version, synced):
    from edgecompile import verify

    monkeypatch.setattr(verify.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, version, ""))
    verify.make_command.cache_clear()
    try:
        args = verify.make_command()
    finally:
        verify.make_command.cache_clear()
    assert args[0] == "make" and f"-j{os.cpu_count()}" in args
    assert ("--output-sync=target" in args) == synced  # macOS's make 3.81 has no --output-sync


@pytest.mark.slow
def test_verify_detects_a_tampered_binary(mlp_files, tmp_path):
    require_tool("gcc", "make")
    d, model = mlp_files
    out = tmp_path / "out"
    assert run("export", model, "--calib", d / "calib.npy", "-o", out, "-q", "--vectors", 8).exit_code == 0
    src = out / "src" / "mlp.c"
    text = src.read_text()
    # change the output layer's requantization shift by one: every output roughly doubles
    marker = "layers_2_shift[1] = {\n    "
    i = text.index(marker) + len(marker)
    j = text.index("\n", i)
    src.write_text(text[:i] + str(int(text[i:j]) - 1) + text[j:])
    r = CliRunner().invoke(cli, ["verify", str(out)])
    assert r.exit_code == 1
    assert "bit-exact:" in r.output and "first mismatch: sample" in r.output


@pytest.mark.slow
def test_file_names_that_the_project_uses_get_a_prefix(mlp_files, tmp_path):
    require_tool("gcc", "make")
    d, model = mlp_files
    clash = tmp_path / "ec_fixed.pt"  # would shadow runtime/ec_fixed.h
    clash.write_bytes(model.read_bytes())
    r = run("export", clash, "--calib", d / "calib.npy", "-o", tmp_path / "out", "-q", "--vectors", 8)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "src" / "model_ec_fixed.c").is_file()
    r = run("verify", tmp_path / "out")
    assert r.exit_code == 0 and "bit-exact: 8/8" in r.output, r.output


@pytest.mark.slow
def test_failed_export_keeps_the_previous_project(mlp_files, tmp_path):
    d, model = mlp_files
    out = tmp_path / "out"
    assert run("export", model, "--calib", d / "calib.npy", "-o", out, "-q", "--vectors", 4).exit_code == 0
    before = (out / "src" / "mlp.c").read_text()
    np.save(tmp_path / "nan.npy", np.full((2, 64), np.nan, dtype=np.float32))
    assert_clean_error(run("export", model, "--calib", tmp_path / "nan.npy", "-o", out), "NaN")
    assert (out / "src" / "mlp.c").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_refused_untouched(tmp_path, args, *fragments, subprocess_run=False):
    """The export fails cleanly twice: into a new folder (not left behind) and over an existing project
    (left as it was)."""
    existing = tmp_path / "existing"
    existing.mkdir(exist_ok=True)
    (existing / "manifest.json").write_text("{}")
    (existing / "keep.txt").write_text("previous export")
    before = snapshot(existing)
    for out in (tmp_path / "new", existing):
        if subprocess_run:
            proc = subprocess.run([sys.executable, "-m", "edgecompile.cli", *map(str, args), "-o", str(out)],
                                  capture_output=True, text=True)
            output, code = proc.stdout + proc.stderr, proc.returncode
            assert code != 0 and "Traceback" not in output and "\nerror: " in "\n" + output, output
            for f in fragments:
                assert f in output, (f, output)
        else:
            assert_clean_error(run(*args, "-o", out), *fragments)
    assert not (tmp_path / "new").exists()
    assert snapshot(existing) == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_targets_lists_every_target():
    from edgecompile.targets import list_targets

    r = run("targets")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["target", "kind", "core", "flash", "RAM", "description"]
    for name in list_targets():
        assert any(line.startswith(name + " ") for line in lines), name
    m4 = next(line for line in lines if line.startswith("qemu-m4 "))
    assert m4.split()[:7] == ["qemu-m4", "qemu", "cortex-m4", "4", "MiB", "4", "MiB"], m4
    f446 = next(line for line in lines if line.startswith("nucleo-f446re "))
    assert "512 KiB  128 KiB" in f446 and " board " in f446
    rows = {t["name"]: t for t in json.loads(run("targets", "--json").stdout)}
    assert sorted(rows) == list_targets()
    assert rows["host"]["kind"] == "host" and rows["host"]["flash_bytes"] is None
    assert rows["nucleo-f446re"]["ram_bytes"] == 128 * 1024 and rows["qemu-m55"]["core"] == "cortex-m55"


def test_every_command_help_ends_with_an_example():
    assert len(cli.commands) >= 7
    for name in cli.commands:
        r = run(name, "--help")
        assert r.exit_code == 0, r.output
        last = r.output.strip().splitlines()[-1].strip()
        assert last.startswith(f"Example: edgecompile {name} "), (name, last)


@pytest.mark.slow
def test_json_is_the_result_alone_on_stdout(mlp_files, tmp_path):
    require_tool("gcc", "make")

    d, model = mlp_files
    out = tmp_path / "out"
    r = run("export", model, "--calib", d / "calib.npy", "-o", out, "--vectors", 8, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)  # stage lines and progress went to stderr
    assert summary["vectors"] == 8 and summary["eval_data"] == "the 64 calibration samples"
    r = run("verify", out, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"target": "host", "sanitize": False, "total": 8, "exact": 8, "bit_exact": True,
                                    "first_mismatch": None}
    r = run("inspect", model, "--input-shape", "64", "--rank", 8, "--json")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert [x["name"] for x in shown["layers"]][:2] == ["layers.0.V", "layers.0.U"]
    assert shown["macs"] == sum(x["macs"] for x in shown["layers"]) and shown["factorization"][0]["factorized"]
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", rng.standard_normal((32, 64)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 30, 32))
    r = run("explore", model, "--calib", d / "calib.npy", "--val", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
            "--ranks", 4, "--energies", 0.9, "-o", tmp_path / "ex", "--json")
    assert r.exit_code == 0, r.output
    swept = json.loads(r.stdout)
    assert [p["label"] for p in swept["points"]] == ["dense b8", "rank 4 b8", "beta 0.9 b8"]
    assert swept["baseline_weight_bytes"] == swept["points"][0]["weight_bytes"]


@pytest.mark.slow
def test_export_says_which_samples_it_measured_on(mlp_files, tmp_path):
    d, model = mlp_files
    r = run("export", model, "--calib", d / "calib.npy", "-o", tmp_path / "a", "-q", "--vectors", 4)
    assert r.exit_code == 0, r.output
    assert "integer vs float on the 64 calibration samples:" in r.stdout
    report = (tmp_path / "a" / "report.md").read_text()
    assert "on the 64 calibration samples" in report and "--val FILE" in report
    r = run("export", model, "--input-shape", 64, "-o", tmp_path / "b", "-q", "--vectors", 4)
    assert "integer vs float on 256 synthetic N(0,1) inputs:" in r.stdout
    val = tmp_path / "held_out.npy"
    np.save(val, np.random.default_rng(5).standard_normal((300, 64)).astype(np.float32))
    r = run("export", model, "--calib", d / "calib.npy", "--val", val, "-o", tmp_path / "c", "-q", "--vectors", 4)
    assert f"integer vs float on the first 256 samples of {val} (--val):" in r.stdout
    calib_sqnr = json.loads((tmp_path / "a" / "summary.json").read_text())["output_sqnr_db"]
    val_summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert val_summary["eval_samples"] == 256 and val_summary["output_sqnr_db"] != calib_sqnr
    np.save(tmp_path / "narrow.npy", np.zeros((3, 63), dtype=np.float32))
    assert_refused_untouched(tmp_path, ["export", model, "--calib", d / "calib.npy", "--val", tmp_path / "narrow.npy"],
                             "narrow.npy", "validation inputs")

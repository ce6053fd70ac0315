"""`edgecompile fit`: budgets, the search's pieces, and the digits LeNet squeezed into 12 KB
of weights with its accuracy kept, bit-exact, and reproducible by `export`."""
from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import require_tool
from edgecompile.cli import cli
from edgecompile.errors import EdgeCompileError
from edgecompile.fit import (DENSE, Budget, Config, LayerOptions, Point, Setting, board_budget, dominated,
                             greedy_walk, mark_pareto, parse_size)
from edgecompile.passes.prune import parse_prune


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_sizes_parse_with_suffixes_and_refuse_nonsense():
    assert parse_size("12k", "--flash") == 12 * 1024
    assert parse_size("1.5M", "--ram") == 1536 * 1024
    assert parse_size("4096", "--ram") == 4096 and parse_size("8KB", "--ram") == 8192
    assert parse_size(None, "--ram") is None
    for bad in ("12 bytes", "-3k", "0", "k"):
        with pytest.raises(EdgeCompileError, match="--flash"):
            parse_size(bad, "--flash")


def test_board_budget_subtracts_the_stated_reserves():
    b = board_budget("nucleo-g071rb", io_bytes=800)
    assert b.flash == 128 * 1024 - 16 * 1024
    assert b.ram == 36 * 1024 - 4096 - 512 - 800
    assert "nucleo-g071rb" in b.source and "stack" in b.source
    with pytest.raises(EdgeCompileError, match="--board host"):
        board_budget("host", 0)
    with pytest.raises(EdgeCompileError, match="--board no-such-board"):
        board_budget("no-such-board", 0)


def test_prune_shares_parse():
    assert parse_prune(("fc1=0.5,conv2=0.75", "fc3=0")) == {"fc1": 0.5, "conv2": 0.75, "fc3": 0.0}
    for bad in ("fc1", "fc1=1", "fc1=-0.1", "=0.5", "fc1=half"):
        with pytest.raises(EdgeCompileError, match="--prune"):
            parse_prune(bad)


def test_dominated_settings_are_dropped():
    a, b, c = Setting(bits=4), Setting(bits=2), Setting(prune=0.5)
    options = {DENSE: (100, 0.01), a: (50, 0.02), b: (25, 0.5), c: (60, 0.03)}
    assert dominated(options) == {c}  # more bytes and more noise than 4 bits


def test_greedy_walk_saves_bytes_at_the_least_noise_per_byte():
    base = 0.001
    big = LayerOptions("big", 1000, {DENSE: (1000, base), Setting(bits=4): (500, base + 0.010),
                                     Setting(bits=2): (250, base + 0.200)})
    small = LayerOptions("small", 200, {DENSE: (200, base), Setting(bits=4): (100, base + 0.010)})
    steps = greedy_walk([big, small], 40, base)
    assert [s.est_bytes for s in steps] == [1240, 740, 640, 390]
    assert [s.move for s in steps[1:]] == ["big -> 4b", "small -> 4b", "big -> 2b"]
    assert steps[-1].est_noise == pytest.approx(base + 0.200 + 0.010)
    assert steps[2].config.settings == {"big": Setting(bits=4), "small": Setting(bits=4)}


def test_pareto_front_and_budget_check():
    def p(b, acc):
        return Point(f"{b}", b, 100, 20.0, acc, True, {}, 0.1, "8")

    pts = [p(1000, 0.99), p(500, 0.98), p(600, 0.97), p(200, 0.90), p(500, 0.98)]
    mark_pareto(pts)
    assert [q.pareto for q in pts] == [True, True, False, True, True]  # equal points both stay
    assert Budget(12288, None).fits(12288, 10**9) and not Budget(12288, 4096).fits(100, 4097)


def test_config_becomes_export_options_and_a_command():
    cfg = Config({"fc1": Setting(rank=14, bits=4), "fc2": Setting(prune=0.5), "conv1": DENSE}, 0.25)
    o = cfg.export_options()
    assert o["bits"] == ("8", "fc1=4") and o["rank"] == "fc1=14" and o["prune"] == ("fc2=0.5",)
    assert o["patch_budget"] == 0.25
    cmd = cfg.command("m.pt2", "c.npy", "out", None, [])
    assert "--bits=fc1=4" in cmd and "--rank=fc1=14" in cmd and "--prune=fc2=0.5" in cmd
    assert "--patch-budget=25" in cmd and cmd.endswith("-o out")


def test_budget_options_are_checked(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
    r = run("fit", tmp_path / "m.pt2", "--calib", tmp_path / "x.npy", "--val", tmp_path / "x.npy", "-o", tmp_path / "o")
    assert r.exit_code != 0 and "give a budget" in r.output and "Traceback" not in r.output
    r = run("fit", tmp_path / "m.pt2", "--calib", tmp_path / "x.npy", "--val", tmp_path / "x.npy", "-o",
            tmp_path / "o", "--board", "nucleo-g071rb", "--flash", "12k")
    assert r.exit_code != 0 and "not both" in r.output
    r = run("fit", tmp_path / "m.pt2", "--calib", tmp_path / "x.npy", "--val", tmp_path / "x.npy", "-o",
            tmp_path / "o", "--flash", "twelve")
    assert r.exit_code != 0 and "--flash twelve" in r.output
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def lenet_fit(digits_lenet, tmp_path_factory):
    """The trained digits LeNet fitted into 12 KB of weights (two worker processes)."""
    d = digits_lenet
    out = tmp_path_factory.mktemp("fit") / "lenet12k"
    r = run("fit", d["model"], "--calib", d["calib"], "--val", d["test_x"], "--labels", d["test_y"],
            "--flash", "12k", "--jobs", 2, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout), out, d


@pytest.mark.slow
def test_lenet_fits_12k_within_one_and_a_half_points_of_float(lenet_fit):
    result, out, d = lenet_fit
    chosen = result["chosen"]
    assert chosen["weight_bytes"] <= 12 * 1024 and chosen["fits"]
    assert chosen["accuracy"] >= result["float_accuracy"] - 0.015
    # the chosen point is measured, on the front, and far below the dense model
    points = result["points"]
    dense = next(p for p in points if p["label"].startswith("step 0"))
    assert dense["weight_bytes"] > 4 * chosen["weight_bytes"]
    assert chosen["pareto"] and sum(p["chosen"] for p in points) == 1
    assert all(p["fits"] == (p["weight_bytes"] <= 12 * 1024) for p in points)
    for f in ("fit.md", "fit.json", "fit_front.png"):
        assert (out / f).stat().st_size > 0
    # the accuracy figure is the integer model's on the labels, recomputed here
    from edgecompile import simulate
    from edgecompile.manifest import read_manifest

    graph, _ = read_manifest(out)
    x, y = np.load(d["test_x"]), np.load(d["test_y"])
    pred = simulate.run_dequantized(graph, x).reshape(len(x), -1).argmax(1)
    assert float(np.mean(pred == y)) == pytest.approx(chosen["accuracy"])


@pytest.mark.qemu
def test_fitted_project_is_bit_exact_on_host_and_qemu_and_builds_for_a_board(lenet_fit):
    require_tool("gcc", "make", "arm-none-eabi-gcc", "qemu-system-arm")
    _, out, _ = lenet_fit
    for target in ("host", "qemu-m4"):
        r = run("verify", out, "--target", target, "--json")
        assert r.exit_code == 0, r.output
        v = json.loads(r.stdout)
        assert v["bit_exact"] and v["total"] == 256, (target, v)
    r = run("build", out, "--target", "nucleo-g071rb")
    assert r.exit_code == 0 and "nucleo-g071rb: flash" in r.output, r.output


@pytest.mark.slow
def test_recorded_command_reproduces_the_export(lenet_fit, tmp_path):
    result, out, _ = lenet_fit
    args = shlex.split(result["export_command"])
    assert args[:2] == ["edgecompile", "export"]
    args[args.index("-o") + 1] = str(tmp_path / "again")
    r = run(*args[1:], "-q")
    assert r.exit_code == 0, r.output
    sources = sorted(p.name for p in (out / "src").iterdir())
    assert sources and sources == sorted(p.name for p in (tmp_path / "again" / "src").iterdir())
    for name in sources:
        assert (tmp_path / "again" / "src" / name).read_bytes() == (out / "src" / name).read_bytes(), name


@pytest.mark.slow
def test_nothing_fits_says_what_was_reached(digits_lenet, tmp_path):
    d = digits_lenet
    out = tmp_path / "none"
    r = run("fit", d["model"], "--calib", d["calib"], "--val", d["test_x"], "--labels", d["test_y"],
            "--flash", "1k", "--jobs", 1, "-o", out)
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "no configuration fits" in r.output and "smallest reached" in r.output and "fc1" in r.output
    assert not out.exists()


@pytest.fixture(scope="module")
def wide_mlp(tmp_path_factory):
    """A random-weight MLP (64 -> 200 -> 150 -> 30) with separate calibration and validation inputs."""
    import torch

    from conftest import save_torchscript
    from models_for_tests import WideMLP

    d = tmp_path_factory.mktemp("fit_mlp")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    np.save(d / "calib.npy", rng.standard_normal((64, 64)).astype(np.float32))
    np.save(d / "val.npy", rng.standard_normal((128, 64)).astype(np.float32))
    return save_torchscript(WideMLP(), d / "mlp.pt"), d


@pytest.mark.slow
def test_board_budget_without_labels_maximizes_sqnr(wide_mlp, tmp_path):
    model, d = wide_mlp
    r = run("fit", model, "--calib", d / "calib.npy", "--val", d / "val.npy", "--board", "nucleo-g071rb",
            "--jobs", 1, "-q", "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["budget"]["flash"] == 112 * 1024 and result["float_accuracy"] is None
    chosen = result["chosen"]
    # 48 KB of dense int8 weights fit the board: nothing is given up
    assert chosen["label"].startswith("step 0") and chosen["settings"] == {} and chosen["accuracy"] is None
    assert chosen["sqnr_db"] == max(p["sqnr_db"] for p in result["points"])


@pytest.mark.slow
def test_a_tight_ram_budget_is_refused_naming_the_arena(wide_mlp, tmp_path):
    model, d = wide_mlp
    r = run("fit", model, "--calib", d / "calib.npy", "--val", d / "val.npy", "--flash", "64k", "--ram", "100",
            "--jobs", 1, "-o", tmp_path / "out")
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "no memory plan fits the arena in 100 B of RAM" in r.output
    assert not (tmp_path / "out").exists()


def test_finetune_needs_training_data(wide_mlp, tmp_path):
    model, d = wide_mlp
    r = run("fit", model, "--calib", d / "calib.npy", "--val", d / "val.npy", "--flash", "8k", "--finetune", 2,
            "-o", tmp_path / "out")
    assert r.exit_code != 0 and "--finetune needs training data" in r.output


@pytest.mark.slow
def test_finetune_keeps_the_better_model_and_the_c_equals_it(digits_lenet, tmp_path):
    """QAT on the chosen configuration of a 6 KB LeNet: the project holds whichever of the
    fine-tuned and the post-training model scores better on the labels, bit-exact."""
    from datasets import digits_28x28

    require_tool("gcc", "make")
    d = digits_lenet
    x_train, y_train, _, _ = digits_28x28()
    np.save(tmp_path / "tx.npy", x_train)
    np.save(tmp_path / "ty.npy", y_train)
    out = tmp_path / "out"
    r = run("fit", d["model"], "--calib", d["calib"], "--val", d["test_x"], "--labels", d["test_y"],
            "--flash", "6k", "--finetune", 1, "--train", tmp_path / "tx.npy", "--train-labels", tmp_path / "ty.npy",
            "-o", out, "--json", "-q")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    f = result["finetune"]
    assert f["epochs"] == 1 and len(f["losses"]) == 1 and np.isfinite(f["losses"][0])
    qat_point = next(p for p in result["points"] if p["label"].startswith("chosen + QAT"))
    assert qat_point["chosen"] == f["kept"] and qat_point["accuracy"] == f["accuracy"]
    chosen = result["chosen"]
    assert chosen["weight_bytes"] <= 6 * 1024
    from edgecompile import simulate
    from edgecompile.manifest import read_manifest

    graph, _ = read_manifest(out)
    x, y = np.load(d["test_x"]), np.load(d["test_y"])
    assert float(np.mean(simulate.run_dequantized(graph, x).reshape(len(x), -1).argmax(1) == y)) == \
        pytest.approx(chosen["accuracy"])
    v = run("verify", out, "--json")
    assert v.exit_code == 0 and json.loads(v.stdout)["bit_exact"]

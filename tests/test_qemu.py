"""The generated C on Cortex-M: bit-exact under QEMU on every emulated core, exact and
repeatable instruction counts, board images that build (and are refused when too big)."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from edgecompile.bench import bench, build
from edgecompile.cli import cli
from edgecompile.errors import EdgeCompileError
from edgecompile.export import ExportSettings, export
from edgecompile.manifest import read_manifest
from edgecompile.targets import list_targets, load_target
from edgecompile.verify import verify
from conftest import on_every_core, require_tool

pytestmark = pytest.mark.qemu  # every test here needs qemu-system-arm (the autouse _tools)

QEMU_TARGETS = ["qemu-m0plus", "qemu-m3", "qemu-m4", "qemu-m7", "qemu-m33", "qemu-m55"]
BOARDS = [t for t in list_targets() if load_target(t).kind == "board"]


@pytest.fixture(autouse=True)
def _tools():
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make", "gcc")


@pytest.fixture(scope="module")
def example_projects(digits_lenet, digits_mlp, tmp_path_factory):
    """The digits models, exported every way that changes the C: dense, factorized, packed 4-bit
    weights, sparse weights, 16-bit activations."""
    root = tmp_path_factory.mktemp("qemu")
    projects = {}
    for key, model, options in (("lenet", digits_lenet, {}), ("lenet-rank16", digits_lenet, {"rank": 16}),
                                ("mlp-rank16", digits_mlp, {"rank": 16}),
                                ("lenet-4bit-packed", digits_lenet, {"bits": "4", "sparse": "off"}),
                                ("lenet-sparse", digits_lenet, {"sparse": "on"}),
                                ("lenet-16bit-act", digits_lenet, {"act_bits": "16"})):
        projects[key] = export(ExportSettings(model["model"], root / key, model["calib"], vectors=64,
                                              **options)).out_dir
    return projects


@pytest.mark.parametrize("target", QEMU_TARGETS)
def test_examples_bit_exact_on_every_core(example_projects, target):
    results = on_every_core(lambda project: verify(project, target=target), example_projects.values())
    for name, result in zip(example_projects, results):
        assert result.total == 64 and result.ok, (name, target, result.first_mismatch)


@pytest.fixture(scope="module")
def more_example_projects(tmp_path_factory):
    """The other example models: the efficient-CNN zoo, recurrent classifiers, a pruned (sparse)
    and a 4-bit (packed) LeNet."""
    import cnn_zoo
    from edgecompile.frontend import load_module

    root = tmp_path_factory.mktemp("qemu_more")
    projects = {}
    for name in sorted(cnn_zoo.ZOO):
        files = cnn_zoo.save(name, root / "zoo")
        projects[name] = export(ExportSettings(files["model"], root / name, files["calib"], vectors=64)).out_dir
    import torch

    import rnn
    seqs = np.random.default_rng(0).standard_normal((64, 8, 8)).astype(np.float32)
    for kind in ("fastgrnn-lowrank", "lstm"):
        torch.manual_seed(0)
        model = rnn.Classifier(kind, 8).eval()
        loaded = load_module(model, (8, 8), kind.replace("-", "_"))
        projects[kind] = export(ExportSettings(root / f"{kind}.pt", root / kind, seqs, loaded=loaded,
                                               vectors=64)).out_dir
    return projects


# Cores with room for every example: the microbit's 16 KiB of RAM holds only the small ones, so
# M0+ code runs them on qemu-m0plus-an385 (Armv6-M code on a 4 MiB machine, unaligned accesses trapping).
@pytest.mark.parametrize("target", ["qemu-m0plus-an385", "qemu-m4", "qemu-m7", "qemu-m55", "qemu-m3", "qemu-m33"])
def test_more_examples_bit_exact(more_example_projects, target):
    results = on_every_core(lambda project: verify(project, target=target), more_example_projects.values())
    for name, result in zip(more_example_projects, results):
        assert result.total == 64 and result.ok, (name, target, result.first_mismatch)


def test_examples_on_the_16k_microbit_run_or_are_refused_with_sizes(more_example_projects):
    """qemu-m0plus has 16 KiB of RAM: what fits runs bit-exactly, what does not is refused clearly."""
    ran = 0
    for name, project in more_example_projects.items():
        try:
            result = verify(project, target="qemu-m0plus")
        except EdgeCompileError as exc:
            assert "does not fit qemu-m0plus" in str(exc) and "RAM" in str(exc), (name, str(exc))
            assert "qemu-m0plus-an385" in str(exc)  # where the same M0+ code does run
            continue
        assert result.ok, (name, result.first_mismatch)
        ran += 1
    assert ran >= 2  # the recurrent classifiers are small enough


def test_bench_counts_are_exact_repeatable_and_add_up(example_projects):
    project = example_projects["lenet"]
    first = bench(project, "qemu-m4", samples=3)
    again = bench(project, "qemu-m4", samples=3)
    assert first.bit_exact and first.repeatable
    assert first.per_inference == again.per_inference
    assert [c.instructions for c in first.layers] == [c.instructions for c in again.layers]
    # the layers of the first inference add up to it (each delta includes one marker call)
    assert sum(c.instructions for c in first.layers) == first.per_inference[0]
    # the first layers run in bands of rows (--memory-plan auto): one profiled step
    patches = read_manifest(project)[1]["summary"]["patches"]
    banded = f"{patches['layers'][0]}..{patches['layers'][-1]}"
    rest = [n for n in ["conv1", "max_pool2d", "conv2", "max_pool2d_1", "fc1", "fc2", "fc3"] if n not in patches["layers"]]
    assert [c.name for c in first.layers] == [banded] + rest
    assert first.macs == 205_624
    weights = read_manifest(project)[1]["summary"]["weight_bytes"]
    # the model's flash is its weights plus the code of what the linker kept (the pointwise
    # kernel sits in the same file as the conv kernel LeNet calls, but is not linked, nor counted)
    assert weights + 2_000 < first.model_flash < first.image["flash"]
    assert first.image["flash"] > 60_000  # 60 kB of weights live in flash
    assert first.stack_estimate is not None and 0 < first.stack_estimate < 1024
    d = first.as_dict()
    assert d["unit"].startswith("instructions") and d["instructions_per_mac"] > 0


def test_stack_estimate_follows_calls_across_files(tmp_path):
    """A kernel that calls a helper in another file: the estimate is the deepest path of frames."""
    from edgecompile.bench import CallGraph

    require_tool("gcc")
    (tmp_path / "a.c").write_text("int leaf(int *x, int n);\n"
                                  "int kernel(int *x, int n) { int b[8]; b[n & 7] = n; return leaf(b, n) + b[1]; }\n"
                                  "int run(int n) { int b[2] = {n, n}; return kernel(b, n); }\n")
    (tmp_path / "b.c").write_text("int leaf(int *x, int n) { volatile int big[100]; big[n] = x[0]; return big[3]; }\n")
    graph = CallGraph()
    for name in ("a", "b"):
        subprocess.run(["gcc", "-O1", "-fno-inline", "-fstack-usage", "-fcallgraph-info=su", "-c", f"{name}.c"],
                       cwd=tmp_path, check=True)
        graph.read((tmp_path / f"{name}.ci").read_text())
    assert graph.frames["leaf"] > graph.frames["kernel"] > 0
    assert graph.deepest("run") == graph.frames["run"] + graph.frames["kernel"] + graph.frames["leaf"]
    assert graph.deepest("missing") is None


def test_bench_cli_writes_json(example_projects, tmp_path):
    r = CliRunner().invoke(cli, ["bench", str(example_projects["mlp-rank16"]), "--target", "qemu-m0plus",
                                 "--samples", "2", "--save", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    assert "instr/MAC" in r.output and "instructions per inference" in r.output
    assert json.loads((tmp_path / "b.json").read_text())["samples"] == 2
    r = CliRunner().invoke(cli, ["bench", str(example_projects["mlp-rank16"]), "--target", "qemu-m0plus",
                                 "--samples", "2", "--json"])
    assert r.exit_code == 0, r.output
    figures = json.loads(r.stdout)  # the JSON alone on stdout: the tables and the progress stay out of it
    assert figures["samples"] == 2 and figures["bit_exact"] and figures["unit"].startswith("instructions")
    assert (example_projects["mlp-rank16"] / "bench-qemu-m0plus.json").is_file()


def test_bench_refuses_non_qemu_targets(example_projects):
    with pytest.raises(EdgeCompileError, match="qemu"):
        bench(example_projects["lenet"], "nucleo-f446re")


@pytest.mark.parametrize("board", BOARDS)
def test_board_images_build(example_projects, board):
    result = build(example_projects["lenet-rank16"], board)
    assert {p.suffix for p in result.files} == {".elf", ".bin", ".hex"}
    assert result.sizes["flash"] <= result.flash_limit and result.sizes["ram"] <= result.ram_limit


def test_build_cli_reports_sizes(example_projects):
    r = CliRunner().invoke(cli, ["build", str(example_projects["lenet"]), "--target", "nucleo-f446re"])
    assert r.exit_code == 0, r.output
    assert "model_test.hex" in r.output and "of 524,288 B" in r.output


def test_too_big_for_the_board_is_refused_with_sizes(digits_mlp, tmp_path):
    # the dense MLP has 236 kB of weights; the NUCLEO-G071RB has 128 kB of flash
    project = export(ExportSettings(digits_mlp["model"], tmp_path / "mlp", digits_mlp["calib"], vectors=4)).out_dir
    with pytest.raises(EdgeCompileError) as info:
        build(project, "nucleo-g071rb")
    text = str(info.value)
    assert "does not fit nucleo-g071rb" in text and "FLASH needs" in text and "has 131,072 B" in text


def test_unknown_target_lists_the_valid_ones(example_projects):
    with pytest.raises(EdgeCompileError, match="valid targets: .*qemu-m4"):
        verify(example_projects["lenet"], target="qemu-m9")


def test_linked_vectors_runner_checks_on_the_device(example_projects):
    """The board runner (vectors compiled in, result printed) run on QEMU, where it can be watched."""
    project = example_projects["lenet"]
    proc = subprocess.run(["make", "-s", "-C", str(project), "TARGET=qemu-m4", "BUILD=build/linked",
                           "RUNNER_FLAGS=-DEC_LINKED_VECTORS", "run"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact samples: 4" in proc.stdout + proc.stderr and "of: 4" in proc.stdout + proc.stderr


def test_no_64_bit_division_or_float_in_the_cortex_m_inference_code(example_projects, tmp_path):
    """Compile model + kernels for M0+ and M4 at -Os and -O2; no division helpers beyond 32 bits,
    no soft-float calls, warning-free."""
    project = example_projects["lenet"]
    sources = [project / "src" / "lenet_digits.c"] + sorted((project / "runtime").glob("*.c"))
    for cpu in ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m55"):
        for opt in ("-Os", "-O2"):
            objs = []
            for src in sources:
                obj = tmp_path / f"{cpu}{opt}{src.stem}.o"
                subprocess.run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", opt, "-std=c99", "-Wall", "-Wextra",
                                "-Wpedantic", "-Werror", "-c", f"-I{project / 'runtime'}", str(src), "-o", str(obj)],
                               check=True)
                objs.append(str(obj))
            undefined = subprocess.run(["arm-none-eabi-nm", "-u", *objs], capture_output=True, text=True,
                                       check=True).stdout
            assert "ldivmod" not in undefined and "uldivmod" not in undefined
            assert not any(f in undefined for f in ("__aeabi_f", "__aeabi_d", "malloc", "printf"))

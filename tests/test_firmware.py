"""Firmware integration of the generated C: a caller-provided arena, weights and arena in named
linker sections, models with several inputs and outputs, and two models linked into one program."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgecompile import c_api
from edgecompile.bench import bench
from edgecompile.errors import EdgeCompileError
from edgecompile.export import ExportSettings, export
from edgecompile.frontend import load_module
from edgecompile.verify import verify
from conftest import on_every_core, require_tool, save_torchscript
from models_for_tests import ConvBNNet, WideMLP

# As a user writes them on the make command line (make hands them to the shell, which drops the quotes).
SECTION_FLAGS = ("-DEC_WEIGHTS_SECTION='__attribute__((section(\".ec_weights\")))' "
                 "-DEC_ARENA_SECTION='__attribute__((section(\".ec_arena\")))'")


@pytest.fixture(scope="module")
def convnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("firmware")
    torch.manual_seed(0)
    return save_torchscript(ConvBNNet(), d / "convnet.pt")


@pytest.fixture(scope="module")
def extern_project(convnet, tmp_path_factory):
    out = tmp_path_factory.mktemp("extern") / "out"
    return export(ExportSettings(convnet, out, input_shape=(3, 24, 24), arena="extern", vectors=32)).out_dir


def test_extern_arena_api(extern_project):
    header = (extern_project / "src" / "convnet.h").read_text()
    source = (extern_project / "src" / "convnet.c").read_text()
    assert "void convnet_run(const int8_t *input, int16_t *output, void *arena);" in header
    assert re.search(r"#define CONVNET_ARENA_ALIGN 4\b", header)
    assert int(re.search(r"#define CONVNET_ARENA_SIZE (\d+)", header).group(1)) > 0
    assert "static union" not in source and "ec_arena_storage" not in source  # no arena of its own
    doc = json.loads((extern_project / "manifest.json").read_text())
    assert doc["c_api"]["arena"] == "extern"


@pytest.mark.slow
def test_extern_arena_bit_exact_on_host_with_sanitizers(extern_project):
    require_tool("gcc", "make")
    assert verify(extern_project).ok
    assert verify(extern_project, sanitize=True, count=8).ok


@pytest.mark.qemu
def test_extern_arena_bit_exact_and_benched_on_qemu(extern_project):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    assert verify(extern_project, target="qemu-m4").ok
    result = bench(extern_project, "qemu-m4", samples=2)
    assert result.bit_exact and result.arena > 0


def test_recurrent_cell_uses_the_callers_arena(tmp_path):
    require_tool("gcc", "make")
    from test_recurrent import SeqModel

    torch.manual_seed(0)
    calib = np.random.default_rng(0).standard_normal((64, 6, 8)).astype(np.float32)
    loaded = load_module(SeqModel("FastGRNN").eval(), (6, 8), "cell")
    out = export(ExportSettings(tmp_path / "cell.pt", tmp_path / "out", calib, loaded=loaded, arena="extern",
                                vectors=32)).out_dir
    assert "static union" not in (out / "src" / "cell.c").read_text()
    assert verify(out).ok


def symbol_sections(objdump: str, elf: Path) -> dict[str, str]:
    """Symbol -> the section it lives in, from `objdump -t`."""
    table = subprocess.run([objdump, "-t", str(elf)], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in table.splitlines():
        m = re.match(r"^[0-9a-f]+ .{7} (\S+)\s+[0-9a-f]+\s+(\S+)$", line)
        if m:
            found[m.group(2)] = m.group(1)
    return found


def build_elf(project: Path, target: str, build: str, extra: str = "") -> Path:
    args = ["make", "--no-print-directory", "-C", str(project), f"TARGET={target}", f"BUILD=build/{build}"]
    proc = subprocess.run(args + ([f"EXTRA_CFLAGS={extra}"] if extra else []) + ["all"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return project / "build" / build / ("model_test" if target == "host" else "model_test.elf")


@pytest.mark.parametrize("target,objdump", [("host", "objdump"), ("qemu-m4", "arm-none-eabi-objdump")])
@pytest.mark.parametrize("arena", ["static", "extern"])
@pytest.mark.slow
def test_section_macros_place_weights_and_arena(convnet, tmp_path, target, objdump, arena):
    require_tool("make", objdump, "gcc" if target == "host" else "arm-none-eabi-gcc")
    project = export(ExportSettings(convnet, tmp_path / "out", input_shape=(3, 24, 24), arena=arena,
                                    vectors=4)).out_dir
    arena_symbol = "ec_arena_storage" if arena == "static" else "ec_arena_buffer"
    default = symbol_sections(objdump, build_elf(project, target, "plain"))
    assert default["conv1_weight"] == ".rodata" and default["out_weight"] == ".rodata"
    assert default[arena_symbol] == ".bss"
    placed = symbol_sections(objdump, build_elf(project, target, "sections", SECTION_FLAGS))
    weights = [s for s in default if default[s] == ".rodata" and s.endswith(("_weight", "_bias", "_shift"))]
    assert len(weights) >= 10
    assert all(placed[s] == ".ec_weights" for s in weights), {s: placed[s] for s in weights}
    assert placed[arena_symbol] == ".ec_arena"


def c_rows(values: np.ndarray) -> str:
    return ",\n".join("    {" + ", ".join(str(int(v)) for v in row.reshape(-1)) + "}" for row in values)


TWO_MODELS_MAIN = """\
/* One firmware, two models: each runs on its own test vectors and must give the simulator's outputs. */
#include "alpha.h"
#include "beta.h"
#include "ec_platform.h"

#define COUNT {count}
static const int8_t alpha_in[COUNT][ALPHA_INPUT_SIZE] = {{
{alpha_in}
}};
static const int16_t alpha_expected[COUNT][ALPHA_OUTPUT_SIZE] = {{
{alpha_out}
}};
static const int8_t beta_in[COUNT][BETA_INPUT_SIZE] = {{
{beta_in}
}};
static const int8_t beta_expected[COUNT][BETA_OUTPUT_SIZE] = {{
{beta_out}
}};
static int16_t alpha_y[ALPHA_OUTPUT_SIZE];
static int8_t beta_y[BETA_OUTPUT_SIZE];
static union {{
    int32_t align;
    int8_t bytes[BETA_ARENA_SIZE];
}} beta_arena;

int main(void)
{{
    int k, i, bad = 0;
    ec_platform_init();
    for (k = 0; k < COUNT; ++k) {{
        alpha_run(alpha_in[k], alpha_y);
        beta_run(beta_in[k], beta_y, beta_arena.bytes);
        for (i = 0; i < ALPHA_OUTPUT_SIZE; ++i) {{
            bad += alpha_y[i] != alpha_expected[k][i];
        }}
        for (i = 0; i < BETA_OUTPUT_SIZE; ++i) {{
            bad += beta_y[i] != beta_expected[k][i];
        }}
    }}
    ec_platform_puts(bad == 0 ? "both models bit-exact" : "MISMATCH");
    ec_platform_exit(bad == 0 ? 0 : 1);
    return 0;
}}
"""


@pytest.fixture(scope="module")
def two_models(convnet, tmp_path_factory):
    """Two different models: a convnet with its own static arena and int16 outputs (--output-bits
    auto), and an MLP with the caller's arena and int8 outputs."""
    root = tmp_path_factory.mktemp("two_models")
    torch.manual_seed(1)
    mlp = save_torchscript(WideMLP(), root / "mlp.pt")
    alpha = export(ExportSettings(convnet, root / "alpha", input_shape=(3, 24, 24), name="alpha", vectors=4)).out_dir
    beta = export(ExportSettings(mlp, root / "beta", input_shape=(64,), name="beta", arena="extern", vectors=4,
                                 output_bits=8)).out_dir
    return root, alpha, beta


def combine(root: Path, alpha: Path, beta: Path) -> Path:
    """One firmware project: alpha's, plus beta's model sources and the runtime files alpha lacks."""
    import shutil

    combo = root / "combo"
    shutil.rmtree(combo, ignore_errors=True)
    shutil.copytree(alpha, combo)
    for f in ("beta.h", "beta.c"):
        shutil.copy2(beta / "src" / f, combo / "src" / f)
    for f in (beta / "runtime").iterdir():
        if not (combo / "runtime" / f.name).exists():
            shutil.copy2(f, combo / "runtime" / f.name)

    def vectors(project: Path, name: str):
        size = {"alpha": 3 * 24 * 24, "beta": 64}[name]
        x = np.fromfile(project / "vectors" / "inputs.bin", dtype=np.int8).reshape(-1, size)
        y = np.fromfile(project / "vectors" / "expected.bin", dtype={"alpha": "<i2", "beta": np.int8}[name])
        y = y.reshape(len(x), -1)
        return c_rows(x), c_rows(y)

    (ai, ao), (bi, bo) = vectors(alpha, "alpha"), vectors(beta, "beta")
    (combo / "src" / "runner.c").write_text(TWO_MODELS_MAIN.format(count=4, alpha_in=ai, alpha_out=ao,
                                                                    beta_in=bi, beta_out=bo))
    return combo


def test_shared_runtime_files_are_identical(two_models):
    _root, alpha, beta = two_models
    shared = sorted({f.name for f in (alpha / "runtime").iterdir()} & {f.name for f in (beta / "runtime").iterdir()})
    assert "ec_fixed.h" in shared and "ec_sections.h" in shared and "ec_linear_fast.c" in shared
    for name in shared:
        assert (alpha / "runtime" / name).read_bytes() == (beta / "runtime" / name).read_bytes(), name


@pytest.mark.parametrize("target", ["host", pytest.param("qemu-m4", marks=pytest.mark.qemu)])
def test_two_models_in_one_firmware(two_models, target):
    require_tool("make", "gcc" if target == "host" else "arm-none-eabi-gcc")
    if target != "host":
        require_tool("qemu-system-arm")
    combo = combine(*two_models)
    runtime = " ".join(f"runtime/{f.name}" for f in sorted((combo / "runtime").glob("*.c")))
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(combo), f"TARGET={target}",
                           "MODEL_SRCS=src/alpha.c src/beta.c", f"RUNTIME_SRCS={runtime}", "run"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "both models bit-exact" in proc.stdout + proc.stderr


class ImageAndExtra(nn.Module):
    """Two inputs of different shapes: a conv on the image, concatenated with extra features, then a linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 8 * 8 + 5, 4)

    def forward(self, image, extra):
        x = F.relu(self.conv(image)).flatten(1)
        return self.fc(torch.cat([x, extra], 1))


class TwoHeads(nn.Module):
    """Two inputs added, a shared trunk, two heads."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 24)
        self.cls = nn.Linear(24, 5)
        self.reg = nn.Linear(24, 2)

    def forward(self, a, b):
        h = F.relu(self.fc(a + b))
        return self.cls(h), self.reg(h)


@pytest.fixture(scope="module")
def multi_io_projects(tmp_path_factory):
    """The two models through each frontend: ONNX files, TorchScript with an .npz of named inputs, and
    torch.export programs (.pt2, which record their input shapes)."""
    root = tmp_path_factory.mktemp("multi_io")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    models = {"imgx": ImageAndExtra().eval(), "heads": TwoHeads().eval()}
    samples = {"imgx": {"image": rng.standard_normal((64, 3, 8, 8)), "extra": rng.standard_normal((64, 5))},
               "heads": {"a": rng.standard_normal((64, 16)), "b": rng.standard_normal((64, 16))}}
    projects = {}
    for key, model in models.items():
        calib = {k: v.astype(np.float32) for k, v in samples[key].items()}
        np.savez(root / f"{key}.npz", **calib)
        np.savez(root / f"{key}_positional.npz", *calib.values())  # arr_0, arr_1: taken in order
        examples = tuple(torch.zeros((1,) + v.shape[1:]) for v in calib.values())
        torch.onnx.export(model, examples, str(root / f"{key}.onnx"), input_names=list(calib),
                          output_names=["y0", "y1"] if key == "heads" else ["y"], dynamo=False)
        save_torchscript(model, root / f"{key}.pt")
        torch.export.save(torch.export.export(model, examples), str(root / f"{key}.pt2"))
        for suffix, calib_file, arena in ((".onnx", f"{key}_positional.npz", "extern"), (".pt", f"{key}.npz", "static"),
                                          (".pt2", f"{key}.npz", "extern")):
            name = f"{key}{suffix.replace('.', '_')}"
            projects[name] = export(ExportSettings(root / f"{key}{suffix}", root / name, root / calib_file, name=name,
                                                   arena=arena, vectors=32))
    return projects


@pytest.mark.slow
def test_multi_io_c_api(multi_io_projects):
    heads = multi_io_projects["heads_onnx"].out_dir
    header = (heads / "src" / "heads_onnx.h").read_text()
    assert ("void heads_onnx_run(const int8_t *input0, const int8_t *input1, int16_t *output0, int16_t *output1, "
            "void *arena);") in header
    for macro in ("INPUT0_SIZE 16", "INPUT1_SIZE 16", "OUTPUT0_SIZE 5", "OUTPUT1_SIZE 2", "INPUT_COUNT 2",
                  "OUTPUT_COUNT 2", "INPUT1_FRAC_BITS", "OUTPUT1_FRAC_BITS"):
        assert f"#define HEADS_ONNX_{macro}" in header
    assert "'a'" in header and "'y1'" in header  # each tensor's model name, in a comment
    assert "HEADS_ONNX_INPUT_SIZE" not in header  # no single-input macros to misuse
    for helper in ("quantize_input0", "quantize_input1", "dequantize_output0", "dequantize_output1"):
        assert f"heads_onnx_{helper}(" in header
    imgx = (multi_io_projects["imgx_pt"].out_dir / "src" / "imgx_pt.h").read_text()
    assert "void imgx_pt_run(const int8_t *input0, const int8_t *input1, int16_t *output);" in imgx
    assert "#define IMGX_PT_INPUT0_SIZE 192  /* 'image' */" in imgx and "#define IMGX_PT_OUTPUT_SIZE 4" in imgx
    doc = json.loads((heads / "manifest.json").read_text())
    assert doc["inputs"] == ["a", "b"] and doc["outputs"] == ["y0", "y1"]


@pytest.mark.slow
def test_multi_io_simulator_matches_the_float_model(multi_io_projects):
    for name, result in multi_io_projects.items():
        s = result.summary
        assert s["oracle_max_abs_err"] < 1e-4, name
        assert s["output_sqnr_db"] > 25, (name, s["output_sqnr_db"])
        assert (s["top1_agreement"] is None) == name.startswith("heads")  # two heads side by side: no top-1


@pytest.mark.slow
def test_multi_io_bit_exact_on_host(multi_io_projects):
    require_tool("gcc", "make")
    for name, result in multi_io_projects.items():
        v = verify(result.out_dir)
        assert v.total == 32 and v.ok, (name, v.first_mismatch)
    assert verify(multi_io_projects["heads_pt"].out_dir, sanitize=True, count=8).ok


@pytest.mark.qemu
def test_multi_io_bit_exact_and_benched_on_qemu(multi_io_projects):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    checked = on_every_core(lambda result: verify(result.out_dir, target="qemu-m4"), multi_io_projects.values())
    for name, v in zip(multi_io_projects, checked):
        assert v.total == 32 and v.ok, (name, v.first_mismatch)
    b = bench(multi_io_projects["imgx_pt2"].out_dir, "qemu-m4", samples=2)
    assert b.bit_exact and b.repeatable


@pytest.mark.slow
def test_multi_io_c_is_warning_free_under_gcc_and_clang(multi_io_projects, tmp_path):
    require_tool("gcc", "clang")
    for name in ("heads_onnx", "imgx_pt"):  # the caller's arena, and a static one
        out = multi_io_projects[name].out_dir
        for cc in ("gcc", "clang"):
            for src in (f"{name}.c", f"{name}_io.c", "runner.c"):
                subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-c",
                                f"-I{out / 'runtime'}", f"-I{out / 'src'}", f"-I{out / 'targets' / 'common'}",
                                str(out / "src" / src), "-o", str(tmp_path / f"{cc}_{src}.o")], check=True)


@pytest.mark.qemu
def test_multi_io_linked_vectors_runner_on_qemu(multi_io_projects):
    """The board runner (vectors compiled into the image) with two inputs, two outputs and the caller's arena."""
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    project = multi_io_projects["heads_pt2"].out_dir
    proc = subprocess.run(["make", "-s", "-C", str(project), "TARGET=qemu-m4", "BUILD=build/linked",
                           "RUNNER_FLAGS=-DEC_LINKED_VECTORS", "run"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bit-exact samples: 4" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_cli_exports_a_multi_input_model_with_the_callers_arena(multi_io_projects, tmp_path):
    require_tool("gcc", "make")
    from click.testing import CliRunner
    from edgecompile.cli import cli

    root = multi_io_projects["imgx_onnx"].out_dir.parent
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["export", str(root / "imgx.onnx"), "--calib", str(root / "imgx.npz"), "-o", str(out),
                                 "--arena", "extern", "--vectors", "16", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["c_api"]["arena"] == "extern"
    r = CliRunner().invoke(cli, ["verify", str(out)])
    assert r.exit_code == 0 and "bit-exact: 16/16" in r.output, r.output
    r = CliRunner().invoke(cli, ["export", str(root / "imgx.onnx"), "-o", str(tmp_path / "o2"), "--arena", "heap"])
    assert r.exit_code == 2 and "heap" in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_multi_io_vectors_and_verify_inputs(multi_io_projects, tmp_path):
    """inputs.bin holds each sample's inputs one after the other, outputs.bin each sample's outputs
    (here int16, little-endian); verify --inputs takes the same .npz as --calib."""
    result = multi_io_projects["heads_pt"]
    out, graph = result.out_dir, result.compiled.graph
    x = np.fromfile(out / "vectors" / "inputs.bin", dtype=np.int8).reshape(32, 32)
    y = np.fromfile(out / "vectors" / "expected.bin", dtype="<i2").reshape(32, 7)
    assert np.array_equal(c_api.read_outputs(graph, (out / "vectors" / "expected.bin").read_bytes(), "expected"), y)
    env = graph.evaluate_int({"a": x[:, :16], "b": x[:, 16:]})
    assert np.array_equal(y[:, :5], env[graph.outputs[0]]) and np.array_equal(y[:, 5:], env[graph.outputs[1]])
    per_tensor = {f: np.fromfile(out / "vectors" / f"{f}.bin", dtype=np.int8 if f.startswith("input") else "<i2")
                  for f in ("input0", "input1", "expected_output0", "expected_output1")}
    assert np.array_equal(per_tensor["input1"], x[:, 16:].reshape(-1))
    assert np.array_equal(per_tensor["expected_output1"], y[:, 5:].reshape(-1))
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "new.npz", b=rng.standard_normal((6, 16)).astype(np.float32),
             a=rng.standard_normal((6, 16)).astype(np.float32))
    require_tool("gcc", "make")
    v = verify(out, inputs=tmp_path / "new.npz")
    assert v.total == 6 and v.ok


@pytest.mark.slow
def test_multi_input_calibration_errors(tmp_path, multi_io_projects):
    rng = np.random.default_rng(0)
    model = next(iter(multi_io_projects.values())).out_dir.parent / "heads.onnx"
    np.savez(tmp_path / "three.npz", p=rng.standard_normal((8, 16)), q=rng.standard_normal((8, 16)),
             r=rng.standard_normal((8, 16)))
    with pytest.raises(EdgeCompileError, match="2 inputs .a, b.: give one array per input"):
        export(ExportSettings(model, tmp_path / "o1", tmp_path / "three.npz"))
    np.savez(tmp_path / "counts.npz", a=rng.standard_normal((8, 16)), b=rng.standard_normal((6, 16)))
    with pytest.raises(EdgeCompileError, match="every input needs the same number"):
        export(ExportSettings(model, tmp_path / "o2", tmp_path / "counts.npz"))
    np.savez(tmp_path / "shape.npz", a=rng.standard_normal((8, 16)), b=rng.standard_normal((8, 15)))
    with pytest.raises(EdgeCompileError, match="'b'"):
        export(ExportSettings(model, tmp_path / "o3", tmp_path / "shape.npz"))


class OutputFeedsALayer(nn.Module):
    """One input, two outputs, the first of which the second is computed from (read back from the
    caller's buffer)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 10)
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        h = self.fc1(x)
        return h, self.fc2(F.relu(h))


def test_single_input_two_outputs_keeps_the_input_name(tmp_path):
    require_tool("gcc", "make")
    torch.manual_seed(3)
    model = save_torchscript(OutputFeedsALayer(), tmp_path / "feed.pt")
    calib = np.random.default_rng(3).standard_normal((64, 12)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    result = export(ExportSettings(model, tmp_path / "out", tmp_path / "calib.npy", vectors=32))
    header = (result.out_dir / "src" / "feed.h").read_text()
    # output0 is also read by fc2 (it stays int8), output1 is only the caller's (int16, --output-bits auto)
    assert "void feed_run(const int8_t *input, int8_t *output0, int16_t *output1);" in header
    assert "#define FEED_INPUT_SIZE 12" in header and "#define FEED_OUTPUT1_SIZE 3" in header
    assert "void feed_quantize_input(const float *x, int8_t *q);" in header
    assert result.compiled.plan.location(result.compiled.graph.outputs[0])[0] == "output"
    assert result.summary["output_sqnr_db"] > 25  # the ReLU after output0 did not fuse into it
    assert verify(result.out_dir).ok


@pytest.mark.slow
def test_explore_and_qat_refuse_several_inputs_clearly(multi_io_projects, tmp_path):
    from edgecompile.explore import explore
    from edgecompile.qat import prepare

    root = multi_io_projects["heads_onnx"].out_dir.parent
    x = np.zeros((4, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros(4, dtype=np.int64))
    with pytest.raises(EdgeCompileError, match="one input and one output"):
        explore(root / "heads.onnx", tmp_path / "x.npy", tmp_path / "x.npy", tmp_path / "y.npy", tmp_path / "ex",
                ranks=[2], energies=[], bits=[8])
    with pytest.raises(EdgeCompileError, match="one input and one output"):
        prepare(TwoHeads(), x, input_shape=((16,), (16,)))

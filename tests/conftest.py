"""Shared fixtures: trained example models, tool checks, export helpers."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

IN_CI = os.environ.get("CI", "").lower() == "true"
# Every test converts its PyTorch files afresh (tests/test_onnx_cache.py turns the cache back on).
os.environ["EDGECOMPILE_CACHE"] = "off"


def require_tool(*names: str) -> None:
    """Skip when a tool is missing on a developer machine; fail in CI (CI=true), where it must be installed."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        message = f"missing tool(s): {', '.join(missing)} (install with scripts/install.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def make_run(project: Path, target: str, build: str, extra: str = "", opt: str | None = None, cc: str = "",
             timeout: int = 600) -> str:
    """`make run` of a generated test harness in `project` for `target` (objects in build/BUILD); its
    output, after asserting that it succeeded."""
    import subprocess

    args = ["make", "-s", f"-j{os.cpu_count() or 1}", "-C", str(project), f"TARGET={target}", f"BUILD=build/{build}",
            "run"]
    if cc:
        args.append(f"EC_CC={cc}")
    if extra:
        args.append(f"EXTRA_CFLAGS={extra}")
    if opt:
        args.append(f"EC_OPT={opt}")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    return output


def on_every_core(fn, items) -> list:
    """[fn(item) for item in items], on every core at once: for steps that wait on builds and
    emulators (subprocesses), which a 2-core machine would otherwise run one at a time.  The first
    exception is raised as the loop would raise it."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="test-jobs") as pool:
        return list(pool.map(fn, items))


def save_torchscript(model, path: Path) -> Path:
    import torch

    torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


def randomize_batchnorm(model, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics so that folding matters."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)


def random_example(model_class, input_shape, root: Path, seed: int = 0, samples: int = 32) -> dict:
    """A `model_class` with seeded random weights and BatchNorm statistics, saved as TorchScript in
    `root` with `samples` standard-normal calibration inputs: {"model", "calib", "root"}."""
    import torch

    torch.manual_seed(seed)
    model = model_class().eval()
    randomize_batchnorm(model, seed)
    calib = root / "calib.npy"
    np.save(calib, np.random.default_rng(seed).standard_normal((samples,) + tuple(input_shape)).astype(np.float32))
    return {"model": save_torchscript(model, root / "model.pt"), "calib": calib, "root": root}


def export_example(example: dict, name: str, vectors: int = 64, **options):
    """Export a random_example into its root's `name` directory."""
    from edgecompile.export import ExportSettings, export

    return export(ExportSettings(example["model"], example["root"] / name, example["calib"], vectors=vectors,
                                 **options))


TRAINING_SOURCES = ("train.py", "models.py", "datasets.py")


def training_key(model: str) -> str:
    """What a trained example depends on: the training code and the library versions. Training is
    seeded, so the same key gives the same files."""
    import hashlib

    import sklearn
    import torch

    h = hashlib.sha256(f"{model} torch {torch.__version__} numpy {np.__version__} "
                       f"sklearn {sklearn.__version__}".encode())
    for name in TRAINING_SOURCES:
        h.update((ROOT / "examples" / name).read_bytes())
    return h.hexdigest()[:16]


def trained_example(tmp_path_factory, model: str) -> dict:
    """An example model trained on sklearn's digits by examples/train.py, and the files it saves.

    Training takes about a minute, so the files are kept in a cache keyed by the training code and
    the library versions (EC_TEST_CACHE, default ~/.cache/edgecompile/tests); each test session
    gets its own copy."""
    import train

    out = tmp_path_factory.mktemp(model)
    cache_root = Path(os.environ.get("EC_TEST_CACHE", Path.home() / ".cache" / "edgecompile" / "tests"))
    cached = cache_root / f"{model}-{training_key(model)}"
    if not (cached / "complete").is_file():
        train.main(["--model", model, "-o", str(out)])
        try:
            staging = cache_root / f".{cached.name}-{os.getpid()}"
            shutil.copytree(out, staging, dirs_exist_ok=True)
            (staging / "complete").write_text("")
            staging.replace(cached)  # atomic: a cache entry is whole or absent
        except OSError:
            pass  # a read-only or shared cache: this session trained, the next will again
    else:
        shutil.copytree(cached, out, dirs_exist_ok=True)
    return {"model": out / f"{model}_digits.pt2", "calib": out / "calib.npy", "test_x": out / "test_x.npy",
            "test_y": out / "test_y.npy", "float_acc": float((out / "float_accuracy.txt").read_text()),
            "dir": out}


@pytest.fixture(scope="session")
def digits_lenet(tmp_path_factory):
    """LeNet trained on sklearn's digits (a few seconds), as the example script saves it."""
    return trained_example(tmp_path_factory, "lenet")


@pytest.fixture(scope="session")
def digits_lenet_export(digits_lenet, tmp_path_factory):
    """The digits LeNet exported once (int8, no factorization) for the tests that only read it."""
    from edgecompile.export import ExportSettings, export

    out = tmp_path_factory.mktemp("lenet_export") / "out"
    result = export(ExportSettings(digits_lenet["model"], out, digits_lenet["calib"]))
    return result


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def digits_mlp(tmp_path_factory):
    """The MLP trained on the digits."""
    return trained_example(tmp_path_factory, "mlp")

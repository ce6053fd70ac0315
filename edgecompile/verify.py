"""`edgecompile verify`: build an exported project, run it, compare every output byte
with the integer simulator."""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import simulate
from .c_api import output_record, read_outputs
from .calibration import load_inputs
from .errors import EdgeCompileError
from .manifest import read_manifest
from .progress import ProgressFactory, no_progress, watch_records

SANITIZE_FLAGS = "-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"


@dataclass
class Mismatch:
    sample: int
    index: int
    c_value: int
    sim_value: int


@dataclass
class VerifyResult:
    total: int
    exact: int
    first_mismatch: Mismatch | None
    target: str
    outputs: np.ndarray
    stream_total: int = 0  # a --streaming project: NAME_step calls checked (the vectors' frames in turn)
    stream_exact: int = 0  # and how many equal the simulator's output on their window or sequence
    stream_first_mismatch: int | None = None  # the first step that does not

    @property
    def ok(self) -> bool:
        return self.exact == self.total and self.stream_exact == self.stream_total


def project_inputs(out_dir: Path, graph, inputs: Path | None, count: int | None) -> np.ndarray:
    """int8 inputs (N, *shape): a float file quantized like export does, or the project's vectors."""
    if inputs is not None:
        q = simulate.quantize_input(graph, load_inputs(inputs, graph, "inputs"))
    else:
        path = out_dir / "vectors" / "inputs.bin"
        if not path.is_file():
            raise EdgeCompileError(f"{path}: missing; re-run `edgecompile export` or pass --inputs FILE")
        raw = np.fromfile(path, dtype=np.int8)
        if raw.size % graph.sample_size:
            raise EdgeCompileError(f"{path}: size {raw.size} is not a multiple of the input size {graph.sample_size}")
        q = raw.reshape((-1,) + graph.sample_shape)
    if count is not None:
        if count < 1:
            raise EdgeCompileError("--count must be at least 1")
        if count > len(q):
            raise EdgeCompileError(f"--count {count}: only {len(q)} inputs available")
        q = q[:count]
    return q


@functools.lru_cache(maxsize=None)
def make_command() -> tuple[str, ...]:
    """`make` as edgecompile runs it: the project's Makefile has one object per source file, so every
    core compiles (a build takes about half as long on 2 cores); with GNU make 4 or later, each job's
    output is printed whole (older ones, such as macOS's 3.81, lack --output-sync)."""
    args = ("make", "--no-print-directory", f"-j{os.cpu_count() or 1}")
    try:
        version = subprocess.run(["make", "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return args
    found = re.search(r"GNU Make (\d+)", version)
    return args + ("--output-sync=target",) if found and int(found.group(1)) >= 4 else args


def build_runner(out_dir: Path, target: str, build_dir: str | None = None, cflags: str = "",
                 progress: ProgressFactory = no_progress) -> list[str]:
    """Build the project's runner for `target` (a host or QEMU target); the make command that runs it."""
    if shutil.which("make") is None:
        raise EdgeCompileError("`make` is not installed; install it (Debian: apt-get install make)")
    from .targets import find_toolchain, load_target

    t = load_target(target)  # an unknown name lists the valid ones
    if t.kind == "board":
        raise EdgeCompileError(f"{target} is a board: it cannot run here. Use `edgecompile build` and flash it, "
                               "or verify on a qemu-* target")
    find_toolchain(t)
    args = [*make_command(), "-C", str(out_dir), f"TARGET={target}"]
    args += [f"BUILD={build_dir}"] if build_dir else []
    args += [f"EXTRA_CFLAGS={cflags}"] if cflags else []
    with progress(1, f"building for {target}") as bar:
        build = subprocess.run(args + ["all"], capture_output=True, text=True)
        bar.update(1)
    if build.returncode != 0:
        raise EdgeCompileError(explain_build_failure(out_dir, t, build.stdout + build.stderr))
    return args


def run_runner(args: list[str], graph, records: np.ndarray, kind: str, build: str, timeout: float,
               progress: ProgressFactory = no_progress) -> np.ndarray:
    """Run a built runner (build_runner's command) on int8 records (`kind`: inputs or frames, written
    to RUN_DIR/<kind>.bin): its output records, one per record, (len(records), output_size)."""
    with tempfile.TemporaryDirectory(prefix="edgecompile-verify-") as run_dir:
        np.asarray(records).astype(np.int8).tofile(Path(run_dir) / f"{kind}.bin")
        with progress(len(records), f"running {len(records)} {kind} on {build}") as bar, \
                watch_records(Path(run_dir) / "outputs.bin", output_record(graph).itemsize, bar):
            run = subprocess.run(args + [f"RUN_DIR={run_dir}", "run"], capture_output=True, text=True,
                                 timeout=timeout)
        if run.returncode != 0:
            raise EdgeCompileError(f"running {build} failed (exit {run.returncode}):\n{_tail(run.stdout + run.stderr)}")
        got = read_outputs(graph, (Path(run_dir) / "outputs.bin").read_bytes(), "outputs.bin")
    if len(got) != len(records):
        raise EdgeCompileError(f"the program wrote {len(got)} output records for {len(records)} {kind}")
    return got


def build_and_run(out_dir: Path, graph, q: np.ndarray, target: str, sanitize: bool,
                  timeout: float = 600, progress: ProgressFactory = no_progress) -> np.ndarray:
    """Build the runner for `target`, run it on the int8 inputs q: its outputs, (samples, output_size)."""
    if sanitize and target != "host":
        raise EdgeCompileError("--sanitize works on the host target only")
    args = build_runner(out_dir, target, "build/host-sanitize" if sanitize else None,
                        SANITIZE_FLAGS if sanitize else "", progress)
    return run_runner(args, graph, q, "inputs", f"the {target} build of {out_dir}", timeout, progress)


def explain_build_failure(out_dir: Path, target, log: str) -> str:
    """A too-large image gets a one-paragraph answer; anything else shows the end of the log."""
    usage = dict(re.findall(r"^\s*(\w+):\s+(\d+) B\s", log, flags=re.M))
    over = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", log)
    if over:
        parts = []
        for region, extra in over:
            used = int(usage.get(region, 0))
            parts.append(f"{region} needs {used:,} B but has {used - int(extra):,} B ({int(extra):,} B too many)")
        roomier = {"qemu-m0plus": " such as qemu-m0plus-an385 (the same M0+ code with 4 MiB)"}
        return (f"{out_dir} does not fit {target.name}: {'; '.join(parts)}. Shrink the model "
                f"(--rank, fewer --bits) or choose a target with more memory{roomier.get(target.name, '')}.")
    tail = "\n".join(log.strip().splitlines()[-12:])
    return f"building {out_dir} for {target.name} failed:\n{tail}"


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def verify(out_dir: str | Path, inputs: str | Path | None = None, count: int | None = None,
           target: str = "host", sanitize: bool = False, progress: ProgressFactory = no_progress) -> VerifyResult:
    out_dir = Path(out_dir)
    graph, doc = read_manifest(out_dir)
    q = project_inputs(out_dir, graph, Path(inputs) if inputs else None, count)
    expected = simulate.run_integer(graph, q).reshape(len(q), -1)
    got = build_and_run(out_dir, graph, q, target, sanitize, progress=progress)
    same = np.all(got == expected, axis=1)
    first = None
    if not np.all(same):
        s = int(np.argmin(same))
        i = int(np.argmax(got[s] != expected[s]))
        first = Mismatch(s, i, int(got[s, i]), int(expected[s, i]))
    result = VerifyResult(len(q), int(np.sum(same)), first, target, got)
    if doc.get("c_api", {}).get("streaming"):  # NAME_step too, on the first two inputs' frames in turn
        from .streaming import plan_streaming, reference_outputs, stream_frames

        stream = plan_streaming(graph, doc["summary"].get("memory_plan", "auto"))
        frames = stream_frames(q[:2])
        with progress(1, f"running {len(frames)} streaming steps on {target}") as bar:
            steps = run_stream(out_dir, graph, frames, target, sanitize)
            bar.update(1)
        ok = np.all(steps == reference_outputs(graph, stream, frames), axis=1)
        result.stream_total, result.stream_exact = len(frames), int(np.sum(ok))
        result.stream_first_mismatch = None if np.all(ok) else int(np.argmin(ok))
    return result


def run_stream(out_dir: Path, graph, frames: np.ndarray, target: str = "host", sanitize: bool = False,
               timeout: float = 600, reset_every: int | None = None) -> np.ndarray:
    """Build the runner of a --streaming project in stream mode (-DEC_STREAM) for `target` and run it on
    the int8 frames (N, frame size): NAME_reset, then one NAME_step per frame (and NAME_reset again
    before every `reset_every`-th); each step's outputs, (N, output_size)."""
    flags = ("-DEC_STREAM" + (f" -DEC_STREAM_RESET_EVERY={int(reset_every)}" if reset_every else "")
             + (f" {SANITIZE_FLAGS}" if sanitize else ""))
    build_dir = f"build/{target}-stream{'-sanitize' if sanitize else ''}{f'-reset{reset_every}' if reset_every else ''}"
    args = build_runner(out_dir, target, build_dir, flags)
    return run_runner(args, graph, frames, "frames", f"the {target} stream build of {out_dir}", timeout)

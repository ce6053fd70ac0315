"""`edgecompile bench` and `edgecompile build`: what a project costs on a Cortex-M target.

bench: exact guest instruction counts per inference and per layer under QEMU
(a TCG plugin counts executed instructions; there is no cycle-accurate
Cortex-M model here, so these are instructions, not cycles), plus flash and
RAM from the ELF and a stack estimate from gcc's -fstack-usage.
build: the .elf/.bin/.hex for a board, refused when it does not fit.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import simulate
from .c_api import output_record, read_outputs
from .errors import EdgeCompileError
from .manifest import read_manifest
from .progress import ProgressFactory, no_progress, watch_records
from .verify import explain_build_failure, make_command
from .targets import Target, count_instructions, elf_sizes, elf_symbols, find_toolchain, load_target

_STT_OBJECT, _STT_FUNC = 1, 2


def _make(out_dir: Path, target: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([*make_command(), "-C", str(out_dir), f"TARGET={target}", *args],
                          capture_output=True, text=True, timeout=timeout)
    return proc


def make_variable(out_dir: Path, target: str, name: str) -> str:
    proc = _make(out_dir, target, f"ec-print-{name}")
    if proc.returncode != 0:
        raise EdgeCompileError(f"{out_dir}: cannot read {name} from its Makefile:\n{proc.stderr.strip()}")
    return proc.stdout.strip()


@dataclass
class BuildResult:
    target: str
    elf: Path
    files: list[Path]
    sizes: dict[str, int]
    flash_limit: int | None
    ram_limit: int | None
    log: str


def build(out_dir: str | Path, target: str, build_dir: str | None = None, extra_cflags: str = "") -> BuildResult:
    """Build the project's runner for `target` (for boards also .bin and .hex)."""
    out_dir = Path(out_dir)
    read_manifest(out_dir)  # a clear error if this is not a project
    t = load_target(target)
    find_toolchain(t)
    build_dir = build_dir or f"build/{target}"
    args = [f"BUILD={build_dir}"] + ([f"EXTRA_CFLAGS={extra_cflags}"] if extra_cflags else [])
    proc = _make(out_dir, target, *args, "all")
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise EdgeCompileError(explain_build_failure(out_dir, t, log))
    exe = "model_test.elf" if t.kind != "host" else "model_test"
    elf = out_dir / build_dir / exe
    files = [p for p in (elf, elf.with_suffix(".bin"), elf.with_suffix(".hex")) if p.is_file()]
    flash = t.region("code").length if t.kind != "host" else None
    ram = t.region("data").length if t.kind != "host" else None
    return BuildResult(target, elf, files, elf_sizes(elf), flash, ram, log)


@dataclass
class LayerCost:
    name: str
    op: str
    macs: int
    instructions: int

    @property
    def per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None


@dataclass
class BenchResult:
    target: str
    samples: int
    per_inference: list[int]  # instructions of each inference (runner mark to last layer's mark)
    layers: list[LayerCost]  # of the first inference
    macs: int
    image: dict[str, int]  # elf_sizes of the whole test program
    model_flash: int  # model + kernels: code and constants
    arena: int
    stack_estimate: int | None
    bit_exact: bool
    repeatable: bool
    extra: dict = field(default_factory=dict)

    @property
    def instructions(self) -> int:
        return self.per_inference[0]

    def as_dict(self) -> dict:
        return {
            "target": self.target, "samples": self.samples, "instructions_per_inference": self.per_inference,
            "instructions_min": min(self.per_inference), "instructions_max": max(self.per_inference),
            "macs": self.macs, "instructions_per_mac": round(self.instructions / max(self.macs, 1), 3),
            "layers": [{"name": c.name, "op": c.op, "macs": c.macs, "instructions": c.instructions,
                        "instructions_per_mac": None if c.per_mac is None else round(c.per_mac, 3)}
                       for c in self.layers],
            "image": self.image, "model_flash_bytes": self.model_flash, "arena_bytes": self.arena,
            "stack_estimate_bytes": self.stack_estimate, "bit_exact": self.bit_exact,
            "repeatable": self.repeatable, "unit": "instructions (not cycles)",
            **({"streaming": self.extra["streaming"]} if "streaming" in self.extra else {}),
        }


def model_costs(out_dir: Path, target: Target, name: str, image: Path) -> tuple[int, int | None]:
    """Flash bytes of the model and its kernels alone, and a stack estimate for <name>_run.

    Compiles src/<name>.c and runtime/*.c with the flags the Makefile uses and -fstack-usage.
    Flash: the sizes, in the linked ``image``, of the functions and constants these
    objects define (what the linker kept: a kernel file's unused functions do not
    count).  The inference stack is the deepest path of stack frames from <name>_run down
    its call graph (gcc's -fcallgraph-info), across the model's and the kernels' files."""
    cc = make_variable(out_dir, target.name, "EC_CC")
    cflags = make_variable(out_dir, target.name, "EC_CFLAGS").split()
    kernel_opt = make_variable(out_dir, target.name, "EC_KERNEL_OPT").split()  # as the Makefile builds runtime/
    sources = [out_dir / "src" / f"{name}.c"] + sorted((out_dir / "runtime").glob("*.c"))
    ours, graph = set(), CallGraph()
    with tempfile.TemporaryDirectory(prefix="ec-size-") as tmp:
        def compile_one(src: Path) -> tuple[Path, subprocess.CompletedProcess]:
            obj = Path(tmp) / (src.stem + ".o")
            opt = kernel_opt if src.parent.name == "runtime" else []
            return obj, subprocess.run([cc, *cflags, *opt, "-std=c99", f"-I{out_dir / 'runtime'}",
                                        f"-I{out_dir / 'src'}", "-fstack-usage", "-fcallgraph-info=su", "-c", str(src),
                                        "-o", str(obj)], capture_output=True, text=True, cwd=out_dir)

        # every file compiles on its own: on every core at once, read back in the files' order
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            compiled = list(pool.map(compile_one, sources))
        for src, (obj, proc) in zip(sources, compiled):
            if proc.returncode != 0:
                raise EdgeCompileError(f"compiling {src} for {target.name} failed:\n{proc.stderr.strip()}")
            ours |= {s.name for s in elf_symbols(obj) if s.in_flash and s.kind in (_STT_OBJECT, _STT_FUNC)}
            ci = obj.with_suffix(".ci")
            if ci.is_file():
                graph.read(ci.read_text())
    flash = sum(s.size for s in elf_symbols(image)
                if s.in_flash and s.kind in (_STT_OBJECT, _STT_FUNC) and s.name in ours)
    return flash, graph.deepest(f"{name}_run")


class CallGraph:
    """Stack frames and calls from gcc's -fcallgraph-info=su files (one per object)."""

    _NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?(?:\\n(\d+) bytes \(([^)]*)\))?"')
    _EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')

    def __init__(self):
        self.frames: dict[str, int] = {}
        self.dynamic: set[str] = set()
        self.calls: dict[str, set[str]] = {}

    def read(self, text: str) -> None:
        for title, size, kind in self._NODE.findall(text):
            if size:  # a function defined in this file (callees defined elsewhere have no size)
                self.frames[title] = int(size)
                if "dynamic" in kind:
                    self.dynamic.add(title)
        for source, target in self._EDGE.findall(text):
            self.calls.setdefault(source, set()).add(target)

    def deepest(self, root: str) -> int | None:
        """The largest sum of frames along a call path from `root`; None when `root` is unknown or
        a frame on the way has a dynamic size.  Functions outside these files (libgcc) count 0."""
        if root not in self.frames:
            return None
        memo: dict[str, int | None] = {}

        def depth(fn: str, path: frozenset) -> int | None:
            if fn in memo:
                return memo[fn]
            if fn in path or fn in self.dynamic:  # the inference path has no recursion; be safe
                return None
            below = [depth(c, path | {fn}) for c in self.calls.get(fn, ())]
            memo[fn] = None if None in below else self.frames.get(fn, 0) + max(below, default=0)
            return memo[fn]

        return depth(root, frozenset())


def counted_run(t: Target, graph, elf: Path, inputs: np.ndarray, expected: np.ndarray, timeout: float, bar):
    """One run of the profiled program under QEMU: its instruction counts, and whether its outputs
    match the simulator's."""
    with tempfile.TemporaryDirectory(prefix="ec-bench-") as run_dir:
        inputs.tofile(Path(run_dir) / "inputs.bin")
        with watch_records(Path(run_dir) / "outputs.bin", output_record(graph).itemsize, bar):
            result = count_instructions(t, elf, Path(run_dir), timeout)
        if result.timed_out or result.exit_code != 0:
            raise EdgeCompileError(f"the profiled program failed on {t.name} (exit {result.exit_code}"
                                   f"{', timed out' if result.timed_out else ''}):\n{result.output[-2000:]}")
        got = read_outputs(graph, (Path(run_dir) / "outputs.bin").read_bytes(), "outputs.bin")
    return result, bool(np.array_equal(got, expected))


def profiled_layers(graph, patches: dict | None) -> list[tuple[str, str, int]]:
    """(name, op, MACs run) of each profiled step: every layer, except that the layers run in
    patches are one step (their MACs with the recomputed halos)."""
    inside = set(patches["layers"]) if patches else set()
    steps = []
    for n in graph.nodes:
        if n.is_alias or n.name in inside:
            if patches and n.name == patches["layers"][0]:
                layers = patches["layers"]
                macs = sum(m.macs(graph) for m in graph.nodes if m.name in inside) + patches["extra_macs"]
                steps.append((f"{layers[0]}..{layers[-1]}", "Patches", macs))
            continue
        steps.append((n.name, n.op_type, n.macs(graph)))
    return steps


def bench(out_dir: str | Path, target: str = "qemu-m4", samples: int | None = None,
          timeout: float = 300, progress: ProgressFactory = no_progress) -> BenchResult:
    """samples: inferences to count (default: 4, or all test vectors when there are fewer)."""
    out_dir = Path(out_dir).resolve()
    graph, doc = read_manifest(out_dir)
    t = load_target(target)
    if t.kind != "qemu":
        raise EdgeCompileError(f"bench counts instructions under QEMU: use a qemu-* target, not {target}")
    inputs = np.fromfile(out_dir / "vectors" / "inputs.bin", dtype=np.int8).reshape((-1,) + graph.sample_shape)
    if samples is None:
        samples = min(4, len(inputs))
    if samples > len(inputs):
        raise EdgeCompileError(f"--samples {samples}: {out_dir} has {len(inputs)} test vectors; ask for at most "
                               f"that many, or export with --vectors {samples}")
    inputs = inputs[:samples]
    with progress(2, f"building for {target}, plain and profiled") as bar:
        plain = build(out_dir, target)
        bar.update(1)
        profiled = build(out_dir, target, build_dir=f"build/{target}-profile", extra_cflags="-DEC_PROFILE")
        bar.update(1)
    expected = simulate.run_integer(graph, inputs).reshape(len(inputs), -1)
    with progress(2 * len(inputs), f"counting the instructions of {len(inputs)} inferences, twice") as bar:
        runs = [counted_run(t, graph, profiled.elf, inputs, expected, timeout, bar) for _ in range(2)]  # must agree
    (first, exact), (second, exact2) = runs
    layers = profiled_layers(graph, doc["summary"].get("patches"))
    per = 1 + len(layers)  # the runner's mark, then one after each layer (or after the patches)
    marks = first.marks
    if len(marks) != per * len(inputs):
        raise EdgeCompileError(f"expected {per * len(inputs)} profile marks, got {len(marks)}; "
                               "was the project exported by this edgecompile version?")
    per_inference = [marks[k * per + per - 1] - marks[k * per] for k in range(len(inputs))]
    costs = [LayerCost(name, op, macs, marks[j + 1] - marks[j]) for j, (name, op, macs) in enumerate(layers)]
    model_flash, stack = model_costs(out_dir, t, doc["name"], plain.elf)
    result = BenchResult(target, len(inputs), per_inference, costs, sum(n.macs(graph) for n in graph.nodes),
                         plain.sizes, model_flash, int(doc["summary"]["arena_bytes"]), stack,
                         exact and exact2, first.marks == second.marks and first.total == second.total)
    if doc.get("c_api", {}).get("streaming"):
        from .streaming import stream_frames

        frames = stream_frames(inputs)
        with progress(1, f"counting the instructions of {len(frames)} streaming steps") as bar:
            result.extra["streaming"] = bench_stream(out_dir, target, frames, graph, doc, timeout)
            bar.update(1)
        result.bit_exact = result.bit_exact and result.extra["streaming"]["bit_exact"]
    return result


def bench_stream(out_dir: Path, target: str, frames: np.ndarray, graph=None, doc=None, timeout: float = 300) -> dict:
    """Instructions of each NAME_step call of a --streaming project on `frames` under QEMU (the stream
    runner, -DEC_STREAM, marks before and after each step), and whether every step's outputs equal
    the simulator's (streaming.reference_outputs)."""
    from .streaming import plan_streaming, reference_outputs

    out_dir = Path(out_dir).resolve()
    if graph is None:
        graph, doc = read_manifest(out_dir)
    t = load_target(target)
    stream = plan_streaming(graph, doc["summary"].get("memory_plan", "auto"))
    elf = build(out_dir, target, build_dir=f"build/{target}-stream-profile",
                extra_cflags="-DEC_STREAM -DEC_PROFILE").elf
    frames = np.asarray(frames, dtype=np.int8).reshape((-1,) + tuple(stream.frame_shape))
    with tempfile.TemporaryDirectory(prefix="ec-bench-stream-") as run_dir:
        frames.tofile(Path(run_dir) / "frames.bin")
        run = count_instructions(t, elf, Path(run_dir), timeout)
        if run.timed_out or run.exit_code != 0:
            raise EdgeCompileError(f"the profiled stream program failed on {t.name} (exit {run.exit_code}"
                                   f"{', timed out' if run.timed_out else ''}):\n{run.output[-2000:]}")
        got = read_outputs(graph, (Path(run_dir) / "outputs.bin").read_bytes(), "outputs.bin")
    marks = run.marks
    if len(marks) != 2 * len(frames):
        raise EdgeCompileError(f"expected {2 * len(frames)} profile marks from the stream runner, got {len(marks)}")
    steps = [marks[2 * k + 1] - marks[2 * k] for k in range(len(frames))]
    expected = reference_outputs(graph, stream, frames)
    return {"frames": len(frames), "instructions_per_step": steps, "instructions_step_max": max(steps),
            "instructions_step_median": int(np.median(steps)), "macs_per_frame": stream.macs_step,
            "macs_full_window": stream.macs_full, "window_frames": stream.window,
            "bit_exact": bool(len(got) == len(expected) and np.array_equal(got, expected))}

"""`edgecompile fit`: the most accurate compression of a model that fits a flash and a RAM budget.

Every layer with weights has a few settings: its rank (Linear and 1x1 conv
layers), its weight bits (8, 4 or 2: the storage widths) and a share of its
smallest weights pruned to zero.  The search runs in three steps:

1. Sensitivities.  Each setting of each layer is compiled alone (every other
   layer dense at 8 bits) by a quick pipeline (no format search, no
   equalization, rounding to nearest) and scored with the integer simulator
   against the float model: its weight bytes and its output noise (squared
   error over signal power).  A setting that costs more bytes and more noise
   than another of the same layer is dropped.
2. Allocation.  From the dense model, a greedy walk repeatedly takes the
   layer setting that saves flash at the least estimated noise per byte saved
   (noises of different layers add), down to the smallest model.  Every step
   is a configuration; together they trace the estimated trade-off.
3. End to end.  The configurations around the budget and a spread along the
   walk are compiled exactly as `export` compiles them and scored on all the
   validation data: accuracy when labels are given, else output SQNR.  The
   best that fits both budgets is exported; the measured points form the
   Pareto front.

RAM is the arena (plus the caller's input and output buffers and the stack,
stated as reserves); the memory plan's patch budget is raised when the
default plan does not fit.  The compilations run in parallel over a process
pool (concurrent.futures).
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import shlex
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from . import metrics, simulate
from .calibration import load_array, load_labels, match_shape
from .compiler import CompileOptions, check_weights, compile_model, optimize
from .errors import EdgeCompileError
from .frontend import load_model
from .ops.weighted import WeightedOp
from .passes.factorize import RankSpec, eligible, max_useful_rank, rank_for_energy
from .passes.sparsify import has_compressed_kernels
from .report import Table, fmt_db, fmt_int

WEIGHT_BITS = (8, 4, 2)  # one per storage width (packing.field_bits): 6 bits would cost what 8 do
PRUNE_SHARES = (0.5, 0.75, 0.9)
ENERGIES = (0.995, 0.98, 0.95, 0.9, 0.8, 0.65)  # rank ladder: the ranks keeping these shares of sigma^2
PATCH_BUDGETS = (0.10, 0.25, 0.5, 1.0)  # tried in order when the arena does not fit the RAM
FLASH_RESERVE = 16 * 1024  # a board's flash not for weights: runtime kernels, startup code, I/O, runner
RAM_RESERVE = 512  # a board's RAM not for the arena besides the stack and I/O buffers: runtime and C library data
SENSITIVITY_SAMPLES = 256  # validation samples the quick sensitivity compiles are scored on
FRONT_POINTS = 6  # configurations along the walk measured end to end for the front

Progress = Callable[[int, str], object]  # (count, label) -> context manager with update(n)


# -- what is chosen ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One layer's compression: rank (None: not factorized), weight bits, pruned share."""

    rank: int | None = None
    bits: int = 8
    prune: float = 0.0

    @property
    def label(self) -> str:
        parts = [f"{self.bits}b"]
        if self.rank is not None:
            parts.append(f"r{self.rank}")
        if self.prune:
            parts.append(f"p{self.prune:g}")
        return " ".join(parts)


DENSE = Setting()


@dataclass
class Config:
    settings: dict[str, Setting]  # layer -> setting; absent layers are dense 8-bit
    patch_budget: float = PATCH_BUDGETS[0]
    act_bits: str = "8"  # "8" or "auto" (16-bit activations where they help most)

    def chosen(self) -> dict[str, Setting]:
        return {k: v for k, v in self.settings.items() if v != DENSE}

    def export_options(self) -> dict:
        """The `export` settings (ExportSettings fields) that compile this configuration."""
        chosen = self.chosen()
        bits = ["8"] + [f"{k}={s.bits}" for k, s in chosen.items() if s.bits != 8]
        ranks = ",".join(f"{k}={s.rank}" for k, s in chosen.items() if s.rank is not None)
        prune = ",".join(f"{k}={s.prune:g}" for k, s in chosen.items() if s.prune)
        return {"bits": tuple(bits), "rank": ranks or None, "prune": (prune,) if prune else (),
                "factorize_conv1x1": True, "patch_budget": self.patch_budget, "act_bits": self.act_bits}

    def compile_options(self) -> CompileOptions:
        chosen = self.chosen()
        return CompileOptions(
            layer_bits={k: s.bits for k, s in chosen.items() if s.bits != 8},
            ranks=RankSpec(layers={k: s.rank for k, s in chosen.items() if s.rank is not None}, conv1x1=True),
            prune={k: s.prune for k, s in chosen.items() if s.prune}, patch_budget=self.patch_budget,
            act_auto=self.act_bits == "auto")

    def command(self, model: Path, calib: Path, out_dir: Path, val: Path | None, extra: list[str]) -> str:
        """The `edgecompile export` command line that reproduces this configuration."""
        o = self.export_options()
        args = ["edgecompile", "export", str(model), "--calib", str(calib)]
        args += [f"--bits={b}" for b in o["bits"]]
        if o["rank"]:
            args += [f"--rank={o['rank']}", "--factorize-conv1x1"]
        args += [f"--prune={p}" for p in o["prune"]]
        if o["patch_budget"] != PATCH_BUDGETS[0]:
            args.append(f"--patch-budget={100 * o['patch_budget']:g}")
        if o["act_bits"] != "8":
            args.append(f"--act-bits={o['act_bits']}")
        if val is not None:
            args += ["--val", str(val)]
        return shlex.join(args + extra + ["-o", str(out_dir)])


@dataclass
class Budget:
    flash: int | None  # bytes for the weights
    ram: int | None  # bytes for the arena
    io_bytes: int = 0  # the caller's input and output buffers, taken from the board's RAM
    source: str = ""  # how the figures were arrived at

    def fits(self, weight_bytes: int, arena: int) -> bool:
        return (self.flash is None or weight_bytes <= self.flash) and (self.ram is None or arena <= self.ram)


def parse_size(text: str | None, option: str) -> int | None:
    """`12k`, `12K`, `12kb`, `1.5M`, `4096` -> bytes (k = 1024)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)[bB]?\s*", str(text))
    if not m:
        raise EdgeCompileError(f"{option} {text}: expected a size in bytes such as 12k, 256K, 1M or 4096")
    value = float(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    if value < 1:
        raise EdgeCompileError(f"{option} {text}: the budget must be at least one byte")
    return int(value)


def board_budget(board: str, io_bytes: int) -> Budget:
    """Flash and RAM of a target's memory map, minus what the rest of the firmware needs."""
    from .targets import TargetError, load_target

    try:
        target = load_target(board)
    except TargetError as exc:
        raise EdgeCompileError(f"--board {board}: {exc}") from None
    if not target.is_cortex_m or not target.memory:
        raise EdgeCompileError(f"--board {board}: has no memory map; give --flash and --ram instead")
    flash = target.region("code").length - FLASH_RESERVE
    ram = target.region("data").length - target.stack_bytes - RAM_RESERVE - io_bytes
    why = (f"{target.name}: {fmt_int(target.region('code').length)} B flash - {fmt_int(FLASH_RESERVE)} B for code; "
           f"{fmt_int(target.region('data').length)} B RAM - {fmt_int(target.stack_bytes)} B stack - "
           f"{fmt_int(RAM_RESERVE)} B runtime data - {fmt_int(io_bytes)} B input/output buffers")
    if ram <= 0:  # no arena size can fit: say so now rather than after a hopeless search
        raise EdgeCompileError(f"--board {target.name}: the model's input and output buffers alone take "
                               f"{fmt_int(io_bytes)} B of its {fmt_int(target.region('data').length)} B RAM, which "
                               f"also holds {fmt_int(target.stack_bytes + RAM_RESERVE)} B of stack and runtime data; "
                               "choose a board with more RAM or a model with smaller inputs")
    return Budget(max(flash, 0), ram, io_bytes, why)


# -- measuring one configuration ----------------------------------------------------------
@dataclass
class Score:
    weight_bytes: int
    arena: int
    noise: float  # output squared error / output power, against the float model
    accuracy: float | None  # top-1 against the labels
    layer_bytes: dict[str, int]  # weight bytes of each layer (LAYER.V and LAYER.U count as LAYER)

    @property
    def sqnr_db(self) -> float:
        return 10 * math.log10(1 / self.noise) if self.noise > 0 else float("inf")


_WORK: dict = {}  # what every worker needs, set once per process by _setup


def _setup(graph, source, calib, val_x, val_y, reference) -> None:
    _WORK.update(graph=graph, source=source, calib=calib, val_x=val_x, val_y=val_y, reference=reference)


QUICK = dict(format_search=False, equalize="off", snap_ranges=False, weight_rounding="nearest",
             output_correction=False, memory_plan="layer", max_calib_samples=256)


def _measure(config: Config, quick: bool) -> Score:
    options = config.compile_options()
    if quick:
        for key, value in QUICK.items():
            setattr(options, key, value)
    loaded = SimpleNamespace(graph=copy.deepcopy(_WORK["graph"]), source=_WORK["source"])
    compiled = compile_model(loaded, _WORK["calib"], options)
    n = SENSITIVITY_SAMPLES if quick else len(_WORK["val_x"])
    labels = _WORK["val_y"]
    return score(compiled.graph, compiled.plan.arena_size, _WORK["val_x"][:n], _WORK["reference"][:n],
                 None if labels is None else labels[:n])


def bytes_by_layer(graph) -> dict[str, int]:
    """Weight bytes of each layer as emitted (LAYER.V and LAYER.U count as LAYER)."""
    out: dict[str, int] = {}
    for node in graph.nodes:
        name = re.sub(r"\.[VU]$", "", node.name)
        out[name] = out.get(name, 0) + node.flash_bytes(graph)
    return out


def score(graph, arena: int, x: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> Score:
    """A compiled model's footprint, and its integer outputs on x against the float ones."""
    y = np.asarray(simulate.run_dequantized(graph, x), np.float64).reshape(len(x), -1)
    noise = float(np.sum((y - reference) ** 2) / max(np.sum(reference ** 2), 1e-30))
    accuracy = None if labels is None else float(np.mean(y.argmax(1) == labels))
    per_layer = bytes_by_layer(graph)
    return Score(sum(per_layer.values()), arena, noise, accuracy, per_layer)


def _measure_task(args):
    config, quick = args
    try:
        return _measure(config, quick)
    except EdgeCompileError as exc:  # a setting the compiler refuses (reported, not fatal)
        return str(exc)


class Runner:
    """Measures configurations, in parallel when jobs > 1 (a process pool, one compile per task)."""

    def __init__(self, jobs: int, setup_args: tuple, progress: Progress | None):
        self.jobs = max(1, jobs)
        self.progress = progress
        _setup(*setup_args)
        self.pool = None
        if self.jobs > 1:
            # One BLAS thread per worker: the workers already use every core.
            saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
            os.environ.update({k: "1" for k in saved})
            import multiprocessing

            self.pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_setup, initargs=setup_args)
            self.pool.submit(int, 0).result()  # start the workers while the environment says one thread
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def run(self, configs: list[Config], quick: bool, label: str) -> list:
        tasks = [(c, quick) for c in configs]
        results = []
        bar_cm = self.progress(len(tasks), label) if self.progress else None
        bar = bar_cm.__enter__() if bar_cm else None
        try:
            mapped = self.pool.map(_measure_task, tasks) if self.pool else map(_measure_task, tasks)
            for r in mapped:
                results.append(r)
                if bar:
                    bar.update(1)
        finally:
            if bar_cm:
                bar_cm.__exit__(None, None, None)
        return results

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown()


# -- the search ----------------------------------------------------------------------------
@dataclass
class LayerOptions:
    name: str
    dense_bytes: int
    settings: dict[Setting, tuple[int, float]] = field(default_factory=dict)  # -> (bytes, noise)
    dropped: list[str] = field(default_factory=list)  # settings pruned as dominated or refused


def layer_settings(graph, layer, total_weights: int) -> list[Setting]:
    """What to try for one layer of the folded graph."""
    out = []
    compressible = has_compressed_kernels(graph, layer)
    bits = WEIGHT_BITS if compressible else (8,)
    out += [Setting(bits=b) for b in bits if b != 8]
    if compressible and layer.params["weight"].size >= 0.01 * total_weights:
        out += [Setting(prune=p) for p in PRUNE_SHARES]
    if eligible(layer, conv1x1=True):
        w = np.asarray(layer.params["weight"], np.float64)
        w = w.reshape(w.shape[0], -1)
        s = np.linalg.svd(w, compute_uv=False)
        limit = max_useful_rank(w.shape[1], w.shape[0])
        ranks = sorted({rank_for_energy(s, e) for e in ENERGIES} - {0}, reverse=True)
        for r in (r for r in ranks if r < limit):
            out += [Setting(rank=r, bits=b) for b in bits]
    return out


def dominated(options: dict[Setting, tuple[int, float]]) -> set[Setting]:
    """Settings with at least the bytes and the noise of another (and more of one)."""
    out = set()
    for s, (b, n) in options.items():
        for t, (b2, n2) in options.items():
            if t != s and b2 <= b and n2 <= n and (b2 < b or n2 < n):
                out.add(s)
                break
    return out


@dataclass
class Step:
    config: Config
    est_bytes: int
    est_noise: float
    move: str


def greedy_walk(layers: list[LayerOptions], other_bytes: int, base_noise: float) -> list[Step]:
    """From dense, take the move that saves bytes at the least added noise per byte, to the end."""
    current = {l.name: DENSE for l in layers}

    def added(l: LayerOptions, s: Setting) -> float:  # noise this setting adds over dense (never less)
        return max(l.settings[s][1] - base_noise, 0.0)

    def estimate():
        b = other_bytes + sum(l.settings[current[l.name]][0] for l in layers)
        return b, base_noise + sum(added(l, current[l.name]) for l in layers)

    b, n = estimate()
    steps = [Step(Config(dict(current)), b, n, "dense, 8-bit")]
    while True:
        best = None
        for l in layers:
            cb, cur = l.settings[current[l.name]][0], added(l, current[l.name])
            for s, (sb, _) in l.settings.items():
                if sb >= cb:
                    continue
                cost = (added(l, s) - cur) / (cb - sb)
                key = (cost, -(cb - sb))
                if best is None or key < best[0]:
                    best = (key, l, s)
        if best is None:
            return steps
        _, l, s = best
        current[l.name] = s
        b, n = estimate()
        steps.append(Step(Config(dict(current)), b, n, f"{l.name} -> {s.label}"))


@dataclass
class Point:
    label: str
    weight_bytes: int
    arena: int
    sqnr_db: float
    accuracy: float | None
    fits: bool
    settings: dict[str, str]
    patch_budget: float
    act_bits: str
    pareto: bool = False
    chosen: bool = False
    layer_bytes: dict[str, int] = field(default_factory=dict, repr=False)


@dataclass
class FitResult:
    budget: Budget
    chosen: Point
    points: list[Point]
    layers: list[dict]  # per layer: name, setting, bytes, dense bytes
    float_accuracy: float | None
    dense: Point
    command: str
    export: object  # export.ExportResult
    files: list[str]
    sensitivity: dict[str, dict[str, list]]  # layer -> setting label -> [bytes, noise]
    finetune: dict | None = None  # --finetune: epochs, losses, the fine-tuned model's scores, kept or not


def _point(label: str, config: Config, score: Score, budget: Budget) -> Point:
    return Point(label, score.weight_bytes, score.arena, score.sqnr_db, score.accuracy,
                 budget.fits(score.weight_bytes, score.arena), {k: s.label for k, s in config.chosen().items()},
                 config.patch_budget, config.act_bits, layer_bytes=dict(score.layer_bytes))


def _better(a: Point, b: Point) -> bool:
    """a is more accurate than b: accuracy first when labelled, then SQNR."""
    ka = (a.accuracy if a.accuracy is not None else 0.0, a.sqnr_db)
    kb = (b.accuracy if b.accuracy is not None else 0.0, b.sqnr_db)
    return ka > kb


def mark_pareto(points: list[Point]) -> None:
    def key(p):
        return (p.accuracy if p.accuracy is not None else 0.0, p.sqnr_db)

    for p in points:
        p.pareto = not any(q is not p and q.weight_bytes <= p.weight_bytes and key(q) >= key(p)
                           and (q.weight_bytes < p.weight_bytes or key(q) > key(p)) for q in points)


def pick_spread(steps: list[Step], count: int) -> list[int]:
    """Indices of `count` steps spread evenly in log(bytes) from the first to the last."""
    if len(steps) <= count:
        return list(range(len(steps)))
    logs = np.log([s.est_bytes for s in steps])
    targets = np.linspace(logs[0], logs[-1], count)
    return sorted({int(np.argmin(np.abs(logs - t))) for t in targets})


@dataclass
class Request:
    """What the user asked for, read and checked before any long work."""

    model: Path
    calib_path: Path
    val_path: Path
    out_dir: Path
    budget: Budget
    loaded: object  # frontend.LoadedModel
    calib: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray | None
    reference: np.ndarray  # the float model's outputs on val_x, one row per sample
    float_accuracy: float | None
    model_flags: list[str]  # --input-shape, --trust-pickle, --import as the command line needs them
    model_options: dict  # the same as ExportSettings fields
    finetune: int = 0
    train_x: np.ndarray | None = None
    train_y: np.ndarray | None = None
    log: Callable[[str], None] = lambda _m: None
    progress: Progress | None = None


def fit(model: Path, calib_path: Path, val_path: Path, labels_path: Path | None, out_dir: Path, *,
        board: str | None = None, flash: int | None = None, ram: int | None = None, jobs: int | None = None,
        finetune: int = 0, train: tuple[Path, Path] | None = None, input_shape=None, trust_pickle: bool = False,
        imports: tuple[str, ...] = (), log: Callable[[str], None] = lambda _m: None,
        progress: Progress | None = None) -> FitResult:
    req = read_request(model, calib_path, val_path, labels_path, out_dir, board, flash, ram, finetune, train,
                       input_shape, trust_pickle, imports, log, progress)
    graph = req.loaded.graph
    folded = copy.deepcopy(graph)
    optimize(folded, CompileOptions())
    weighted = [n for n in folded.nodes if isinstance(n, WeightedOp) and "weight" in n.params
                and getattr(n, "body", None) is None]
    total_weights = sum(int(n.params["weight"].size) for n in weighted)
    trials = [(n.name, s) for n in weighted for s in layer_settings(folded, n, total_weights)]
    runner = Runner(jobs or os.cpu_count() or 1, (graph, str(model), req.calib, req.val_x, req.val_y,
                                                  req.reference), progress)
    try:
        log(f"measuring {len(trials)} layer settings of {len(weighted)} layers alone")
        base, layers, sensitivity = measure_sensitivities(runner, req, weighted, trials)
        steps = greedy_walk(list(layers.values()), base.weight_bytes - sum(l.dense_bytes for l in layers.values()),
                            base.noise)
        patch_budget = patch_budget_for(runner, req, base)
        for step in steps:
            step.config.patch_budget = patch_budget
        best, best_config, points = measure_candidates(runner, req, steps, layers)
    finally:
        runner.close()
    result, best, finetuned = export_chosen(req, best, best_config, points)
    by_layer = bytes_by_layer(result.compiled.graph)
    layer_rows = [{"layer": l.name, "setting": best_config.settings.get(l.name, DENSE).label,
                   "bytes": by_layer.get(l.name, 0), "dense_bytes": l.dense_bytes,
                   "tried": len(sensitivity[l.name]), "kept": len(l.settings)} for l in layers.values()]
    command = best_config.command(model, calib_path, out_dir, val_path, req.model_flags)
    dense = next((p for p in points if p.label.startswith("step 0:")), points[0])
    fit_result = FitResult(req.budget, best, points, layer_rows, req.float_accuracy, dense, command, result, [],
                           sensitivity, finetuned)
    fit_result.files = write_reports(fit_result, model, out_dir)
    return fit_result


def read_request(model, calib_path, val_path, labels_path, out_dir, board, flash, ram, finetune, train,
                 input_shape, trust_pickle, imports, log, progress) -> Request:
    from .export import check_destination

    if board is None and flash is None and ram is None:
        raise EdgeCompileError("give a budget: --board NAME, or --flash SIZE and/or --ram SIZE")
    if board is not None and (flash is not None or ram is not None):
        raise EdgeCompileError("give either --board or --flash/--ram, not both")
    if finetune < 0:
        raise EdgeCompileError(f"--finetune {finetune}: give a number of epochs (0: no fine-tuning)")
    if finetune and train is None:
        raise EdgeCompileError("--finetune needs training data: --train X.npy --train-labels Y.npy")
    check_destination(out_dir)
    calib = load_array(calib_path)
    shape = input_shape or (tuple(calib.shape[1:]) if model.suffix.lower() != ".onnx" else None)
    log(f"loading {model}")
    loaded = load_model(model, shape, trust_pickle, imports)
    graph = loaded.graph
    check_weights(graph, str(model))
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise EdgeCompileError(f"{model}: fit searches models with one input and one output; this one has "
                               f"{len(graph.inputs)} and {len(graph.outputs)} (export handles it)")
    calib = match_shape(calib, graph.input.shape, str(calib_path))
    val_x = match_shape(load_array(val_path, "validation inputs"), graph.input.shape, str(val_path),
                        "validation inputs")
    classes = int(np.prod(graph.output.shape))
    val_y = None if labels_path is None else _class_labels(labels_path, len(val_x), classes)
    train_x = train_y = None
    if finetune:
        train_x = match_shape(load_array(train[0], "training inputs"), graph.input.shape, str(train[0]),
                              "training inputs")
        train_y = _class_labels(train[1], len(train_x), classes)
    io_bytes = int(np.prod(graph.input.shape)) + int(np.prod(graph.output.shape)) * 2  # outputs may be int16
    budget = board_budget(board, io_bytes) if board else Budget(flash, ram, 0, "--flash/--ram")
    reference = metrics.float_reference(loaded, val_x, graph)
    if reference is None:
        reference = graph.run_float(val_x)
    reference = np.asarray(reference, np.float64).reshape(len(val_x), -1)
    float_accuracy = None if val_y is None else float(np.mean(reference.argmax(1) == val_y))
    flags = (["--input-shape=" + ",".join(str(d) for d in input_shape)] if input_shape else []) \
        + (["--trust-pickle"] if trust_pickle else []) + [f"--import={m}" for m in imports]
    return Request(model, calib_path, val_path, out_dir, budget, loaded, calib, val_x, val_y, reference,
                   float_accuracy, flags, {"input_shape": input_shape, "trust_pickle": trust_pickle,
                                           "imports": tuple(imports)},
                   finetune, train_x, train_y, log, progress)


def _class_labels(path: Path, n: int, classes: int) -> np.ndarray:
    y = load_labels(path, n)
    if y.min() < 0 or y.max() >= classes:
        raise EdgeCompileError(f"{path}: labels must be class indices 0..{classes - 1} (the model has "
                               f"{classes} outputs); found {int(y.min())}..{int(y.max())}")
    return y


def measure_sensitivities(runner: Runner, req: Request, weighted, trials):
    """Step 1: every setting of every layer alone, on the quick pipeline; dominated ones dropped."""
    scores = runner.run([Config({})] + [Config({name: s}) for name, s in trials], True,
                        f"sensitivities of {len(weighted)} layers")
    base = scores[0]
    if isinstance(base, str):
        raise EdgeCompileError(f"{req.model}: the dense model does not compile: {base}")
    layers = {n.name: LayerOptions(n.name, base.layer_bytes.get(n.name, 0)) for n in weighted}
    for l in layers.values():
        l.settings[DENSE] = (l.dense_bytes, base.noise)
    for (name, s), score in zip(trials, scores[1:]):
        if isinstance(score, str):
            layers[name].dropped.append(f"{s.label}: {score}")
            continue
        layers[name].settings[s] = (score.layer_bytes.get(name, 0), score.noise)
    sensitivity = {l.name: {s.label: list(v) for s, v in l.settings.items()} for l in layers.values()}
    for l in layers.values():
        for s in dominated(l.settings) - {DENSE}:
            l.dropped.append(f"{s.label}: dominated")
            del l.settings[s]
    return base, layers, sensitivity


def patch_budget_for(runner: Runner, req: Request, base: Score) -> float:
    """The arena barely depends on the weights: raise the patch budget until the dense model's fits."""
    ram = req.budget.ram
    if ram is None or base.arena <= ram:
        return PATCH_BUDGETS[0]
    tries = [Config({}, p) for p in PATCH_BUDGETS]
    arenas = runner.run(tries, True, "memory plans")
    fitting = [c.patch_budget for c, s in zip(tries, arenas) if not isinstance(s, str) and s.arena <= ram]
    if not fitting:
        smallest = min(s.arena for s in arenas if not isinstance(s, str))
        raise EdgeCompileError(f"{req.model}: no memory plan fits the arena in {fmt_int(ram)} B of RAM; the "
                               f"smallest reached is {fmt_int(smallest)} B (row bands over the first layers with "
                               f"--patch-budget 100). The largest activations dominate: a board with more RAM or "
                               f"a smaller input is needed")
    return fitting[0]


def measure_candidates(runner: Runner, req: Request, steps: list[Step], layers: dict[str, LayerOptions]):
    """Step 3: compile candidates end to end (around the budget and spread along the walk) and
    pick the most accurate that fits; then try 16-bit activations on it."""
    budget = req.budget
    if budget.flash is None:
        first_fit = 0
    else:
        first_fit = next((i for i, s in enumerate(steps) if s.est_bytes <= budget.flash), len(steps) - 1)
    picks = set(pick_spread(steps, FRONT_POINTS)) | {i for i in range(first_fit - 1, first_fit + 3)
                                                      if 0 <= i < len(steps)}
    measured: dict[int, Point] = {}
    next_index = max(picks) + 1
    while True:
        todo = sorted(i for i in picks if i not in measured)
        results = runner.run([steps[i].config for i in todo], False, f"compiling {len(todo)} candidates end to end")
        for i, r in zip(todo, results):
            if not isinstance(r, str):
                measured[i] = _point(f"step {i}: {steps[i].move}", steps[i].config, r, budget)
        if any(p.fits for p in measured.values()) or next_index >= len(steps):
            break
        picks = set(range(next_index, min(next_index + 2 * runner.jobs, len(steps))))  # on towards smaller
        next_index = max(picks) + 1
    fitting = [i for i, p in measured.items() if p.fits]
    if not fitting:
        raise EdgeCompileError(_no_fit_message(req.model, budget,
                                               min(measured.values(), key=lambda p: p.weight_bytes), layers))
    best_i = fitting[0]
    for i in fitting[1:]:
        if _better(measured[i], measured[best_i]):
            best_i = i
    best, best_config = measured[best_i], steps[best_i].config
    points = [measured[i] for i in sorted(measured)]
    wide = Config(dict(best_config.settings), best_config.patch_budget, "auto")
    (r,) = runner.run([wide], False, "trying 16-bit activations")
    if not isinstance(r, str) and (r.arena, r.sqnr_db) != (best.arena, best.sqnr_db):  # auto widened a layer
        p = _point(f"step {best_i} + 16-bit activations", wide, r, budget)
        points.append(p)
        if p.fits and _better(p, best):
            best, best_config = p, wide
    mark_pareto(points)
    best.chosen = True
    return best, best_config, points


def export_chosen(req: Request, best: Point, config: Config, points: list[Point]):
    """Export the chosen configuration as `export` would from the recorded command; with
    --finetune, fine-tune it first (QAT) and keep the fine-tuned model if it scores better."""
    from .export import ExportSettings
    from .export import export as run_export

    req.log(f"exporting the chosen configuration to {req.out_dir}")
    settings = ExportSettings(req.model, req.out_dir, req.calib_path, val=req.val_path,
                              **req.model_options, **config.export_options())
    result = run_export(settings)
    s = result.summary
    if s["weight_bytes"] != best.weight_bytes or s["arena_bytes"] != best.arena:
        raise AssertionError(f"the export differs from the measured candidate: {s['weight_bytes']} vs "
                             f"{best.weight_bytes} weight bytes, {s['arena_bytes']} vs {best.arena} arena")
    if not req.finetune:
        return result, best, None
    tuned, point, report = fine_tune_chosen(req, config, result.compiled.graph)
    report["kept"] = _better(point, best)
    points.append(point)
    if report["kept"]:
        best.chosen, point.chosen = False, True
        return tuned, point, report
    req.log("the fine-tuned model is not better: keeping the post-training one")
    return run_export(settings), best, report


def fine_tune_chosen(req: Request, config: Config, exported):
    """QAT on the chosen configuration, from the weights its export chose (8-bit activations,
    the formats QAT fixes), exported so that the C equals the trained model."""
    from .qat import QATModel, fine_tune, quantized_weights

    options = Config(dict(config.settings), config.patch_budget).compile_options()
    options.param_overrides = quantized_weights(exported)
    model = QATModel(req.loaded, req.calib, options)
    req.log(f"fine-tuning the chosen configuration for {req.finetune} epoch(s) on {len(req.train_x)} samples")
    losses = fine_tune(model, req.train_x, req.train_y, req.finetune, progress=req.progress)
    result = model.export(req.out_dir, vectors=256, val=req.val_path, patch_budget=config.patch_budget)
    measured = score(result.compiled.graph, result.compiled.plan.arena_size, req.val_x, req.reference, req.val_y)
    point = _point(f"chosen + QAT {req.finetune} epoch(s)", config, measured, req.budget)
    return result, point, {"epochs": req.finetune, "losses": losses, "accuracy": measured.accuracy,
                           "sqnr_db": point.sqnr_db}


def _no_fit_message(model: Path, budget: Budget, smallest: Point, layers: dict[str, LayerOptions]) -> str:
    """No candidate fits: the smallest reached, and what its bytes are made of."""
    over = []
    if budget.flash is not None and smallest.weight_bytes > budget.flash:
        over.append(f"{fmt_int(smallest.weight_bytes)} B of weights for {fmt_int(budget.flash)} B of flash")
    if budget.ram is not None and smallest.arena > budget.ram:
        over.append(f"a {fmt_int(smallest.arena)} B arena for {fmt_int(budget.ram)} B of RAM")
    parts = sorted(smallest.layer_bytes.items(), key=lambda kv: -kv[1])
    fixed = sum(b for name, b in parts if name not in layers or len(layers[name].settings) == 1)
    top = ", ".join(f"{name} {fmt_int(b)} B ({smallest.settings.get(name, DENSE.label)})"
                    for name, b in parts[:3] if b)
    fixed_text = (f"; {fmt_int(fixed)} B are in layers and tables that cannot be compressed (depthwise and "
                  f"grouped convolutions, lookup tables)" if fixed else "")
    return (f"{model}: no configuration fits: the smallest reached needs {' and '.join(over)}. Largest parts: "
            f"{top}{fixed_text}. Give a larger budget, a board with more memory, or a smaller model")


# -- reports --------------------------------------------------------------------------------
def _acc(p: Point) -> str:
    return "-" if p.accuracy is None else f"{100 * p.accuracy:.2f}"


def points_table(points: list[Point]) -> Table:
    rows = [["*" if p.chosen else "", p.label, fmt_int(p.weight_bytes), fmt_int(p.arena), fmt_db(p.sqnr_db),
             _acc(p), "yes" if p.fits else "no", "*" if p.pareto else ""] for p in points]
    return Table(["", "candidate", "weights B", "arena B", "SQNR dB", "accuracy %", "fits", "front"], rows,
                 {2, 3, 4, 5})


def layers_table(rows: list[dict]) -> Table:
    return Table(["layer", "setting", "weights B", "dense 8-bit B", "settings tried", "kept"],
                 [[r["layer"], r["setting"], fmt_int(r["bytes"]), fmt_int(r["dense_bytes"]), str(r["tried"]),
                   str(r["kept"])] for r in rows], {2, 3, 4, 5})


def write_reports(r: FitResult, model: Path, out_dir: Path) -> list[str]:
    data = {"model": str(model), "budget": asdict(r.budget), "float_accuracy": r.float_accuracy,
            "chosen": asdict(r.chosen), "layers": r.layers, "points": [asdict(p) for p in r.points],
            "export_command": r.command, "finetune": r.finetune, "sensitivity": r.sensitivity}
    (out_dir / "fit.json").write_text(json.dumps(data, indent=1) + "\n")
    budget = (f"flash {fmt_int(r.budget.flash) if r.budget.flash is not None else 'any'} B for weights, "
              f"RAM {fmt_int(r.budget.ram) if r.budget.ram is not None else 'any'} B for the arena")
    lines = [f"# Fit of {model.name}", "", f"Budget: {budget} ({r.budget.source}).", "",
             f"Chosen: {fmt_int(r.chosen.weight_bytes)} B of weights, {fmt_int(r.chosen.arena)} B arena, "
             f"output SQNR {fmt_db(r.chosen.sqnr_db)} dB"
             + (f", accuracy {_acc(r.chosen)} % (float {100 * r.float_accuracy:.2f} %)"
                if r.float_accuracy is not None else "") + ".", "",
             "Reproduce with:", "", "    " + r.command, "",
             *([f"The exported weights were then fine-tuned for {r.finetune['epochs']} epoch(s) "
                "(quantization-aware training): the command gives the configuration before it.", ""]
               if r.finetune and r.finetune["kept"] else []), "## Per layer", "", layers_table(r.layers).markdown(),
             "", "## Candidates measured end to end", "", points_table(r.points).markdown(), "",
             "![accuracy against flash](fit_front.png)", ""]
    (out_dir / "fit.md").write_text("\n".join(lines))
    plot_front(r, out_dir / "fit_front.png")
    return ["fit.json", "fit.md", "fit_front.png"]


def plot_front(r: FitResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labelled = r.float_accuracy is not None

    def y(p: Point) -> float:
        return 100 * p.accuracy if labelled else p.sqnr_db

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([p.weight_bytes for p in r.points], [y(p) for p in r.points], c="gray", alpha=0.6,
               label="measured candidates")
    front = sorted((p for p in r.points if p.pareto), key=lambda p: p.weight_bytes)
    ax.plot([p.weight_bytes for p in front], [y(p) for p in front], "r.-", label="Pareto front")
    ax.scatter([r.chosen.weight_bytes], [y(r.chosen)], marker="*", s=200, c="gold", edgecolors="k", zorder=5,
               label="chosen")
    if r.budget.flash is not None:
        ax.axvline(r.budget.flash, color="b", ls="--", lw=1, label="flash budget")
    if labelled:
        ax.axhline(100 * r.float_accuracy, color="k", ls=":", lw=1, label="float model")
    ax.set_xscale("log")
    ax.set_xlabel("weights in flash (bytes)")
    ax.set_ylabel("validation accuracy (%)" if labelled else "output SQNR vs float (dB)")
    ax.set_title("Accuracy against flash")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""`edgecompile explore`: the rank/bits trade-off of a model without retraining.

Every configuration is compiled exactly as `export` would compile it (passes,
calibration, quantization, sparse storage) and scored on a labelled validation
set with the integer simulator, which the C matches bit for bit; its memory
figure is the weight bytes the generated C would hold.  beta of a configuration
is the share of sum(sigma^2) kept over all factorizable layers (layers left
whole keep all of theirs), as a scree plot shows.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterable

import numpy as np

from . import simulate
from .calibration import load_array, load_labels, match_shape
from .compiler import CompileOptions, check_weights, compile_model, optimize
from .errors import EdgeCompileError
from .frontend import load_model
from .passes.factorize import RankSpec, layer_spectra
from .report import Table, fmt_int


@dataclass
class Config:
    label: str
    bits: int
    rank: int | None = None
    energy: float | None = None


@dataclass
class Point:
    label: str
    bits: int
    rank: int | None
    energy: float | None
    beta: float
    weight_bytes: int
    saved_percent: float
    float_accuracy: float
    int_accuracy: float
    ranks: dict[str, int] = field(default_factory=dict)
    pareto: bool = False


@dataclass
class ExploreResult:
    baseline_bytes: int
    points: list[Point]
    spectra: dict[str, list[float]]
    files: list[str]


def configs(ranks: list[int], energies: list[float], bits: list[int]) -> list[Config]:
    out = []
    for b in bits:
        out.append(Config(f"dense b{b}", b))
        out += [Config(f"rank {r} b{b}", b, rank=r) for r in ranks]
        out += [Config(f"beta {e:g} b{b}", b, energy=e) for e in energies]
    return out


def evaluate(imported, calib: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, cfg: Config):
    spec = RankSpec.parse(cfg.rank, cfg.energy)
    # the export's own pipeline, so that every figure is what `export` with these options gives
    loaded = SimpleNamespace(graph=copy.deepcopy(imported), source="explore")
    compiled = compile_model(loaded, calib, CompileOptions(bits=cfg.bits, ranks=spec))
    graph, decisions = compiled.graph, compiled.factorization
    weight_bytes = sum(n.flash_bytes(graph) for n in graph.nodes)
    float_acc = float(np.mean(graph.run_float(val_x).reshape(len(val_x), -1).argmax(1) == val_y))
    int_acc = float(np.mean(simulate.run_dequantized(graph, val_x).reshape(len(val_x), -1).argmax(1) == val_y))
    return decisions, weight_bytes, float_acc, int_acc


def global_beta(decisions, spectra: dict[str, np.ndarray]) -> float:
    total = sum(float(np.sum(s ** 2)) for s in spectra.values())
    kept = {d.layer: d.energy * d.total_energy for d in decisions if d.applied}
    full = sum(float(np.sum(s ** 2)) for name, s in spectra.items() if name not in kept)
    return float((sum(kept.values()) + full) / total) if total > 0 else 1.0


def mark_pareto(points: list[Point]) -> None:
    """A point is on the front if no other saves at least as much memory with at least the
    accuracy, and strictly more of one."""
    for p in points:
        p.pareto = not any((q.saved_percent >= p.saved_percent and q.int_accuracy >= p.int_accuracy)
                           and (q.saved_percent > p.saved_percent or q.int_accuracy > p.int_accuracy)
                           for q in points)


def explore(model: Path, calib_path: Path, val_path: Path, labels_path: Path, out_dir: Path,
            ranks: list[int], energies: list[float], bits: list[int], input_shape=None,
            trust_pickle: bool = False, imports: tuple[str, ...] = (),
            progress: Callable[[Iterable], Iterable] | None = None) -> ExploreResult:
    if not bits:
        raise EdgeCompileError("--bits: give at least one weight width to sweep, e.g. 8 or 8,6,4")
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgeCompileError(f"-o {out_dir}: exists and is not a folder; choose a folder for the results")
    calib = load_array(calib_path)
    shape = input_shape or (tuple(calib.shape[1:]) if model.suffix.lower() != ".onnx" else None)
    loaded = load_model(model, shape, trust_pickle, imports)
    check_weights(loaded.graph, str(model))
    if len(loaded.graph.inputs) != 1 or len(loaded.graph.outputs) != 1:
        raise EdgeCompileError(f"{model}: explore sweeps models with one input and one output; this one has "
                               f"{len(loaded.graph.inputs)} and {len(loaded.graph.outputs)} (export handles it)")
    calib = match_shape(calib, loaded.graph.input.shape, str(calib_path))[:512]
    val_x = match_shape(load_array(val_path, "validation inputs"), loaded.graph.input.shape, str(val_path),
                        "validation inputs")
    val_y = load_labels(labels_path, len(val_x))
    classes = int(np.prod(loaded.graph.output.shape))
    if val_y.min() < 0 or val_y.max() >= classes:
        raise EdgeCompileError(f"{labels_path}: labels must be class indices 0..{classes - 1} (the model has "
                               f"{classes} outputs); found {int(val_y.min())}..{int(val_y.max())}")
    for b in bits:
        if not 2 <= b <= 8:
            raise EdgeCompileError(f"--bits {b}: weights can have 2 to 8 bits")
    for r in ranks:
        if r < 1:
            raise EdgeCompileError(f"--ranks: rank {r} must be a positive integer")
    for e in energies:
        if not 0 < e <= 1:
            raise EdgeCompileError(f"--energies: beta {e} must be in (0, 1]")
    folded = copy.deepcopy(loaded.graph)
    optimize(folded, CompileOptions())
    spectra = layer_spectra(folded)
    if not spectra:
        raise EdgeCompileError(f"{model}: no Linear layer to factorize")
    cfgs = configs(ranks, energies, bits)
    points: list[Point] = []
    baseline = None
    iterator = progress(cfgs) if progress else cfgs
    for cfg in iterator:
        decisions, weight_bytes, float_acc, int_acc = evaluate(loaded.graph, calib, val_x, val_y, cfg)
        if baseline is None:
            baseline = weight_bytes  # the dense model at the first --bits value
        points.append(Point(cfg.label, cfg.bits, cfg.rank, cfg.energy, global_beta(decisions, spectra),
                            weight_bytes, 100.0 * (1 - weight_bytes / baseline), float_acc, int_acc,
                            {d.layer: d.rank for d in decisions if d.applied}))
    mark_pareto(points)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = plot(points, spectra, out_dir)
    result = ExploreResult(baseline, points, {k: v.tolist() for k, v in spectra.items()}, files)
    (out_dir / "explore.json").write_text(json.dumps({"baseline_weight_bytes": baseline,
                                                      "points": [asdict(p) for p in points],
                                                      "spectra": result.spectra}, indent=1) + "\n")
    (out_dir / "explore.md").write_text(f"# Rank/bits exploration of {model.name}\n\n"
                                        f"Baseline: dense at {bits[0]} bits, {baseline:,} weight bytes.\n\n"
                                        + table(points).markdown() + "\n")
    files += ["explore.json", "explore.md"]
    return result


def table(points: list[Point]) -> Table:
    rows = [[p.label, str(p.bits), f"{p.beta:.3f}", fmt_int(p.weight_bytes), f"{p.saved_percent:.1f}",
             f"{100 * p.float_accuracy:.2f}", f"{100 * p.int_accuracy:.2f}", "*" if p.pareto else "",
             " ".join(f"{k}:{v}" for k, v in p.ranks.items()) or "-"] for p in points]
    return Table(["config", "bits", "beta", "weight B", "saved %", "float acc %", "int acc %", "pareto", "ranks"],
                 rows, {1, 2, 3, 4, 5, 6})


def plot(points: list[Point], spectra: dict[str, np.ndarray], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    markers = {b: m for b, m in zip(sorted({p.bits for p in points}, reverse=True), "os^Dvx")}

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        files.append(name)

    def finish(ax, xlabel, ylabel, title, name):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save(ax.figure, name)

    _, ax = plt.subplots(figsize=(7, 4.5))
    for b, marker in markers.items():
        sel = [p for p in points if p.bits == b]
        ax.scatter([p.saved_percent for p in sel], [100 * p.int_accuracy for p in sel], marker=marker,
                   label=f"{b}-bit weights", alpha=0.8)
    front = sorted((p for p in points if p.pareto), key=lambda p: p.saved_percent)
    ax.plot([p.saved_percent for p in front], [100 * p.int_accuracy for p in front], "r--", lw=1.2,
            label="Pareto front")
    for p in front:
        ax.annotate(p.label, (p.saved_percent, 100 * p.int_accuracy), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    finish(ax, "weight memory saved vs dense (%)", "integer model accuracy (%)", "Memory saved vs accuracy",
           "tradeoff_memory_accuracy.png")

    ranked = sorted(points, key=lambda p: p.beta)
    _, ax = plt.subplots(figsize=(6, 4))
    for b, marker in markers.items():
        sel = [p for p in ranked if p.bits == b]
        ax.plot([p.beta for p in sel], [p.saved_percent for p in sel], marker=marker, ls="", label=f"{b}-bit")
    finish(ax, "beta: share of variance kept", "weight memory saved (%)", "Memory saved vs beta",
           "memory_vs_beta.png")

    _, ax = plt.subplots(figsize=(6, 4))
    for b, marker in markers.items():
        sel = [p for p in ranked if p.bits == b]
        ax.plot([p.beta for p in sel], [100 * p.int_accuracy for p in sel], marker=marker, ls="",
                label=f"integer, {b}-bit")
    sel = [p for p in ranked if p.bits == max(markers)]
    ax.plot([p.beta for p in sel], [100 * p.float_accuracy for p in sel], "k.", alpha=0.5, label="float")
    finish(ax, "beta: share of variance kept", "accuracy (%)", "Accuracy vs beta", "accuracy_vs_beta.png")

    for name, s in spectra.items():
        s = np.asarray(s, dtype=np.float64)
        share = np.cumsum(s ** 2) / np.sum(s ** 2)
        fig, ax = plt.subplots(figsize=(6, 4))
        ks = np.arange(1, len(s) + 1)
        ax.semilogy(ks, s, "b.-", ms=3, label="singular value")
        ax.set_xlabel("rank")
        ax.set_ylabel("singular value", color="b")
        twin = ax.twinx()
        twin.plot(ks, share, "g-", label="cumulative beta")
        twin.set_ylabel("cumulative share of variance (beta)", color="g")
        twin.set_ylim(0, 1.02)
        for level in (0.9, 0.95, 0.99):
            r = int(np.searchsorted(share, level * (1 - 1e-12)) + 1)
            twin.axvline(r, color="gray", ls=":", lw=0.8)
            twin.annotate(f"{level:g}: r={r}", (r, level), fontsize=7, xytext=(3, -10), textcoords="offset points")
        ax.set_title(f"Scree plot of {name} ({len(s)} singular values)")
        save(fig, f"scree_{name.replace('/', '_')}.png")
    return files

"""The compilation pipeline: imported graph -> passes -> calibrated, quantized, planned graph."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import ops
from .ops import activation
from .calibration import synthetic_inputs
from .errors import EdgeCompileError
from .frontend import LoadedModel
from .ir import Graph
from .passes.cleanup import drop_final_softmax, remove_identities
from .passes.factorize import FactorizeDecision, RankSpec, factorize
from .passes.fold_batchnorm import fold_batchnorm
from .passes.fold_pad import fold_pads
from .passes.fuse_activation import fuse_activations
from .passes.plan_memory import MemoryPlan, plan_memory
from .passes.quantize import QuantOptions, TensorRange, calibrate, quantize_graph
from .passes.sparsify import SparsityDecision, sparsify

Log = Callable[[str], None]


@dataclass
class CompileOptions:
    bits: int = 8
    layer_bits: dict[str, int] = field(default_factory=dict)
    ranks: RankSpec = field(default_factory=RankSpec)
    sparse: str = "auto"  # auto | on | off
    drop_softmax: bool = False
    per_channel: bool | None = None  # None: the default, per channel
    calib_method: str = "mse"
    max_calib_samples: int = 1024


@dataclass
class Compiled:
    graph: Graph  # quantized, float params kept for reference
    plan: MemoryPlan
    factorization: list[FactorizeDecision]
    ranges: dict[str, TensorRange]
    calib: np.ndarray
    calib_is_synthetic: bool
    imported: Graph  # the graph as imported, before any pass (float oracle comparisons)
    sparsity: list[SparsityDecision] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def check_weights(graph: Graph, source: str) -> None:
    for node in graph.nodes:
        for key, value in node.params.items():
            if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                raise EdgeCompileError(f"{source}: layer '{node.name}' has NaN or Inf in its {key}; "
                                       "the model is broken (check training) and cannot be quantized")


def check_options(graph: Graph, options: CompileOptions) -> None:
    if not 2 <= options.bits <= 8:
        raise EdgeCompileError(f"--bits {options.bits}: weights can have 2 to 8 bits")


def optimize(graph: Graph, options: CompileOptions) -> list[FactorizeDecision]:
    """The graph passes, in order: cleanup, Pad and BN folding, activation fusion, factorization."""
    remove_identities(graph)
    if options.drop_softmax:
        drop_final_softmax(graph)
    fold_pads(graph)
    fold_batchnorm(graph)
    fuse_activations(graph)
    decisions = factorize(graph, options.ranks) if options.ranks.active else []
    leftover = [n for n in graph.nodes if isinstance(n, (ops.BatchNorm, ops.Identity, ops.Pad))]
    if leftover:
        raise AssertionError(f"passes left float-only nodes: {leftover}")
    graph.check()
    return decisions


def apply_batchnorm_ranges(graph: Graph, ranges: dict[str, TensorRange]) -> None:
    """Without real calibration data, trust BatchNorm statistics where the model has them."""
    for node in graph.nodes:
        bn = node.attrs.get("bn_range")
        if bn is None:
            continue
        lo, hi = bn
        act = node.attrs.get("act")
        if act is not None:
            lo, hi = (float(v) for v in activation.apply_float(act, np.array([lo, hi])))
        out = node.outputs[0]
        r = ranges[out]
        r.lo, r.hi = min(r.lo, lo), max(r.hi, hi)


def compile_model(loaded: LoadedModel, calib: np.ndarray | None, options: CompileOptions,
                  log: Log = lambda _msg: None) -> Compiled:
    timings = {}
    graph = loaded.graph
    check_weights(graph, str(loaded.source))
    check_options(graph, options)
    imported = copy.deepcopy(graph)
    t0 = time.perf_counter()
    decisions = optimize(graph, options)
    timings["passes"] = time.perf_counter() - t0
    synthetic = calib is None
    samples = synthetic_inputs(graph.input.shape) if synthetic else calib[: options.max_calib_samples]
    log(f"calibrating on {len(samples)} {'synthetic N(0,1)' if synthetic else ''} samples".replace("  ", " "))
    t0 = time.perf_counter()
    ranges = calibrate(graph, samples)
    if synthetic:
        apply_batchnorm_ranges(graph, ranges)
    method = "minmax" if synthetic else options.calib_method  # synthetic data has no real distribution
    quantize_graph(graph, ranges, QuantOptions(options.bits, dict(options.layer_bits),
                                               per_channel=options.per_channel, calib_method=method))
    sparsity = sparsify(graph, options.sparse)
    timings["quantize"] = time.perf_counter() - t0
    plan = plan_memory(graph)
    return Compiled(graph, plan, decisions, ranges, samples, synthetic, imported, sparsity, timings)

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
from .formats import TensorRange
from .frontend import LoadedModel
from .ir import Graph
from .passes.bias_correction import correct_biases
from .passes.cleanup import drop_final_softmax, remove_identities
from .passes.auto_equalize import equalize_if_better
from .passes.equalize import equalize
from .passes.snap_ranges import snap_ranges_if_better
from .passes.factorize import FactorizeDecision, RankSpec, factorize
from .passes.fold_batchnorm import fold_batchnorm
from .passes.fold_pad import fold_pads
from .passes.format_search import search_formats
from .passes.fuse_activation import fuse_activations
from .passes.output_correction import correct_outputs
from .passes.plan_memory import PATCH_BUDGET, MemoryPlan, plan_memory
from .passes.prune import prune
from .passes.precision import check_layers, choose_precision
from .passes.quantize import QuantOptions, calibrate, final_tensors, quantize_graph
from .passes.sparsify import SparsityDecision, compressed_layers, sparsify
from .passes.weight_rounding import round_weights_if_better

WEIGHT_ROUNDING = ("error-feedback", "nearest")

Log = Callable[[str], None]


@dataclass
class CompileOptions:
    bits: int = 8
    layer_bits: dict[str, int] = field(default_factory=dict)
    ranks: RankSpec = field(default_factory=RankSpec)
    sparse: str = "auto"  # auto | on | off
    prune: dict[str, float] = field(default_factory=dict)  # layer -> share of its weights zeroed (passes/prune.py)
    drop_softmax: bool = False
    per_channel: bool | None = None  # None: the default, per channel
    calib_method: str = "mse"
    weight_method: str = "minmax"
    bias_correction: bool = False
    output_correction: bool = True  # each output's least-squares gain and offset (passes/output_correction.py)
    weight_rounding: str = "error-feedback"  # or "nearest" (see passes/weight_rounding.py)
    format_search: bool = True  # activation formats for the output error (see passes/format_search.py)
    snap_ranges: bool = True  # rescale tensors to fill their power-of-two formats (passes/snap_ranges.py)
    unsigned_relu: bool = True  # ReLU outputs as unsigned codes where the readers allow (passes/quantize.py)
    asymmetric: bool = True  # a zero point for every tensor whose writer and readers allow one (same place)
    act_bits: int = 8
    act_layer_bits: dict[str, int] = field(default_factory=dict)
    act_auto: bool = False
    output_bits: int | str = "auto"  # the model outputs' width: 8, 16, or auto (passes/quantize.py output_width)
    param_overrides: dict[str, dict] = field(default_factory=dict)  # layer -> float params (QAT's trained ones)
    fixed_formats: dict[str, int] | None = None  # tensor -> frac bits (QAT's)
    max_calib_samples: int = 1024
    equalize: str = "auto"  # off | auto (passes/auto_equalize.py) | weights | activations | noise, [-pow2]
    memory_plan: str = "auto"  # auto | in-place | layer (passes/plan_memory.py)
    patch_budget: float = PATCH_BUDGET  # cost bands may add, a fraction of the model's MACs (passes/patches.py)


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
    precision: object = None  # passes.precision.PrecisionReport when any activation is 16-bit
    softmax_dropped: bool = False  # --drop-softmax removed the final Softmax: the outputs are logits
    format_search: object = None  # passes.format_search.SearchResult when the search ran
    rounded_layers: int = 0  # layers whose weights error-feedback rounding changed
    output_corrections: list = field(default_factory=list)  # passes.output_correction.Correction, one per layer


def check_weights(graph: Graph, source: str) -> None:
    for node in graph.nodes:
        for key, value in node.params.items():
            if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                raise EdgeCompileError(f"{source}: layer '{node.name}' has NaN or Inf in its {key}; "
                                       "the model is broken (check training) and cannot be quantized")
            if key.startswith("weight"):
                check_outlier(np.asarray(value, dtype=np.float64), f"{source}: layer '{node.name}'", key)


def check_outlier(w: np.ndarray, where: str, key: str) -> None:
    """Refuse a weight so large that the layer's power-of-two scale at 8 bits (the finest) rounds
    every other nonzero weight to zero: the compiled layer would keep that one weight alone."""
    mags = np.abs(w).reshape(-1)
    if mags.size < 2:
        return
    i = int(np.argmax(mags))
    rest = np.delete(mags, i)
    rest = rest[rest > 0]
    step = 2.0 ** np.ceil(np.log2(mags[i] / 127)) if mags[i] > 0 else 0.0
    if rest.size and float(rest.max()) < step / 2:
        index = tuple(int(k) for k in np.unravel_index(i, w.shape))
        raise EdgeCompileError(f"{where} has a {key} of {w.reshape(-1)[i]:.3g} at {list(index)} while its other "
                               f"{key}s are at most {rest.max():.3g} in magnitude: quantized to 8 bits with one "
                               f"scale, every other {key} would round to zero. This is most likely a training "
                               f"bug or a damaged file: fix or clip that {key} and export again")


OUTPUT_BITS = (8, 16, "auto")


def check_options(graph: Graph, options: CompileOptions) -> None:
    if not 2 <= options.bits <= 8:
        raise EdgeCompileError(f"--bits {options.bits}: weights can have 2 to 8 bits")
    if options.output_bits not in OUTPUT_BITS:
        raise EdgeCompileError(f"--output-bits {options.output_bits}: outputs are 8 or 16 bits, or auto")


def check_layer_bits(graph: Graph, options: CompileOptions) -> None:
    """Every LAYER in --bits LAYER=N must name a layer with weights (as the report prints it)."""
    weighted = [n.name for n in graph.nodes if isinstance(n, ops.weighted.WeightedOp)]
    known = set(weighted) | {n.rsplit(".", 1)[0] for n in weighted if n.endswith((".V", ".U"))}
    unknown = sorted(set(options.layer_bits) - known)
    cells = sorted(set(unknown) & {n.name for n in graph.nodes if getattr(n, "body", None) is not None})
    if cells:
        raise EdgeCompileError(f"--bits {cells[0]}={options.layer_bits[cells[0]]}: a recurrent cell takes the "
                               f"default width (--bits N); per-layer widths are for Linear and Conv2d layers")
    if unknown:
        raise EdgeCompileError(f"--bits names layer(s) {', '.join(unknown)} that have no weights or do not exist; "
                               f"layers with weights: {', '.join(sorted(known))}")


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


def quant_options(options: CompileOptions, graph: Graph, synthetic: bool = False) -> QuantOptions:
    """What quantize_graph needs of `options` for `graph` (after the graph passes)."""
    method = "minmax" if synthetic else options.calib_method  # synthetic data has no real distribution
    q = QuantOptions(options.bits, dict(options.layer_bits), act_bits=options.act_bits,
                     act_layer_bits=dict(options.act_layer_bits), output_bits=options.output_bits,
                     per_channel=options.per_channel, calib_method=method, weight_method=options.weight_method,
                     fixed_formats=options.fixed_formats)
    if options.output_bits == "auto":  # which output writers keep int8 to stay compressed
        writers = [graph.producer(t) for t in final_tensors(graph)]  # of the outputs and what they are views of
        q.compressed_layers = frozenset(compressed_layers(graph, [w for w in writers if w is not None],
                                                          options.sparse, q.weight_bits_for))
    return q


def apply_param_overrides(graph: Graph, overrides: dict[str, dict]) -> None:
    """Replace layers' float parameters (fine-tuned ones) after the passes, by layer name."""
    names = {n.name: n for n in graph.nodes}
    for layer, params in overrides.items():
        if layer not in names:
            raise EdgeCompileError(f"trained parameters for layer '{layer}', which the compiled graph does not have")
        for key, value in params.items():
            names[layer].params[key] = np.asarray(value, dtype=np.float32)


def compile_model(loaded: LoadedModel, calib: np.ndarray | None, options: CompileOptions,
                  log: Log = lambda _msg: None) -> Compiled:
    timings = {}
    graph = loaded.graph
    check_weights(graph, str(loaded.source))
    check_options(graph, options)
    imported = copy.deepcopy(graph)
    softmaxes = sum(isinstance(n, ops.Softmax) for n in graph.nodes)
    t0 = time.perf_counter()
    try:
        decisions = optimize(graph, options)
    except EdgeCompileError as exc:  # a layer the graph passes cannot handle: say which file it is in
        raise EdgeCompileError(f"{loaded.source}: {exc}") from None
    softmax_dropped = sum(isinstance(n, ops.Softmax) for n in graph.nodes) < softmaxes  # by --drop-softmax
    check_layer_bits(graph, options)
    apply_param_overrides(graph, options.param_overrides)
    if options.prune:
        prune(graph, options.prune)
    synthetic = calib is None
    samples = synthetic_inputs(graph.sample_shape) if synthetic else calib[: options.max_calib_samples]
    if options.equalize not in ("off", "auto") and options.fixed_formats is None:  # QAT's formats fit its weights
        equalize(graph, samples, options.equalize)
    timings["passes"] = time.perf_counter() - t0
    log(f"calibrating on {len(samples)} {'synthetic N(0,1)' if synthetic else ''} samples".replace("  ", " "))
    t0 = lap = time.perf_counter()

    def took(step: str) -> None:  # the seconds of each quantization step, within timings["quantize"]
        nonlocal lap
        now = time.perf_counter()
        timings[step] = timings.get(step, 0.0) + now - lap
        lap = now

    ranges = calibrate(graph, samples)
    took("calibrate")
    if synthetic:
        apply_batchnorm_ranges(graph, ranges)
    qopts = quant_options(options, graph, synthetic)
    qopts.unsigned_relu = options.unsigned_relu and not options.fixed_formats  # QAT trains signed formats
    qopts.asymmetric = options.asymmetric and not options.fixed_formats
    # Trained formats and weights (QAT's) and synthetic calibration keep the float graph as it is.
    rescalable = not options.fixed_formats and not options.param_overrides and not synthetic
    if rescalable and options.equalize == "auto":
        equalize_if_better(graph, ranges, qopts, samples, snap=options.snap_ranges, sparse=options.sparse)
    elif rescalable and options.snap_ranges:
        snap_ranges_if_better(graph, ranges, qopts, samples)
    took("equalize_and_snap")
    precision = None
    if options.act_auto or options.act_bits == 16 or 16 in options.act_layer_bits.values():
        check_layers(graph, options.act_layer_bits)
        chosen, precision = choose_precision(graph, ranges, qopts, samples, options.act_auto)
        qopts.act_layer_bits.update(chosen)
    quantize_graph(graph, ranges, qopts)
    took("quantize_graph")
    search = rounded = None
    # Trained formats and weights (quantization-aware training) are kept as they are: the C must
    # equal the trained model, so neither the format search nor the weight rounding may move them.
    if options.format_search and not options.fixed_formats and not synthetic:
        log("searching activation formats for the output error")
        search = search_formats(graph, qopts, samples)
        graph.notes.append(f"format search: {len(search.changed)} tensor format(s) moved, output SQNR on the "
                           f"validation half {search.sqnr_before_db:.1f} -> {search.sqnr_after_db:.1f} dB"
                           if search.changed else "format search: the calibrated formats kept (no confirmed gain)")
        took("format_search")
    if options.weight_rounding == "error-feedback" and not options.param_overrides and not synthetic:
        rounded = round_weights_if_better(graph, samples)
        took("weight_rounding")
    elif options.weight_rounding not in WEIGHT_ROUNDING:
        raise EdgeCompileError(f"--weight-rounding {options.weight_rounding}: choose one of "
                               f"{', '.join(WEIGHT_ROUNDING)}")
    corrections = []
    if options.output_correction and not options.fixed_formats and not options.param_overrides and not synthetic:
        corrections = correct_outputs(graph, samples, qopts, reround=bool(rounded))
        took("output_correction")
    if options.bias_correction:
        correct_biases(graph, samples)
    sparsity = sparsify(graph, options.sparse)
    took("sparsify")
    timings["quantize"] = time.perf_counter() - t0
    try:
        plan = plan_memory(graph, options.memory_plan, options.patch_budget)
    except EdgeCompileError as exc:
        raise EdgeCompileError(f"{loaded.source}: {exc}") from None
    timings["plan_memory"] = time.perf_counter() - t0 - timings["quantize"]
    return Compiled(graph, plan, decisions, ranges, samples, synthetic, imported, sparsity, timings, precision,
                    softmax_dropped, search, rounded or 0, corrections)

"""16-bit activations where 8 bits lose too much (--act-bits 16 | auto | LAYER=16).

int16 activations with int8 weights: every kernel has an _any variant that takes each
tensor's width, and the compiler's proofs use the wider range (|x| <= 2^15).  The model's
input and output, table lookups, softmax and recurrent cells stay int8.

auto: quantize at 8 bits, then try first the layers that lose the most SQNR themselves
(their input's SQNR against the float graph minus their output's), giving each a 16-bit output; keep a change only if the model's
output SQNR gains at least `min_gain_db`, and stop after `max_layers` kept.  What it
costs (arena bytes) and gains (SQNR) is reported either way.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .. import metrics, simulate
from ..errors import EdgeCompileError
from ..ir import Graph
from .plan_memory import plan_memory
from .quantize import QuantOptions, assign_activation_bits, quantize_graph


@dataclass
class PrecisionReport:
    wide_layers: list[str] = field(default_factory=list)  # layers whose outputs are int16
    sqnr_8bit_db: float = 0.0
    sqnr_db: float = 0.0
    arena_8bit: int = 0
    arena: int = 0


def parse_act_bits(values) -> tuple[int, dict[str, int], bool]:
    """`--act-bits 16`, `--act-bits auto`, `--act-bits conv2=16,fc1=16` -> (default, per layer, auto)."""
    default, layers, auto = 8, {}, False
    items = [i.strip() for v in ([values] if isinstance(values, (int, str)) else values)
             for i in str(v).split(",") if i.strip()]
    for item in items:
        if item == "auto":
            auto = True
            continue
        name, _, value = item.rpartition("=")
        if value not in ("8", "16"):
            raise EdgeCompileError(f"--act-bits {item}: activations are 8 or 16 bits (or auto)")
        if name:
            layers[name] = int(value)
        else:
            default = int(value)
    return default, layers, auto


def check_layers(graph: Graph, layers: dict[str, int]) -> None:
    names = {n.name for n in graph.nodes if not n.is_alias}
    unknown = sorted(set(layers) - names)
    if unknown:
        raise EdgeCompileError(f"--act-bits names layer(s) {', '.join(unknown)} that do not exist; "
                               f"layers: {', '.join(sorted(names))}")


def output_sqnr(graph: Graph, x: np.ndarray) -> float:
    return metrics.sqnr_db(graph.run_float(x), simulate.run_dequantized(graph, x))


def _quantized(graph: Graph, ranges, options: QuantOptions, layers: dict[str, int]) -> Graph:
    g = copy.deepcopy(graph)
    opts = copy.copy(options)
    opts.act_layer_bits = {**options.act_layer_bits, **layers}
    quantize_graph(g, ranges, opts)
    return g


def choose_precision(graph: Graph, ranges, options: QuantOptions, samples: np.ndarray, auto: bool,
                     max_layers: int = 4, min_gain_db: float = 0.5) -> tuple[dict[str, int], PrecisionReport]:
    """Per-layer output widths to use (for auto), and what 16 bits costs and gains against all-8-bit."""
    x = samples[:128]
    eight = copy.copy(options)
    eight.act_bits, eight.act_layer_bits = 8, {}
    base = _quantized(graph, ranges, eight, {})
    report = PrecisionReport(sqnr_8bit_db=output_sqnr(base, x), arena_8bit=plan_memory(base).arena_size)
    chosen: dict[str, int] = {}
    if auto:
        per_tensor = metrics.per_tensor_sqnr(base, x)
        probe = copy.deepcopy(graph)
        assign_activation_bits(probe, QuantOptions(act_bits=16))  # which outputs may be 16-bit at all
        per_tensor.update({t: float("inf") for t in base.inputs})

        def loss(node) -> float:  # how much SQNR the layer itself loses
            return min(per_tensor[t] for t in node.inputs) - per_tensor[node.outputs[0]]

        candidates = sorted((n for n in base.nodes if not n.is_alias and probe.tensors[n.outputs[0]].bits == 16),
                            key=loss, reverse=True)
        current = report.sqnr_8bit_db
        for node in candidates[: 2 * max_layers]:
            trial = {**chosen, node.name: 16}
            sqnr = output_sqnr(_quantized(graph, ranges, eight, trial), x)
            if sqnr >= current + min_gain_db:
                chosen, current = trial, sqnr
            if len(chosen) >= max_layers:
                break
    final = _quantized(graph, ranges, options, chosen)
    report.wide_layers = [n.name for n in final.nodes if not n.is_alias and final.tensors[n.outputs[0]].bits == 16]
    report.sqnr_db, report.arena = output_sqnr(final, x), plan_memory(final).arena_size
    return chosen, report

"""--equalize auto: cross-layer equalization where it measurably helps, at no cost in speed.

The "noise" equalization of passes/equalize.py gained 1-8 dB of held-out output SQNR on some
models and cost others up to 3 dB (benchmarks/bench_accuracy.py).  Neither its own noise
estimate nor a plain quantization of both graphs told which; the graph as the pipeline hands it
to the later passes does: both the plain and the equalized graph get their range snapping
(snap_ranges_if_better), both are quantized by quantize_graph, and the equalized one is kept
when its output error on the calibration samples is lower by MIN_GAIN_DB.  That choice agreed
with the held-out sign on every model where it equalized (and left alone every model it would
have hurt).  It costs one more calibration, snapping and quantization of the model.

Accuracy alone is not enough: a channel factor that shrinks a layer's weights can quantize
many of them to 0, so that --sparse stores the layer sparse (on the VWW MobileNetV1 of
benchmarks/bench_speed.py that took 1.5x the instructions on an M4 and 2.2x on an M55), and one
that grows them can need left shifts, which the fast kernels requantize out of line.  So the
equalized copy is also refused when a layer of it would be stored compressed, or shift left,
where the plain graph's is not; equalization is then tried again with those layers left as
they are (RETRIES times).
"""
from __future__ import annotations

import copy

import numpy as np

from ..formats import TensorRange
from ..ir import Graph
from ..simulate import output_error
from ..ops.weighted import shifts_left
from .equalize import equalize
from .quantize import QuantOptions, calibrate
from .snap_ranges import adopt, quantized_copy, snap_ranges_if_better
from .sparsify import sparsify

METHOD = "noise"
MIN_GAIN_DB = 0.2
SAMPLES = 128  # calibration samples the two graphs are compared on
RETRIES = 2  # equalizations tried again without the layers the last one made slower


def equalize_if_better(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions, calib: np.ndarray,
                       snap: bool = True, sparse: str = "auto") -> bool:
    """Prepare the float graph for quantization (range snapping when `snap`), and an equalized copy
    the same way; keep the copy when it quantizes with MIN_GAIN_DB less output error and no slower
    layer (`sparse`: the --sparse mode).  `graph` and `ranges` (calibrate's, on it) are updated in
    place; returns whether equalization was kept."""
    unsnapped = copy.deepcopy(graph)  # snapping may rescale: the copies start from the graph as it came
    if snap:
        snap_ranges_if_better(graph, ranges, options, calib)
    x = calib[:SAMPLES]
    reference = np.asarray(graph.run_float(x), dtype=np.float64)  # the function equalization keeps
    plain = quantized_copy(graph, ranges, options)
    keep: set[str] = set()  # layers left as they are, because equalizing them made them slower
    for _ in range(RETRIES + 1):
        candidate = copy.deepcopy(unsnapped)
        if equalize(candidate, calib, METHOD, keep=frozenset(keep)) == 0:
            return False
        candidate_ranges = calibrate(candidate, calib)
        if snap:
            snap_ranges_if_better(candidate, candidate_ranges, options, calib)
        equalized = quantized_copy(candidate, candidate_ranges, options)
        slower = slower_layers(plain, equalized, sparse)
        if not slower:
            break
        keep.update(slower)
    else:
        graph.notes.append(f"cross-layer equalization ({METHOD}) not kept: it made {', '.join(sorted(keep))} "
                           "slower (sparse weights or left shifts)")
        return False
    if output_error(equalized, x, reference) < output_error(plain, x, reference) * 10.0 ** (-MIN_GAIN_DB / 10.0):
        graph.notes[:] = candidate.notes  # its history: the plain graph's snapping was not kept
        adopt(graph, ranges, candidate, candidate_ranges)
        if keep:
            graph.notes.append(f"cross-layer equalization ({METHOD}) left {', '.join(sorted(keep))} as they were: "
                               "equalizing them made them slower")
        return True
    graph.notes.append(f"cross-layer equalization ({METHOD}) not kept: the output error on the calibration "
                       f"samples did not fall by {MIN_GAIN_DB} dB")
    return False


def slower_layers(plain: Graph, equalized: Graph, sparse: str) -> set[str]:
    """The layers of the quantized `equalized` graph stored sparse or shifting left where those of
    `plain` (the same nodes) are not."""
    def slow(quantized: Graph) -> set[str]:
        found = {n.name for n in quantized.nodes if shifts_left(n.qparams)}
        return found | {d.layer for d in sparsify(copy.deepcopy(quantized), sparse) if d.format != "dense"}
    return slow(equalized) - slow(plain)

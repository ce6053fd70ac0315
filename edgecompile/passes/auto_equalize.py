"""--equalize auto: cross-layer equalization where it measurably helps (opt-in).

The "noise" equalization of passes/equalize.py gained 1-8 dB of held-out output SQNR on some
models and cost others up to 3 dB (benchmarks/bench_accuracy.py).  Neither its own noise
estimate nor a plain quantization of both graphs told which; the graph as the pipeline hands it
to the later passes does: both the plain and the equalized graph get their range snapping
(snap_ranges_if_better), both are quantized by quantize_graph, and the equalized one is kept
when its output error on the calibration samples is lower by MIN_GAIN_DB.  That choice agreed
with the held-out sign on every model where it equalized (and left alone every model it would
have hurt).  It costs one more calibration, snapping and quantization of the model.

Not the default: it judges accuracy only.  On the VWW MobileNetV1 of benchmarks/bench_speed.py
it kept an equalization whose extreme channel factors quantized many weights to 0, so that
--sparse auto stored three pointwise layers sparse, and the model took 1.5x the instructions on
an M4 and 2.2x on an M55.
"""
from __future__ import annotations

import copy

import numpy as np

from ..ir import Graph
from .equalize import equalize
from .quantize import QuantOptions, TensorRange, calibrate
from .snap_ranges import adopt, quantized_error, snap_ranges_if_better

METHOD = "noise"
MIN_GAIN_DB = 0.2
SAMPLES = 128  # calibration samples the two graphs are compared on


def equalize_if_better(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions, calib: np.ndarray,
                       snap: bool = True) -> bool:
    """Prepare the float graph for quantization (range snapping when `snap`), and an equalized copy
    the same way; keep the copy when it quantizes with MIN_GAIN_DB less output error.  `graph` and
    `ranges` (calibrate's, on it) are updated in place; returns whether equalization was kept."""
    candidate = copy.deepcopy(graph)
    if equalize(candidate, calib, METHOD) == 0:
        if snap:
            snap_ranges_if_better(graph, ranges, options, calib)
        return False
    candidate_ranges = calibrate(candidate, calib)
    if snap:
        snap_ranges_if_better(graph, ranges, options, calib)
        snap_ranges_if_better(candidate, candidate_ranges, options, calib)
    x = calib[:SAMPLES]
    reference = np.asarray(graph.run_float(x), dtype=np.float64)  # the function neither pass changes
    before = quantized_error(graph, ranges, options, x, reference)
    after = quantized_error(candidate, candidate_ranges, options, x, reference)
    if after < before * 10.0 ** (-MIN_GAIN_DB / 10.0):
        adopt(graph, ranges, candidate, candidate_ranges)
        return True
    graph.notes.append(f"cross-layer equalization ({METHOD}) not kept: the output error on the calibration "
                       f"samples did not fall by {MIN_GAIN_DB} dB")
    return False

"""Format search: activation formats chosen for the model's output error, not each tensor's own.

Calibration gives every tensor the format that suits its own values (least squared error by
default).  What matters is the error of the model's outputs: a coarser format upstream can
stop saturation that the next layers amplify, a finer one can spend bits where a layer is
sensitive.  This pass starts from the calibrated formats and runs coordinate descent: for
each tensor in turn it tries one frac bit more and one less (and keeps going while that
helps), re-quantizes only the nodes that read or write the tensor, runs the integer
simulator from the first changed node on, and keeps a change only when the output's squared
error against the float model falls by at least MIN_GAIN on each half of the search samples
alone: a change that helps one half and not the other fits those samples' noise, not the
model (deep nets amplify every small change into a random-looking one).  Most trials fail,
and the second half is simulated only for a change that gains on the first.

The search sees only the first half of the calibration samples; what it finds replaces the
calibrated formats only if it also does better, by VALIDATION_GAIN_DB, on the second half,
which it never saw.  A model whose search fits noise keeps its calibrated formats.

The model's outputs keep min/max (they clip nothing calibration saw, see quantize_graph) and its
inputs their calibrated formats (the C API's input format).

Only formats change: every node is quantized by its own quantize(), so the integer model the
search picks is as exact and as safe (int32 proof, legal shifts) as any other.  A move that would
give a layer a left shift it did not have is not tried: the fast kernels requantize those out of
line (measured: one such layer cost the VWW MobileNetV1 0.8 % of its instructions on an M4).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from .. import simulate
from ..ir import Graph
from ..ops.weighted import shifts_left
from .quantize import QuantOptions, final_tensors

MIN_GAIN = 0.01  # a relative fall in output squared error (about 0.04 dB) on each half of the samples
MAX_SAMPLES = 128  # calibration samples used: the first half to search, the second to validate
VALIDATION_GAIN_DB = 0.2  # what the found formats must gain on the validation half to be kept


@dataclass
class SearchResult:
    formats: dict[str, int]  # tensor -> frac bits, every quantized tensor
    changed: dict[str, tuple[int, int]] = field(default_factory=dict)  # tensor -> (calibrated, chosen)
    sqnr_before_db: float = 0.0
    sqnr_after_db: float = 0.0
    trials: int = 0
    seconds: float = 0.0


class FormatSearch:
    """Coordinate descent over the formats of a quantized graph (modified in place)."""

    def __init__(self, graph: Graph, options: QuantOptions, samples: np.ndarray):
        self.graph, self.options = graph, options
        x = samples[:MAX_SAMPLES]
        reference = np.asarray(graph.run_float(x), dtype=np.float64)
        self.signal = float(np.sum(reference ** 2)) or 1.0
        self.index = {n.outputs[0]: i for i, n in enumerate(graph.nodes)}
        self.desired = {t: graph.tensors[t].frac_bits for t in self.index}  # the formats asked of producers
        x_q = simulate.quantize_input(graph, x)
        # Two halves of the samples, each simulated apart (a change must help both, and one that fails
        # the first needs no second), each in parts that threads run at once (simulate.batch_parts).
        cut = (len(x_q) + 1) // 2
        self.halves = [slice(0, cut), slice(cut, len(x_q))]
        self.references = [reference[h] for h in self.halves]
        self.envs = [simulate.map_parts(lambda part, h=h: graph.evaluate_int(graph.split_inputs(x_q[h][part])),
                                        simulate.batch_parts(graph, h.stop - h.start)) for h in self.halves]
        self.error = np.array([self._error(envs, k) for k, envs in enumerate(self.envs)])

    def _error(self, envs: list[dict[str, np.ndarray]], half: int) -> float:
        """The output's squared error on one half of the samples, from its parts' tensors."""
        g = self.graph
        out = np.concatenate([g.join_outputs({t: simulate.dequantize(g, t, env[t]) for t in g.outputs})
                              for env in envs])
        per_sample = ((np.asarray(out, np.float64) - self.references[half]) ** 2).reshape(len(out), -1).sum(1)
        return float(per_sample.sum())

    def sqnr_db(self) -> float:
        error = float(self.error.sum())
        return float("inf") if error == 0 else float(10 * np.log10(self.signal / error))

    def candidates(self) -> list[str]:
        """Tensors whose format is free: produced by a node that chooses it, neither a model input nor
        a model output (min/max: it clips nothing calibration saw, and a finer one would clip the
        largest outputs, a classifier's top logits, on the inputs that reach beyond calibration's:
        measured, one bit finer cost a confident classifier 3.5 dB on held-out inputs)."""
        final = final_tensors(self.graph)
        return [n.outputs[0] for n in self.graph.nodes if not n.preserves_format and n.outputs[0] not in final
                and n.outputs[0] not in self.graph.inputs and n.outputs[0] in self.graph.tensors]

    def _requantize(self, tensor: str, frac_bits: int) -> list[tuple]:
        """Give `tensor` a new format and re-quantize every node it reaches (its producer, views of
        it, its readers, and on while an output format moves); returns what is needed to undo it."""
        g = self.graph
        desired = {**self.desired, tensor: frac_bits}
        moved, undo = {tensor}, []
        for node in g.nodes[self.index[tensor]:]:
            out = g.tensors[node.outputs[0]]
            if out.name != tensor and not moved.intersection(node.inputs):
                continue
            undo.append((node, node.qparams, node.qattrs, out, out.frac_bits, out.zero_point))
            if node.preserves_format:
                source = g.tensors[node.inputs[0]]
                out.frac_bits, out.zero_point = source.frac_bits, source.zero_point
            else:
                out.frac_bits = desired[out.name]
                self.options.refit_zero_point(out)  # a zero point follows its tensor's format
            node.quantize(g, self.options)
            if (out.frac_bits, out.zero_point) != undo[-1][4:]:  # its readers see another code
                moved.add(out.name)
        return undo

    def _simulate_from(self, start: int, envs: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        g = self.graph

        def run(env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            env = dict(env)
            for node in g.nodes[start:]:
                g.run_node_int(node, env)
            return env
        return simulate.map_parts(run, envs)

    def try_format(self, tensor: str, frac_bits: int) -> bool:
        """Move `tensor` to `frac_bits`; keep it if the output error falls by MIN_GAIN on each half of
        the samples (the second half is not simulated when the first does not gain), else undo."""
        undo = self._requantize(tensor, frac_bits)
        if self.graph.tensors[tensor].frac_bits == undo[0][4]:  # the producer kept the old format anyway
            self._undo(undo)
            return False
        if any(shifts_left(node.qparams) and not shifts_left(qparams) for node, qparams, *_ in undo):
            self._undo(undo)  # a layer would requantize on the fast kernels' slow path: not for a format
            return False
        start = self.index[undo[0][3].name]
        envs, error = [], []
        for half, old in enumerate(self.envs):
            envs.append(self._simulate_from(start, old))
            error.append(self._error(envs[-1], half))
            if not error[-1] < self.error[half] * (1 - MIN_GAIN):
                self._undo(undo)
                return False
        self.envs, self.error = envs, np.array(error)
        self.desired[tensor] = frac_bits
        return True

    @staticmethod
    def _undo(undo: list[tuple]) -> None:
        for node, qparams, qattrs, out, frac_bits, zero_point in reversed(undo):
            node.qparams, node.qattrs, out.frac_bits, out.zero_point = qparams, qattrs, frac_bits, zero_point


def search_formats(graph: Graph, options: QuantOptions, samples: np.ndarray, sweeps: int = 2,
                   progress=None) -> SearchResult:
    """Coordinate descent over the free tensors' formats of a quantized graph, on the first half of
    the samples; the formats found replace the calibrated ones (in `graph`) only when they also
    lower the output error on the other half by VALIDATION_GAIN, samples the search never saw."""
    t0 = time.perf_counter()
    samples = samples[:MAX_SAMPLES]
    half = len(samples) // 2
    before = {t: graph.tensors[t].frac_bits for t in graph.tensors}
    result = SearchResult(before)
    if half < 2:
        return result
    trial = copy.deepcopy(graph)
    search = FormatSearch(trial, options, samples[:half])
    tensors = search.candidates()
    for _ in range(sweeps):
        improved = False
        for tensor in tensors:
            for step in (1, -1):
                moved = False
                while True:
                    result.trials += 1
                    if not search.try_format(tensor, trial.tensors[tensor].frac_bits + step):
                        break
                    moved = improved = True
                if moved:
                    break
            if progress is not None:
                progress(1)
        if not improved:
            break
    held_out = samples[half:]
    result.sqnr_before_db = FormatSearch(graph, options, held_out).sqnr_db()
    result.sqnr_after_db = FormatSearch(trial, options, held_out).sqnr_db()
    if result.sqnr_after_db >= result.sqnr_before_db + VALIDATION_GAIN_DB:
        graph.take_quantization(trial)
        result.changed = {t: (before[t], graph.tensors[t].frac_bits) for t in before
                          if graph.tensors[t].frac_bits != before[t]}
        result.formats = {t: graph.tensors[t].frac_bits for t in graph.tensors}
    result.seconds = time.perf_counter() - t0
    return result


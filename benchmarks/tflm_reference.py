"""A numpy emulation of TensorFlow Lite Micro's int8 post-training quantization, as a baseline.

The accuracy benchmark compares edgecompile's power-of-two formats with what a user would get
from the TFLite converter's full-integer quantization run on TFLM, without installing
TensorFlow: this module quantizes edgecompile's float IR graph (after the graph passes, so
BatchNorm is folded and activations are fused, as the converter also does) the way the
converter does, and evaluates it.

The scheme (TFLite's int8 quantization specification):
- weights of Conv2d (also depthwise / grouped): symmetric int8 per output channel,
  scale_c = max|w_c| / 127, zero point 0, values in [-127, 127];
- weights of Linear (FULLY_CONNECTED): symmetric int8 per tensor, which is the converter's
  long-standing default and what TFLM's fully-connected kernels assumed (pass
  `fc_per_channel=True` to emulate the newer per-channel option instead);
- biases: int32 with scale s_in * s_w[c] and zero point 0;
- activations (graph inputs and op outputs): per-tensor asymmetric int8 from the min/max seen
  over the calibration set, the range widened to include 0 so that 0 is exact,
  scale = (max - min) / 255, zero point = round(-128 - min / scale) clamped to [-128, 127]
  (the calibrator's GetAsymmetricQuantizationParams);
- each op's output is requantized to its own calibrated scale, except the ops TFLite keeps in
  the input's scale (MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, TRANSPOSE, SLICE, PAD) and those
  with fixed output scales (LOGISTIC 1/256, TANH 1/128, SOFTMAX 1/256). A global average
  pool is TFLite's MEAN, which has its own output scale. CONCATENATION needs one scale for
  all its inputs and its output: the converter requantizes each input to the output's scale.

How it is emulated: every tensor is carried as its dequantized value (q - zp) * s in float64.
A weighted op runs its float computation with fake-quantized weights (per channel or per
tensor) and biases on the int32 grid, on the dequantized input; the result is
acc * s_in * s_w exactly (int32 accumulation is exact, float64 holds these sums exactly in
practice), then divided by s_out, rounded half away from zero, offset by the zero point and
clamped to [-128, 127]. That is what TFLM does with MultiplyByQuantizedMultiplier
(SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT: round half away from zero),
except that TFLM's multiplier has 31 fractional bits, so the emulation is exact up to that
multiplier's relative error of about 2^-31 (a flipped rounding on rare near-ties). A fused
ReLU / ReLU6 is a clamp of the float result before rounding, which equals TFLM's clamp of the
quantized result to [zp, zp + round(6 / s)].
Approximate: ADD and MUL (TFLM rescales inputs with 20-bit left shifts and fixed-point
multipliers; emulated as the exact float sum / product of the dequantized inputs, then
requantized), h-swish / h-sigmoid / sigmoid / tanh / softmax (TFLM uses fixed-point
approximations; emulated as the exact function of the dequantized input), MEAN (exact float
mean, then requantized) and the tie rounding of AVERAGE_POOL_2D. These differ from TFLM by at
most about one output step on some values. Ops TFLite has no direct equivalent for (edgecompile's
Affine, recurrent cells) are run in float on dequantized inputs and requantized to their own
calibrated scale, with their parameters unquantized.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from edgecompile import ops
from edgecompile.ir import Graph, Node
from edgecompile.ops.weighted import WeightedOp

QMIN, QMAX = -128, 127
WEIGHT_QMAX = 127
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
SAME_SCALE = (ops.MaxPool2d, ops.Reshape, ops.Transpose, ops.Slice, ops.Identity, ops.Pad)
FIXED_OUTPUT = {"sigmoid": (1 / 256, -128), "tanh": (1 / 128, 0)}  # Lut fn -> TFLite's (scale, zero point)
SOFTMAX_OUTPUT = (1 / 256, -128)
CHUNK = 32  # samples per pass, so that deep models at 96x96 stay within memory


@dataclass(frozen=True)
class QParams:
    """An int8 tensor's affine quantization: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    @classmethod
    def from_range(cls, lo: float, hi: float) -> "QParams":
        """TFLite's asymmetric int8 parameters for a calibrated [lo, hi] (widened to include 0).

        The scale is a float32 as in the flatbuffer; the zero point is rounded half away from
        zero (std::round) and clamped to the int8 range."""
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        scale = float(np.float32((hi - lo) / (QMAX - QMIN)))
        if scale == 0.0:
            return cls(1.0, 0)  # an all-zero tensor: any scale represents it exactly
        zp_from_min = QMIN - lo / scale
        return cls(scale, int(np.clip(round_half_away(zp_from_min), QMIN, QMAX)))

    def quantize(self, x: np.ndarray, offset_before_rounding: bool = False) -> np.ndarray:
        """int8 values of the reals x: round(x / s) + zp, clamped.  `offset_before_rounding` rounds
        x / s + zp instead (AVERAGE_POOL_2D averages the raw int8 values, zero point included)."""
        v = np.asarray(x, np.float64) / self.scale
        q = round_half_away(v + self.zero_point) if offset_before_rounding else round_half_away(v) + self.zero_point
        return np.clip(q, QMIN, QMAX)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, np.float64) - self.zero_point) * self.scale

    def fake(self, x: np.ndarray, offset_before_rounding: bool = False) -> np.ndarray:
        """x through int8 and back: what the next op of the integer model sees."""
        return self.dequantize(self.quantize(x, offset_before_rounding))


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (std::round, and TFLM's RoundingDivideByPOT)."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def symmetric_weight_scales(weight: np.ndarray, per_channel: bool) -> np.ndarray:
    """Scale per output channel (or one, repeated): max|w| / 127; an all-zero channel gets 1."""
    rows = np.abs(np.asarray(weight, np.float64).reshape(len(weight), -1))
    peak = rows.max(axis=1) if per_channel else np.full(len(rows), rows.max())
    return np.where(peak > 0, peak / WEIGHT_QMAX, 1.0).astype(np.float32).astype(np.float64)


def fake_quantize_weights(weight: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """(dequantized int8 weights, their scales per output channel)."""
    w = np.asarray(weight, np.float64)
    scales = symmetric_weight_scales(w, per_channel)
    s = scales.reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(round_half_away(w / s), -WEIGHT_QMAX, WEIGHT_QMAX)
    return q * s, scales


def fake_quantize_bias(bias: np.ndarray, input_scale: float, weight_scales: np.ndarray) -> np.ndarray:
    """The bias on its int32 grid of scale s_in * s_w[c], dequantized."""
    s = input_scale * weight_scales
    q = np.clip(round_half_away(np.asarray(bias, np.float64) / s), INT32_MIN, INT32_MAX)
    return q * s


def is_global_pool(node: Node, graph: Graph) -> bool:
    """An average pool whose window covers the whole input: TFLite's MEAN, not AVERAGE_POOL_2D."""
    return isinstance(node, ops.AvgPool2d) and tuple(graph.shape(node.outputs[0])[1:]) == (1, 1)


def calibration_ranges(graph: Graph, calib: np.ndarray) -> dict[str, tuple[float, float]]:
    """(min, max) of every tensor of the float graph over the calibration inputs, as the
    converter's calibrator records them (global min/max over all batches)."""
    ranges: dict[str, tuple[float, float]] = {}
    for start in range(0, len(calib), CHUNK):
        env = graph.run_float(calib[start:start + CHUNK], keep_all=True)
        for name, v in env.items():
            lo, hi = float(np.min(v)), float(np.max(v))
            old = ranges.get(name, (lo, hi))
            ranges[name] = (min(old[0], lo), max(old[1], hi))
    return ranges


def tensor_qparams(graph: Graph, ranges: dict[str, tuple[float, float]]) -> dict[str, QParams]:
    """Every tensor's int8 parameters: calibrated, the input's (same-scale ops) or fixed."""
    qp = {name: QParams.from_range(*ranges[name]) for name in graph.inputs}
    for node in graph.nodes:
        out = node.outputs[0]
        if isinstance(node, SAME_SCALE) or (isinstance(node, ops.AvgPool2d) and not is_global_pool(node, graph)):
            qp[out] = qp[node.inputs[0]]
        elif isinstance(node, ops.Lut) and node.attrs.get("fn") in FIXED_OUTPUT:
            qp[out] = QParams(*FIXED_OUTPUT[node.attrs["fn"]])
        elif isinstance(node, ops.Softmax):
            qp[out] = QParams(*SOFTMAX_OUTPUT)
        else:
            qp[out] = QParams.from_range(*ranges[out])
    return qp


def quantized_weighted_node(node: WeightedOp, input_scale: float, fc_per_channel: bool) -> WeightedOp:
    """A copy of the node whose float parameters are its int8 weights and int32 biases, dequantized."""
    per_channel = fc_per_channel if isinstance(node, ops.Linear) else True
    w, scales = fake_quantize_weights(node.params["weight"], per_channel)
    params = dict(node.params, weight=w)
    if node.params.get("bias") is not None:
        params["bias"] = fake_quantize_bias(node.params["bias"], input_scale, scales)
    q = copy.copy(node)
    q.params = params
    return q


def prepare(graph: Graph, calib: np.ndarray, fc_per_channel: bool = False) -> tuple[list[Node], dict[str, QParams]]:
    """The nodes to run (weighted ones with quantized parameters) and every tensor's parameters."""
    qp = tensor_qparams(graph, calibration_ranges(graph, calib))
    nodes = [quantized_weighted_node(n, qp[n.inputs[0]].scale, fc_per_channel) if isinstance(n, WeightedOp)
             and "weight" in n.params else n for n in graph.nodes]
    return nodes, qp


def run_node(node: Node, graph: Graph, env: dict[str, np.ndarray], qp: dict[str, QParams]) -> np.ndarray:
    """One op of the int8 model on dequantized inputs; returns its dequantized output."""
    out = qp[node.outputs[0]]
    xs = [env[t] for t in node.inputs]
    if isinstance(node, ops.Concat):
        xs = [out.fake(x) for x in xs]  # each input requantized to the output's scale first
    y = node.run_float(*xs)
    averaging = isinstance(node, ops.AvgPool2d) and not is_global_pool(node, graph)
    return out.fake(y, offset_before_rounding=averaging)


def run(graph: Graph, nodes: list[Node], qp: dict[str, QParams], x: np.ndarray) -> np.ndarray:
    """The emulated int8 model on a batch, dequantized outputs, in chunks of CHUNK samples."""
    outs = []
    for start in range(0, len(x), CHUNK):
        env = {name: qp[name].fake(v) for name, v in graph.split_inputs(x[start:start + CHUNK]).items()}
        for node in nodes:
            env[node.outputs[0]] = run_node(node, graph, env, qp)
        outs.append(graph.join_outputs(env))
    return np.concatenate(outs).astype(np.float32)


def tflm_int8_outputs(graph: Graph, calib: np.ndarray, x: np.ndarray, fc_per_channel: bool = False) -> np.ndarray:
    """Outputs (dequantized) of the float graph `graph` quantized as TFLite's int8 PTQ would
    quantize it with calibration inputs `calib`, run as TFLM would on inputs `x`."""
    nodes, qp = prepare(graph, np.asarray(calib, np.float32), fc_per_channel)
    return run(graph, nodes, qp, np.asarray(x, np.float32))

"""Quantization: choose every tensor's Q-format and every layer's integer parameters.

Activations: f from calibration statistics by a method (formats.frac_bits_for): by
default the largest f that does not clip the observed [min, max] (min/max).  Ops that preserve the format
(pooling, reshape, standalone ReLU) give their output the input's f, so they
need no requantization.  Weights, biases and shifts: see ops/weighted.py.
Nodes are visited in order and each output's f is fixed just before its
producer is quantized, so a producer may still lower it (a legal shift wins
over precision) before any consumer reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import numerics
from ..errors import EdgeCompileError
from ..formats import TensorRange, format_for, zero_point_for
from ..ir import Graph


@dataclass
class QuantOptions:
    weight_bits: int = 8
    layer_bits: dict[str, int] = field(default_factory=dict)
    act_bits: int = 8  # 8 or 16 for every activation ...
    act_layer_bits: dict[str, int] = field(default_factory=dict)  # ... or per layer output
    output_bits: int | str = 8  # the model's outputs: 8, 16, or "auto" (output_width)
    compressed_layers: frozenset = frozenset()  # whose weights will be sparse or packed (sparsify.compressed_layers)
    per_channel: bool | None = None  # None: per channel where it helps (see WeightedOp.wants_per_channel)
    calib_method: str = "mse"
    weight_method: str = "minmax"
    percentile: float = 99.99
    fixed_formats: dict[str, int] | None = None  # tensor -> frac bits decided elsewhere (QAT)
    unsigned_relu: bool = False  # ReLU outputs as unsigned codes where the readers allow (zero_point_tensors)
    asymmetric: bool = False  # and a zero point for any tensor whose writer and readers allow one
    ranges: dict | None = None  # the calibration statistics, for ops that quantize a sub-graph
    zero_point_ranges: dict | None = None  # tensor -> its TensorRange, for the tensors given a zero point

    def refit_zero_point(self, t) -> None:
        """Place a zero-pointed tensor's codes again after its frac bits moved (a writer lowered
        them, the format search tried another); other tensors keep zero point 0."""
        r = (self.zero_point_ranges or {}).get(t.name)
        if r is not None:
            t.zero_point = zero_point_for(r, t.frac_bits, t.bits)

    def quantize_graph(self, graph: Graph, ranges: dict, clip_outputs: bool = False) -> None:
        """quantize_graph with these options: how an op quantizes the sub-graph it holds (a recurrent
        cell's body) with the options it was given, as the ops do not import the passes."""
        quantize_graph(graph, ranges, self, clip_outputs)

    def weight_bits_for(self, layer: str) -> int:
        """A layer's weight bits: its own entry, its factorized parent's ("fc1" for "fc1.V"), or the default."""
        parent = layer.rsplit(".", 1)[0] if layer.endswith((".V", ".U")) else layer
        return self.layer_bits.get(layer, self.layer_bits.get(parent, self.weight_bits))


def parse_bits(values) -> tuple[int, dict[str, int]]:
    """`--bits 8 --bits fc1=4,conv2=6` -> (8, {"fc1": 4, "conv2": 6}); weights have 2..8 bits."""
    default, layers = None, {}
    if values is None or isinstance(values, (int, float, str)):
        values = [values]
    items = [item.strip() for v in values for item in str(v).split(",") if item.strip()]
    for item in items:
        name, _, value = item.rpartition("=")
        try:
            bits = int(value)
        except ValueError:
            raise EdgeCompileError(f"--bits {item}: expected N or LAYER=N (e.g. 8 or fc1=4)") from None
        if not 2 <= bits <= 8:
            raise EdgeCompileError(f"--bits {item}: weights can have 2 to 8 bits")
        if name:
            layers[name] = bits
        elif default is not None and default != bits:
            raise EdgeCompileError(f"--bits: two default widths ({default} and {bits}); name the layers for the rest")
        else:
            default = bits
    return (8 if default is None else default), layers


def calibrate(graph: Graph, samples: np.ndarray, batch: int = 256) -> dict[str, TensorRange]:
    """Run the float graph on calibration samples; record each tensor's statistics."""
    ranges: dict[str, TensorRange] = {}
    rng = np.random.default_rng(0)
    for start in range(0, len(samples), batch):
        env = graph.run_float(samples[start:start + batch], keep_all=True)
        for node in graph.nodes:  # a recurrent cell's tensors, over every time step
            if getattr(node, "body", None) is not None:
                env.update(node.body_values(*[env[t] for t in node.inputs]))
        for name, value in env.items():
            if not np.all(np.isfinite(value)):
                raise EdgeCompileError(f"tensor '{name}' becomes NaN/Inf on the calibration data: "
                                       "check the model's weights and the calibration inputs")
            ranges.setdefault(name, TensorRange(np.inf, -np.inf)).add(value, rng)
    return ranges


def assign_activation_bits(graph: Graph, options: QuantOptions) -> None:
    """Every tensor's width: --act-bits (8 or 16), per-layer overrides for a layer's output,
    --output-bits for the model's outputs (output_width), and the places that stay 8-bit: the
    model's inputs (the C API takes int8), table lookups and softmax (indexed by an int8),
    recurrent, sparse and packed layers, and views and pools (they keep their input's)."""
    for t in graph.tensors.values():
        t.bits = options.act_bits
        t.frac_bits = None
    for node in graph.nodes:
        if node.name in options.act_layer_bits:
            graph.tensors[node.outputs[0]].bits = options.act_layer_bits[node.name]
    final = final_tensors(graph)
    read_inside = {t for node in graph.nodes if not (node.preserves_format and node.outputs[0] in final)
                   for t in node.inputs}
    for name in final - read_inside:  # the caller's alone: a model output, or what it is a view of
        graph.tensors[name].bits = output_width(graph, name, options)
    narrow = set(graph.inputs) | {t for t in graph.outputs if output_width(graph, t, options) == 8}
    for node in graph.nodes:
        if node.int8_only:
            narrow.update(node.inputs)
            narrow.update(node.outputs)
    from ..ops.concat import Concat

    for node in reversed(graph.nodes):  # a pool or view keeps its input's width: narrow that too
        if node.preserves_format and node.outputs[0] in narrow:
            narrow.add(node.inputs[0])
        elif isinstance(node, Concat) and node.outputs[0] in narrow:  # it is as wide as its widest branch
            narrow.update(node.inputs)
    for name in narrow:
        graph.tensors[name].bits = 8
    for node in graph.nodes:  # in order, so chains of views follow their source
        if node.preserves_format:
            graph.tensors[node.outputs[0]].bits = graph.tensors[node.inputs[0]].bits
        elif isinstance(node, Concat):  # as Concat.quantize will: views after it must follow that width
            y = graph.tensors[node.outputs[0]]
            y.bits = max(y.bits, *(graph.tensors[t].bits for t in node.inputs))


# --output-bits auto: a model output of at most this many values is int16.  Its rounding error
# then vanishes beside the rest of the model's (measured: 0.6-16 dB output SQNR on classifiers,
# whose logits are a handful of values).  A larger output (an image, an autoencoder's
# reconstruction) stays int8: it would double the caller's buffer, and a convolution writes
# int16 through its reference kernel (a Linear has a fast one, ec_linear_fast_s8_s16).
WIDE_OUTPUT_MAX = 256


def output_width(graph: Graph, tensor: str, options: QuantOptions) -> int:
    """The width --output-bits (8, 16 or auto) gives the model output `tensor` (or a tensor it is a
    view of).  auto: 16 bits for an output of at most WIDE_OUTPUT_MAX values, unless its writer's
    weights will be stored sparse or packed (those kernels write int8).  Outputs written by an
    int8-only op stay int8 whatever this says (assign_activation_bits)."""
    if options.output_bits != "auto":
        return int(options.output_bits)
    writer = graph.producer(tensor)
    compressed = writer is not None and writer.name in options.compressed_layers
    return 16 if graph.tensors[tensor].size <= WIDE_OUTPUT_MAX and not compressed else 8



def final_tensors(graph: Graph) -> set[str]:
    """The model's outputs and the tensors they are views or pools of (same format)."""
    final = set(graph.outputs)
    for node in reversed(graph.nodes):
        if node.preserves_format and node.outputs[0] in final:
            final.add(node.inputs[0])
    return final


def zero_point_tensors(graph: Graph, asymmetric: bool = False, outputs: frozenset = frozenset()) -> set[str]:
    """The tensors that may carry a zero point z (value = (q - z) * 2^-f, numerics.py), never a graph
    input, a model output only if it is in `outputs` (output_gains: the C API then says z in
    NAME_<OUTPUT>_ZERO_POINT), always 8-bit.

    Writers: a Conv2d, Linear or Add folds z into its bias or its output offset (ops/weighted.py,
    ops/add.py), an AvgPool2d without padding into its offset (ops/pool2d.py), a table (Lut) into
    its entries, a Concat into its per-branch copy (ops/concat.py).  Without `asymmetric` only
    tensors that are never negative: the outputs of Conv2d/Linear/Add layers whose fused
    activation clamps at 0 (ReLU, ReLU6), and average pools and concatenations of them; they get
    z = -128, unsigned codes.  With it, any output of those writers (z placed by zero_point_for).

    Readers, all of which must allow it, directly or through ops that keep codes (views, transposes,
    slices, max pools: Op.keeps_codes): Conv2d and Linear (their bias absorbs -z * sum(w); a padded Conv2d reads
    its padding as z, the code of real zero, in the simulator and in every C kernel path), Add
    (each operand's z is subtracted before its multiplier), Mul (likewise, before the product; its
    own output stays signed, see ops/mul.py), Lut (its table is indexed by codes),
    Concat into an 8-bit output, and AvgPool2d without padding (ops/pool2d.py) where the offset
    z_in * 2^k is an integer: the input is never negative (z = -128) or the pool's output has a
    zero point too (then k >= 0)."""
    from ..ops.add import Add
    from ..ops.concat import Concat
    from ..ops.conv2d import Conv2d
    from ..ops.linear import Linear
    from ..ops.lut import Lut
    from ..ops.mul import Mul
    from ..ops.pool2d import AvgPool2d

    readers: dict[str, list] = {}
    for node in graph.nodes:
        for t in node.inputs:
            readers.setdefault(t, []).append(node)
    nonnegative: set[str] = set()  # tensors whose calibrated values are never negative, in graph order

    def unpadded_pool(node) -> bool:
        return type(node) is AvgPool2d and not any(node.attrs["pads"])

    def absorbs(tensor: str) -> bool:
        if tensor in graph.inputs or graph.tensors[tensor].bits != 8:
            return False
        if tensor in graph.outputs and tensor not in outputs:
            return False
        if not readers.get(tensor):
            return tensor in outputs  # the caller reads it
        for node in readers[tensor]:
            if type(node) in (Linear, Conv2d, Add, Mul, Lut):
                continue
            if type(node) is Concat and graph.tensors[node.outputs[0]].bits == 8:
                continue
            if unpadded_pool(node) and (tensor in nonnegative or (asymmetric and absorbs(node.outputs[0]))):
                continue
            if node.keeps_codes and absorbs(node.outputs[0]):
                continue
            return False
        return True

    def source(tensor: str) -> str:
        """The tensor whose code `tensor` shares (through views and max pools)."""
        producer = graph.producer(tensor)
        return source(producer.inputs[0]) if producer is not None and producer.preserves_format else tensor

    chosen = set()
    for node in graph.nodes:  # in order: a pool's or concat's inputs are decided before its output
        act = node.attrs.get("act") or {}
        out = node.outputs[0]
        if type(node) in (Conv2d, Linear, Add) and act.get("min") == 0:
            nonnegative.add(out)
        elif (unpadded_pool(node) or type(node) is Concat) and all(source(t) in nonnegative for t in node.inputs):
            nonnegative.add(out)
        writer = type(node) in (Conv2d, Linear, Add, Lut, Concat) or unpadded_pool(node)
        if writer and (out in nonnegative or asymmetric) and absorbs(out):
            chosen.add(out)
    return chosen


def output_gains(r: TensorRange, asymmetric: bool, bits: int = 8) -> bool:
    """A model output takes a zero point only where it gains a whole bit, without clipping anything
    calibration saw: a range of one sign (a ReLU output, or logits that are all negative), or with
    `asymmetric` a skewed one.  Other outputs keep the plain signed code q * 2^-f."""
    if not asymmetric and r.lo < 0:
        return False
    return numerics.frac_bits_for_span(r.lo, r.hi, bits) > numerics.frac_bits_for_interval(r.lo, r.hi, bits)


def zero_pointed(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions) -> set[str]:
    """The tensors that carry a zero point under `options` (zero_point_tensors, with the model outputs
    that gain one, output_gains)."""
    if not (options.unsigned_relu or options.asymmetric):
        return set()
    gaining = frozenset(t for t in graph.outputs if t in ranges and output_gains(ranges[t], options.asymmetric))
    return zero_point_tensors(graph, options.asymmetric, gaining)


def quantize_graph(graph: Graph, ranges: dict[str, TensorRange], options: QuantOptions,
                   clip_outputs: bool = False) -> None:
    """Every tensor's format (see the module docstring) and every node's integer parameters.

    The model's final outputs never clip what calibration saw (min/max, whatever --calib-method
    says) unless clip_outputs: they are a handful of values, and the largest of them, the top
    logits of a classifier, are the ones that matter; a format that clips them makes them tie.
    With options.unsigned_relu the never-negative tensors zero_point_tensors allows are unsigned codes
    (z = -128, one bit finer), with options.asymmetric every tensor it allows has a zero point; each
    (f, z) comes from format_for.  A model output has one only where it gains a bit (output_gains)."""
    assign_activation_bits(graph, options)
    final = set() if clip_outputs else final_tensors(graph)
    shifted = zero_pointed(graph, ranges, options)
    options.zero_point_ranges = {name: ranges[name] for name in shifted}
    for t in graph.tensors.values():
        t.zero_point = 0

    def choose(t) -> None:
        if options.fixed_formats and t.name in options.fixed_formats:
            t.frac_bits = int(options.fixed_formats[t.name])
            options.refit_zero_point(t)
            return
        method = "minmax" if t.name in final else options.calib_method
        t.frac_bits, t.zero_point = format_for(ranges[t.name], t.bits, method, options.percentile, t.name in shifted)

    options.ranges = ranges
    for name in graph.inputs:  # a recurrent cell's body has its states as inputs too
        choose(graph.tensors[name])
    for node in graph.nodes:
        out = graph.tensors[node.outputs[0]]
        if node.preserves_format:
            out.frac_bits = graph.tensors[node.inputs[0]].frac_bits
            out.zero_point = graph.tensors[node.inputs[0]].zero_point
        else:
            choose(out)
        node.quantize(graph, options)

"""ONNX -> IR: the one importer every model format goes through.

Nodes are visited in the graph's (topological) order.  A node whose inputs are
all constants is evaluated on the spot with onnx's reference evaluator (shape
arithmetic, casts, reshapes of weights...), Shape of an activation becomes a
constant because every activation shape is static here, and every other node
is translated by the converter registered for its op type in CONVERTERS.
The batch axis (ONNX axis 0) is dropped: IR shapes are per sample.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from .. import ops
from ..ops import activation
from ..errors import EdgeCompileError, UnsupportedOpError
from ..ir import Graph

Converter = Callable[["OnnxImporter", onnx.NodeProto], None]
CONVERTERS: dict[str, Converter] = {}
CUSTOM_CONVERTERS: dict[str, Converter] = {}  # edgecompile's own ops (domain "edgecompile", see edgecompile.nn)


def converter(*op_types: str):
    def deco(fn: Converter) -> Converter:
        for t in op_types:
            CONVERTERS[t] = fn
        return fn
    return deco


def supported_onnx_ops() -> list[str]:
    return sorted(set(CONVERTERS) | {"Constant", "Shape"})


class OnnxImporter:
    def __init__(self, model: onnx.ModelProto, source: str, input_shape: tuple[int, ...] | None):
        self.model = model
        self.source = source
        self.graph = Graph()
        self.consts: dict[str, np.ndarray] = {}
        self.used_names: set[str] = set()
        # A name made from another ("fc/0" -> "fc.0") must not take a node's own name ("fc.0"):
        # --bits fc.0=4 would then reach the wrong layer.
        self.literal_names = {n.name for n in model.graph.node if n.name}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.requested_shape = input_shape
        # Where each activation's batch axis is in ONNX terms (0 except inside a time-major
        # recurrent layer).  The IR drops it: with batch size 1 its position never changes the
        # element order, so moving it is only bookkeeping.
        self.baxis: dict[str, int] = {}

    # -- helpers used by converters ----------------------------------------------
    def error(self, node: onnx.NodeProto, message: str) -> EdgeCompileError:
        return EdgeCompileError(f"{self.source}: node '{node.name or node.op_type}' ({node.op_type}): {message}")

    def const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        if name == "":
            raise self.error(node, f"missing {what}")
        if name not in self.consts:
            raise self.error(node, f"{what} must be a constant (initializer); it is computed at run time")
        return self.consts[name]

    def optional_const(self, node: onnx.NodeProto, index: int) -> np.ndarray | None:
        if index < len(node.input) and node.input[index]:
            return self.consts.get(node.input[index])
        return None

    def activation_input(self, node: onnx.NodeProto, index: int = 0, any_batch_axis: bool = False) -> str:
        name = node.input[index]
        if name not in self.graph.tensors:
            raise self.error(node, f"input '{name}' is neither an activation nor a constant")
        if not any_batch_axis and self.batch_axis(name) != 0:
            raise self.error(node, f"input '{name}' has its batch axis at position {self.batch_axis(name)} "
                                   "(time-major); this op needs it first: transpose it back (batch first)")
        return name

    def batch_axis(self, tensor: str) -> int:
        return self.baxis.get(tensor, 0)

    def onnx_shape(self, tensor: str) -> tuple[int, ...]:
        """The ONNX shape of an activation (batch of 1 at its batch axis)."""
        shape = list(self.graph.shape(tensor))
        shape.insert(self.batch_axis(tensor), 1)
        return tuple(shape)

    def layer_name(self, node: onnx.NodeProto, weight_input: int | None = None) -> str:
        """Readable, unique layer name: the PyTorch module path where the weights carry it."""
        base = ""
        if weight_input is not None and weight_input < len(node.input):
            w = node.input[weight_input]
            if w.endswith(".weight"):
                base = w[: -len(".weight")]
        if not base:
            base = re.sub(r"^node_", "", (node.name or node.op_type).strip("/")).replace("/", ".")
        name, k = base, 1
        while name in self.used_names or (name != node.name and name in self.literal_names):
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def add(self, node: ops.Op, batch_axis: int = 0) -> ops.Op:
        """Add an IR node and give its output a shape by the op's own inference."""
        self.graph.add_node(node)
        try:
            shape = node.infer_shape(self.graph)
        except ValueError as exc:
            raise EdgeCompileError(f"{self.source}: layer '{node.name}': {exc}") from None
        if 0 in tuple(shape):
            raise EdgeCompileError(f"{self.source}: layer '{node.name}' ({node.op_type}) has an empty output, "
                                   f"shape {tuple(shape)}; a layer needs at least one output value. Check the "
                                   f"model's weights (a zero-size weight gives no outputs) and export it again.")
        self.graph.add_tensor(node.outputs[0], shape)
        if batch_axis:
            self.baxis[node.outputs[0]] = batch_axis
        return node

    def view(self, node: onnx.NodeProto, x: str, ir_shape, batch_axis: int, out: str | None = None) -> str:
        """A reshape (no data moves) of x to ir_shape, recording where the batch axis is."""
        out = out or node.output[0]
        self.add(ops.Reshape(self.layer_name(node), [x], [out], attrs={"shape": [int(d) for d in ir_shape]}),
                 batch_axis)
        return out

    # -- the walk --------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.model.graph
        for init in g.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        self.uses: dict[str, int] = {}
        for node in g.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        for out in g.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1
        inputs = [i for i in g.input if i.name not in self.consts]
        if not inputs:
            raise EdgeCompileError(f"{self.source}: the model has no input tensor (every graph input is a constant)")
        shapes = input_shapes(self.requested_shape)
        if shapes is not None and len(shapes) != len(inputs):
            raise EdgeCompileError(f"{self.source}: {len(shapes)} input shape(s) given for a model with "
                                   f"{len(inputs)} inputs ({', '.join(i.name for i in inputs)})")
        for k, value in enumerate(inputs):
            self._add_input(value, None if shapes is None else shapes[k])
        for node in g.node:
            self._visit(node)
        outs = [o.name for o in g.output]
        for out in outs:
            if out not in self.graph.tensors:
                raise EdgeCompileError(f"{self.source}: the output '{out}' does not depend on the input")
        if len(set(outs)) != len(outs):
            raise EdgeCompileError(f"{self.source}: the model returns the same tensor twice; return it once")
        self.graph.outputs = outs
        self.graph.check()
        return self.graph

    def _add_input(self, value: onnx.ValueInfoProto, requested: tuple[int, ...] | None) -> None:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        if requested is not None:
            shape = tuple(requested)
            if dims[1:] and all(d is not None for d in dims[1:]) and tuple(dims[1:]) != shape:
                raise EdgeCompileError(f"{self.source}: --input-shape {shape} contradicts the model's input "
                                       f"shape {tuple(dims[1:])} (batch axis excluded)")
        elif len(dims) >= 2 and all(d is not None and d > 0 for d in dims[1:]):
            shape = tuple(int(d) for d in dims[1:])
        else:
            # name the symbolic axes (dim_param) so the user sees which one is dynamic
            shown = ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                              for d in value.type.tensor_type.shape.dim)
            raise EdgeCompileError(f"{self.source}: the input '{value.name}' has no static shape ([{shown}]: "
                                   f"only the batch axis may be dynamic); pass --input-shape C,H,W (without the "
                                   f"batch axis)")
        if value.type.tensor_type.elem_type not in (onnx.TensorProto.FLOAT, 0):
            raise EdgeCompileError(f"{self.source}: input '{value.name}' must be float32")
        self.graph.inputs.append(value.name)
        self.graph.add_tensor(value.name, shape)

    def _visit(self, node: onnx.NodeProto) -> None:
        if node.domain == "edgecompile" and node.op_type in CUSTOM_CONVERTERS:
            CUSTOM_CONVERTERS[node.op_type](self, node)
            return
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(self._unsupported_message(node))
        if node.op_type == "Constant":
            self._fold(node)
            return
        if node.op_type == "Shape" and node.input[0] in self.graph.tensors:
            full = np.array(self.onnx_shape(node.input[0]), dtype=np.int64)
            start = node_attr(node, "start", 0)
            end = node_attr(node, "end", None)
            self.consts[node.output[0]] = full[start:end]
            return
        real_inputs = [i for i in node.input if i]
        if real_inputs and all(i in self.consts for i in real_inputs):
            self._fold(node)
            return
        fn = CONVERTERS.get(node.op_type)
        if fn is None:
            raise UnsupportedOpError(self._unsupported_message(node))
        fn(self, node)

    def _unsupported_message(self, node: onnx.NodeProto) -> str:
        where = f"node '{node.name}'" if node.name else f"the unnamed node producing '{node.output[0]}'" \
            if node.output else "an unnamed node"
        return (f"{self.source}: {where} uses the unsupported op "
                f"'{(node.domain + '.') if node.domain else ''}{node.op_type}'. Supported ONNX ops: "
                f"{', '.join(supported_onnx_ops())}. Rewrite that part of the model with supported layers.")

    def _fold(self, node: onnx.NodeProto) -> None:
        """Evaluate a node on constant inputs with onnx's reference implementation (or, for
        the few ops it lacks at older opsets, a numpy one here)."""
        if node.op_type == "Constant" and (value := _constant_value(node)) is not None:
            self.consts[node.output[0]] = value  # most nodes a PyTorch export folds: no evaluator needed
            return
        if node.op_type in CONSTANT_FOLDERS:
            values = [self.consts[n] if n else None for n in node.input]
            self.consts[node.output[0]] = np.asarray(CONSTANT_FOLDERS[node.op_type](node, *values))
            return

        from onnx.reference import ReferenceEvaluator

        inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None)
                  for n in node.input if n]
        outputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output]
        g = onnx.helper.make_graph([node], "fold", inputs, outputs)
        m = onnx.helper.make_model(g, opset_imports=self.model.opset_import)
        try:
            results = ReferenceEvaluator(m).run(None, {n: self.consts[n] for n in node.input if n})
        except Exception as exc:  # the evaluator raises many types
            raise self.error(node, f"cannot evaluate this constant expression ({exc})") from None
        for name, value in zip(node.output, results):
            self.consts[name] = np.asarray(value)


def _dequantize_linear(node: onnx.NodeProto, x, scale, zero_point=None):
    """y = (x - zero_point) * scale, per tensor or along `axis` (weights stored quantized)."""
    axis = node_attr(node, "axis", 1)
    x = np.asarray(x, dtype=np.float64)
    shape = [1] * x.ndim
    scale = np.asarray(scale, dtype=np.float64)
    zp = np.zeros_like(scale) if zero_point is None else np.asarray(zero_point, dtype=np.float64)
    if scale.ndim == 1 and scale.size > 1:
        shape[axis % x.ndim] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((x - zp) * scale).astype(np.float32)


CONSTANT_KINDS = {"value": None, "value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                  "value_ints": np.int64}  # a Constant's attribute -> its numpy type (value: a tensor's own)


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """A Constant's value read from its attribute, or None for the kinds left to onnx's reference
    evaluator (strings, sparse tensors)."""
    if len(node.attribute) != 1 or node.attribute[0].name not in CONSTANT_KINDS:
        return None
    attr = node.attribute[0]
    value = onnx.helper.get_attribute_value(attr)
    return numpy_helper.to_array(value) if attr.name == "value" else np.asarray(value, CONSTANT_KINDS[attr.name])


CONSTANT_FOLDERS = {"DequantizeLinear": _dequantize_linear}  # numpy folds of ops on constant inputs


def node_attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def decode_attr(value):
    return value.decode() if isinstance(value, bytes) else value


def _pads_2d(imp: OnnxImporter, node: onnx.NodeProto, in_hw, kernel, stride) -> list[int]:
    """ONNX pads [top, left, bottom, right], resolving auto_pad."""
    auto = decode_attr(node_attr(node, "auto_pad", "NOTSET"))
    if auto in ("NOTSET", "VALID"):
        pads = list(node_attr(node, "pads", [0, 0, 0, 0])) if auto == "NOTSET" else [0, 0, 0, 0]
        if len(pads) != 4:
            raise imp.error(node, f"expected 4 pads for a 2-D op, got {pads}")
        return [int(p) for p in pads]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for axis in range(2):
            out = -(-in_hw[axis] // stride[axis])
            total = max((out - 1) * stride[axis] + kernel[axis] - in_hw[axis], 0)
            small, big = total // 2, total - total // 2
            pads[axis], pads[axis + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
        return pads
    raise imp.error(node, f"auto_pad={auto} is not supported")


def _spatial(imp: OnnxImporter, node: onnx.NodeProto, x: str) -> tuple[int, int]:
    shape = imp.graph.shape(x)
    if len(shape) != 3:
        raise imp.error(node, f"expects a (C, H, W) input per sample, got shape {shape}")
    return shape[1], shape[2]


@converter("Conv")
def _conv(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node)
    w = imp.const(node, 1, "the weight").astype(np.float32)
    b = imp.optional_const(node, 2)
    if w.ndim != 4:
        raise imp.error(node, f"only 2-D convolutions are supported (weight shape {w.shape})")
    groups = int(node_attr(node, "group", 1))
    dilation = [int(d) for d in node_attr(node, "dilations", [1, 1])]
    stride = [int(s) for s in node_attr(node, "strides", [1, 1])]
    kernel = (dilation[0] * (int(w.shape[2]) - 1) + 1, dilation[1] * (int(w.shape[3]) - 1) + 1)
    pads = _pads_2d(imp, node, _spatial(imp, node, x), kernel, stride)
    params = {"weight": w}
    if b is not None:
        params["bias"] = b.astype(np.float32)
    attrs = {"stride": stride, "pads": pads, "act": None}
    if groups != 1:
        attrs["groups"] = groups
    if dilation != [1, 1]:
        attrs["dilation"] = dilation
    imp.add(ops.Conv2d(imp.layer_name(node, 1), [x], [node.output[0]], attrs=attrs, params=params))


@converter("Gemm")
def _gemm(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node)
    if node_attr(node, "transA", 0):
        raise imp.error(node, "Gemm with transA=1 is not supported")
    b = imp.const(node, 1, "the weight").astype(np.float64)
    w = b if node_attr(node, "transB", 0) else b.T
    w = w * float(node_attr(node, "alpha", 1.0))
    params = {"weight": w.astype(np.float32)}
    c = imp.optional_const(node, 2)
    if c is not None:
        bias = np.broadcast_to(np.asarray(c, dtype=np.float64) * float(node_attr(node, "beta", 1.0)),
                               (1, w.shape[0])).reshape(-1)
        params["bias"] = bias.astype(np.float32)
    imp.add(ops.Linear(imp.layer_name(node, 1), [x], [node.output[0]], attrs={"act": None}, params=params))


@converter("MatMul")
def _matmul(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node)
    b = imp.const(node, 1, "the right-hand matrix")
    if b.ndim != 2:
        raise imp.error(node, f"MatMul needs a 2-D constant right-hand side, got shape {b.shape}")
    imp.add(ops.Linear(imp.layer_name(node, 1), [x], [node.output[0]], attrs={"act": None},
                       params={"weight": np.ascontiguousarray(b.T).astype(np.float32)}))


def _constant_operand(imp: OnnxImporter, node: onnx.NodeProto) -> tuple[str, np.ndarray] | None:
    """(activation, constant) for a binary node with exactly one constant operand, else None."""
    const_idx = [i for i, n in enumerate(node.input) if n in imp.consts]
    if len(const_idx) != 1:
        return None
    x = node.input[1 - const_idx[0]]
    return x, np.asarray(imp.consts[node.input[const_idx[0]]], dtype=np.float64)


def _per_channel(imp: OnnxImporter, node: onnx.NodeProto, x: str, c: np.ndarray, what: str):
    """The conv/linear producing x (used only here) and c as one value per output channel."""
    prod = imp.graph.producer(x)
    if not isinstance(prod, (ops.Linear, ops.Conv2d)) or imp.uses.get(x, 0) != 1 or prod.attrs.get("act"):
        raise imp.error(node, f"a constant {what} is only supported right after a conv/linear layer "
                              "(it is folded into that layer's weights)")
    n = prod.out_channels
    if isinstance(prod, ops.Linear):
        ok = c.size == 1 or (c.size == n and c.shape[-1] == n)
    else:  # a conv's per-channel constant broadcasts as (C, 1, 1)
        ok = c.size == 1 or (c.size == n and c.ndim >= 3 and c.shape[-3] == n)
    if not ok:
        raise imp.error(node, f"constant of shape {c.shape} is not per-channel for '{prod.name}'")
    return prod, np.broadcast_to(c.reshape(-1), (n,)).astype(np.float64)


@converter("Add", "Sum")
def _add(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    """Two activations: a residual Add.  An activation and a constant right after a
    conv/linear: that layer's bias (MatMul + Add as exporters write it)."""
    if len([i for i in node.input if i]) != 2:
        raise imp.error(node, "only adds of two operands are supported")
    operand = _constant_operand(imp, node)
    if operand is None:
        a, b = (imp.activation_input(node, i) for i in range(2))
        imp.add(ops.Add(imp.layer_name(node), [a, b], [node.output[0]], attrs={"act": None}))
        return
    x, c = operand
    prod, per_channel = _per_channel(imp, node, x, c, "added")
    n = prod.out_channels
    prod.params["bias"] = (np.asarray(prod.params.get("bias", np.zeros(n)), np.float64) + per_channel).astype(np.float32)
    imp.graph.rename_tensor(x, node.output[0])


@converter("Mul", "Div")
def _mul(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    """Two activations: an elementwise product (squeeze-excite gate, broadcast per channel).
    An activation times (or divided by) a constant right after a conv/linear: folded into it."""
    operand = _constant_operand(imp, node)
    if operand is None:
        if node.op_type == "Div":
            raise imp.error(node, "dividing by an activation is not supported")
        a, b = (imp.activation_input(node, i) for i in range(2))
        if int(np.prod(imp.graph.shape(a))) < int(np.prod(imp.graph.shape(b))):
            a, b = b, a  # the gate broadcasts over the larger operand
        imp.add(ops.Mul(imp.layer_name(node), [a, b], [node.output[0]], attrs={"act": None}))
        return
    x, c = operand
    if node.op_type == "Div":
        if node.input[1] not in imp.consts:
            raise imp.error(node, "only division by a constant is supported")
        if np.any(np.asarray(c) == 0):
            raise imp.error(node, "divides by a constant that holds 0; the model's output would be infinite")
        c = 1.0 / c
    prod, scale = _per_channel(imp, node, x, c, "factor")
    w = np.asarray(prod.params["weight"], np.float64)
    prod.params["weight"] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    if "bias" in prod.params:
        prod.params["bias"] = (np.asarray(prod.params["bias"], np.float64) * scale).astype(np.float32)
    imp.graph.rename_tensor(x, node.output[0])


@converter("Clip")
def _clip(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node)
    lo, hi = node_attr(node, "min"), node_attr(node, "max")  # opset < 11 keeps them as attributes
    if len(node.input) > 1 and node.input[1]:
        lo = float(imp.const(node, 1, "the minimum"))
    if len(node.input) > 2 and node.input[2]:
        hi = float(imp.const(node, 2, "the maximum"))
    imp.add(ops.Clip(imp.layer_name(node), [x], [node.output[0]],
                     attrs={"act": activation.named_clip(None if lo is None else float(lo),
                                                         None if hi is None else float(hi))}))


@converter("HardSwish", "HardSigmoid", "Sigmoid", "Tanh")
def _lut(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    fn = {"HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Sigmoid": "sigmoid", "Tanh": "tanh"}[node.op_type]
    attrs = {"fn": fn}
    if node.op_type == "HardSigmoid":
        attrs.update(alpha=float(node_attr(node, "alpha", 0.2)), beta=float(node_attr(node, "beta", 0.5)))
    imp.add(ops.Lut(imp.layer_name(node), [imp.activation_input(node)], [node.output[0]], attrs=attrs))


@converter("Concat")
def _concat(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    inputs = [imp.activation_input(node, i, any_batch_axis=True) for i in range(len(node.input))]
    batch = {imp.batch_axis(t) for t in inputs}
    if len(batch) > 1:
        raise imp.error(node, "its inputs have their batch axes at different positions; transpose them alike")
    b = batch.pop()  # 1: the final states of stacked recurrent layers, (layer, batch, hidden)
    rank = len(imp.graph.shape(inputs[0])) + 1
    axis = int(node_attr(node, "axis")) % rank
    if axis == b:
        raise imp.error(node, "concatenating along the batch axis is not supported")
    imp.add(ops.Concat(imp.layer_name(node), inputs, [node.output[0]], attrs={"axis": axis if axis < b else axis - 1}), b)


@converter("Softmax")
def _softmax(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node)
    rank = len(imp.graph.shape(x)) + 1
    axis = int(node_attr(node, "axis", -1 if imp.opset >= 13 else 1)) % rank
    if axis != rank - 1:
        raise imp.error(node, f"softmax over axis {axis} of a rank-{rank} tensor: only the last axis is supported")
    imp.add(ops.Softmax(imp.layer_name(node), [x], [node.output[0]]))


@converter("Pad")
def _pad(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node)
    mode = decode_attr(node_attr(node, "mode", "constant"))
    pads = node_attr(node, "pads")
    if pads is None:
        pads = imp.const(node, 1, "the pads").reshape(-1).tolist()
    value = imp.optional_const(node, 2)
    rank = len(imp.graph.shape(x)) + 1
    pads = [int(p) for p in pads]
    if len(node.input) > 3 and node.input[3]:  # opset 18: pads for the listed axes only
        axes = [int(a) % rank for a in imp.const(node, 3, "the axes").reshape(-1)]
        if len(pads) != 2 * len(axes):
            raise imp.error(node, f"{len(pads)} pads for {len(axes)} axes; expected two per axis")
        full = [0] * (2 * rank)
        for i, a in enumerate(axes):
            full[a], full[rank + a] = pads[i], pads[len(axes) + i]
        pads = full
    begin, end = pads[:rank], pads[rank:]
    if mode != "constant" or (value is not None and float(np.asarray(value).reshape(-1)[0]) != 0.0) \
            or rank != 4 or any(begin[:2]) or any(end[:2]) or min(pads) < 0:
        raise imp.error(node, "only zero padding of the spatial axes of a (C, H, W) tensor is supported "
                              "(it is folded into the convolution that follows)")
    imp.add(ops.Pad(imp.layer_name(node), [x], [node.output[0]],
                    attrs={"pads": [begin[2], begin[3], end[2], end[3]]}))


@converter("ReduceMean")
def _reduce_mean(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    """Mean over the spatial axes (AdaptiveAvgPool2d(1) / x.mean((2, 3))) is a global average pool."""
    x = imp.activation_input(node)
    axes = node_attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node, 1, "the axes").reshape(-1).tolist()
    shape = imp.graph.shape(x)
    if len(shape) != 3 or sorted(a % 4 for a in (axes or [])) != [2, 3]:
        raise imp.error(node, "ReduceMean is supported over the spatial axes (2, 3) of a (C, H, W) tensor only")
    h, w = shape[1:]
    pool_out = node.output[0] if node_attr(node, "keepdims", 1) else imp.graph.unique_tensor_name(node.output[0] + "_4d")
    imp.add(ops.AvgPool2d(imp.layer_name(node), [x], [pool_out],
                          attrs={"kernel": [h, w], "stride": [1, 1], "pads": [0, 0, 0, 0], "count_include_pad": True}))
    if pool_out != node.output[0]:
        imp.add(ops.Reshape(imp.layer_name(node) + ".squeeze", [pool_out], [node.output[0]],
                            attrs={"shape": [shape[0]]}))


@converter("Relu")
def _relu(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node, any_batch_axis=True)
    imp.add(ops.Relu(imp.layer_name(node), [x], [node.output[0]]), imp.batch_axis(x))


@converter("LeakyRelu")
def _leaky_relu(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    alpha = float(node_attr(node, "alpha", 0.01))  # ONNX's (and nn.LeakyReLU's) default
    if not abs(alpha) <= ops.leaky_relu.MAX_ALPHA:
        raise imp.error(node, f"alpha = {alpha}: slopes up to {ops.leaky_relu.MAX_ALPHA:g} in magnitude are "
                              "supported (the int32 product of the C kernel)")
    imp.add(ops.LeakyRelu(imp.layer_name(node), [imp.activation_input(node)], [node.output[0]],
                          attrs={"alpha": alpha}))


def _pool_common(imp: OnnxImporter, node: onnx.NodeProto):
    x = imp.activation_input(node)
    kernel = [int(k) for k in node_attr(node, "kernel_shape")]
    if len(kernel) != 2:
        raise imp.error(node, "only 2-D pooling is supported")
    if any(d != 1 for d in node_attr(node, "dilations", [1, 1])):
        raise imp.error(node, "dilated pooling is not supported")
    stride = [int(s) for s in node_attr(node, "strides", [1, 1])]
    in_hw = _spatial(imp, node, x)
    pads = _pads_2d(imp, node, in_hw, kernel, stride)
    if node_attr(node, "ceil_mode", 0):
        # Grow the bottom/right padding so floor division gives the ceil-mode size;
        # ONNX (like PyTorch) drops a last window that would start in the padding.
        for axis in range(2):
            size = in_hw[axis] + pads[axis] + pads[axis + 2] - kernel[axis]
            out = -(-size // stride[axis]) + 1
            if (out - 1) * stride[axis] >= in_hw[axis] + pads[axis]:
                out -= 1
            pads[axis + 2] += max((out - 1) * stride[axis] + kernel[axis] - (in_hw[axis] + pads[axis] + pads[axis + 2]), 0)
    return x, kernel, stride, pads


@converter("MaxPool")
def _maxpool(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise imp.error(node, "MaxPool with an indices output is not supported")
    x, kernel, stride, pads = _pool_common(imp, node)
    imp.add(ops.MaxPool2d(imp.layer_name(node), [x], [node.output[0]],
                          attrs={"kernel": kernel, "stride": stride, "pads": pads}))


@converter("AveragePool")
def _avgpool(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    if node_attr(node, "ceil_mode", 0):
        raise imp.error(node, "AveragePool with ceil_mode=1 is not supported")
    x, kernel, stride, pads = _pool_common(imp, node)
    imp.add(ops.AvgPool2d(imp.layer_name(node), [x], [node.output[0]],
                          attrs={"kernel": kernel, "stride": stride, "pads": pads,
                                 "count_include_pad": bool(node_attr(node, "count_include_pad", 0))}))


@converter("GlobalAveragePool")
def _global_avgpool(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node)
    h, w = _spatial(imp, node, x)
    imp.add(ops.AvgPool2d(imp.layer_name(node), [x], [node.output[0]],
                          attrs={"kernel": [h, w], "stride": [1, 1], "pads": [0, 0, 0, 0],
                                 "count_include_pad": True}))


@converter("Flatten")
def _flatten(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node, any_batch_axis=True)
    full = imp.onnx_shape(x)
    axis = int(node_attr(node, "axis", 1)) % (len(full) + 1)
    if imp.batch_axis(x) >= axis:
        raise imp.error(node, "Flatten would merge the batch axis into the features; flatten after the batch axis")
    before = int(np.prod([d for i, d in enumerate(full[:axis]) if i != imp.batch_axis(x)]))
    after = int(np.prod(full[axis:]))
    imp.view(node, x, ([before] if before > 1 else []) + [after], 0)


@converter("Reshape")
def _reshape(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node, any_batch_axis=True)
    target = [int(d) for d in imp.const(node, 1, "the target shape").reshape(-1)]
    full_in = imp.onnx_shape(x)
    if not node_attr(node, "allowzero", 0):
        target = [full_in[i] if d == 0 and i < len(full_in) else d for i, d in enumerate(target)]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(full_in)) // max(known, 1)
    # the batch axis of the result: first if it has size 1 there, else the first axis of size 1
    ones = [i for i, d in enumerate(target) if d == 1]
    if not ones:
        raise imp.error(node, f"reshape to {target} leaves no axis for the batch; keep the batch first "
                              "(e.g. x.view(x.size(0), -1))")
    if imp.batch_axis(x) == 0 and target[0] != 1:
        raise imp.error(node, f"reshape to {target} would change the batch axis; keep the batch first "
                              "(e.g. x.view(x.size(0), -1))")
    batch = 0 if target[0] == 1 else ones[0]
    imp.view(node, x, target[:batch] + target[batch + 1:], batch)


@converter("Squeeze", "Unsqueeze")
def _squeeze(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node, any_batch_axis=True)
    axes = node_attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node, 1, "the axes").reshape(-1).tolist()
    full = list(imp.onnx_shape(x))
    batch = imp.batch_axis(x)
    if node.op_type == "Squeeze":
        if axes is None:
            axes = [i for i, d in enumerate(full) if d == 1 and i != batch]
        axes = sorted(a % len(full) for a in axes)
        if batch in axes:
            raise imp.error(node, "squeezing the batch axis is not supported")
        shape = [d for i, d in enumerate(full) if i not in axes]
        batch -= sum(1 for a in axes if a < batch)
    else:
        rank = len(full) + len(axes)
        shape = list(full)
        for a in sorted(a % rank for a in axes):
            shape.insert(a, 1)
            if a <= batch:
                batch += 1
    imp.view(node, x, shape[:batch] + shape[batch + 1:], batch)


@converter("Transpose")
def _transpose(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node, any_batch_axis=True)
    rank = len(imp.graph.shape(x)) + 1
    perm = [int(p) % rank for p in node_attr(node, "perm", list(range(rank))[::-1])]
    batch = imp.batch_axis(x)
    new_batch = perm.index(batch)
    # the order of the other axes, numbered without the batch axis
    ir_perm = [p - (p > batch) for p in perm if p != batch]
    shape = imp.graph.shape(x)
    if ir_perm == sorted(ir_perm):  # only the (size-1) batch axis moved: a view
        imp.view(node, x, shape, new_batch)
        return
    imp.add(ops.Transpose(imp.layer_name(node), [x], [node.output[0]], attrs={"perm": ir_perm}), new_batch)


@converter("Gather")
def _gather(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    """Gather of constant positions along an axis, e.g. the last step of a recurrent layer."""
    x = imp.activation_input(node, any_batch_axis=True)
    index = imp.const(node, 1, "the indices")
    full = imp.onnx_shape(x)
    axis = int(node_attr(node, "axis", 0)) % len(full)
    batch = imp.batch_axis(x)
    if axis == batch:
        raise imp.error(node, "gathering along the batch axis is not supported")
    positions = [int(i) % full[axis] for i in np.asarray(index).reshape(-1)]
    if positions != list(range(positions[0], positions[0] + len(positions))):
        raise imp.error(node, f"gathering positions {positions}: only consecutive positions are supported")
    ir_axis = axis - (axis > batch)
    shape = imp.graph.shape(x)
    sliced = node.output[0] if np.ndim(index) else imp.graph.unique_tensor_name(node.output[0] + "_slice")
    _slice_node(imp, node, x, {ir_axis: (positions[0], 1, len(positions))}, sliced, batch)
    if np.ndim(index) == 0:  # a scalar index drops the axis
        out_shape = list(shape)
        del out_shape[ir_axis]
        imp.view(node, sliced, out_shape, batch - (axis < batch))


def _slice_node(imp: OnnxImporter, node, x: str, per_axis: dict, out: str, batch: int) -> None:
    shape = imp.graph.shape(x)
    starts = [per_axis.get(a, (0, 1, d))[0] for a, d in enumerate(shape)]
    steps = [per_axis.get(a, (0, 1, d))[1] for a, d in enumerate(shape)]
    counts = [per_axis.get(a, (0, 1, d))[2] for a, d in enumerate(shape)]
    if starts == [0] * len(shape) and steps == [1] * len(shape) and counts == list(shape):
        imp.view(node, x, shape, batch, out)  # nothing sliced
        return
    imp.add(ops.Slice(imp.layer_name(node), [x], [out], attrs={"starts": starts, "steps": steps,
                                                                 "out_shape": counts}), batch)


@converter("Slice")
def _slice(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    x = imp.activation_input(node, any_batch_axis=True)
    full = imp.onnx_shape(x)
    starts = imp.const(node, 1, "the starts").reshape(-1).tolist()
    ends = imp.const(node, 2, "the ends").reshape(-1).tolist()
    axes = imp.optional_const(node, 3)
    axes = list(range(len(starts))) if axes is None else [int(a) % len(full) for a in np.asarray(axes).reshape(-1)]
    steps = imp.optional_const(node, 4)
    steps = [1] * len(starts) if steps is None else np.asarray(steps).reshape(-1).tolist()
    batch = imp.batch_axis(x)
    per_axis = {}
    for a, s, e, st in zip(axes, starts, ends, steps):
        positions = range(full[a])[slice(int(s), int(e), int(st))]  # numpy/ONNX clamping rules
        if a == batch:
            if len(positions) != 1:
                raise imp.error(node, "slicing the batch axis is not supported")
            continue
        if len(positions) == 0:
            raise imp.error(node, "an empty slice is not supported")
        per_axis[a - (a > batch)] = (positions[0], positions.step, len(positions))
    if any(st < 1 for _, st, _ in per_axis.values()):
        raise imp.error(node, "slices with a negative step are not supported")
    _slice_node(imp, node, x, per_axis, node.output[0], batch)


@converter("BatchNormalization")
def _batchnorm(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    if node_attr(node, "training_mode", 0):
        raise imp.error(node, "BatchNormalization in training mode; export the model in eval() mode")
    x = imp.activation_input(node)
    params = {"gamma": imp.const(node, 1, "scale"), "beta": imp.const(node, 2, "bias"),
              "mean": imp.const(node, 3, "running mean"), "var": imp.const(node, 4, "running variance")}
    params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    imp.add(ops.BatchNorm(imp.layer_name(node, 1), [x], [node.output[0]],
                          attrs={"eps": float(node_attr(node, "epsilon", 1e-5))}, params=params))


@converter("Cast", "CastLike")
def _cast(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    """Every activation is float32, so a cast to float32 is the identity and CastLike(constant, x)
    is a constant (the dynamo exporter writes one for each Conv without bias)."""
    if node.op_type == "CastLike" and node.input[0] in imp.consts:
        imp.consts[node.output[0]] = np.asarray(imp.consts[node.input[0]], dtype=np.float32)
        return
    if node.op_type == "Cast" and node_attr(node, "to", onnx.TensorProto.FLOAT) != onnx.TensorProto.FLOAT:
        to = onnx.TensorProto.DataType.Name(node_attr(node, "to", 0))
        raise imp.error(node, f"a cast of an activation to {to}; edgecompile computes on float32 activations "
                              "(remove the cast from the model)")
    imp.add(ops.Identity(imp.layer_name(node), [imp.activation_input(node)], [node.output[0]]))


@converter("Identity", "Dropout")
def _identity(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        training = imp.consts.get(node.input[2])
        if training is None or bool(np.asarray(training)):
            raise imp.error(node, "Dropout in training mode; export the model in eval() mode")
    imp.add(ops.Identity(imp.layer_name(node), [imp.activation_input(node)], [node.output[0]]))




def input_shapes(shape) -> list[tuple[int, ...]] | None:
    """Requested input shapes as a list: one shape (C,H,W), or several for a model with several inputs."""
    if shape is None:
        return None
    if len(shape) and isinstance(shape[0], (tuple, list)):
        return [tuple(int(d) for d in s) for s in shape]
    return [tuple(shape)]


def import_onnx(model: onnx.ModelProto, source: str | Path = "<onnx>",
                input_shape: tuple[int, ...] | None = None) -> Graph:
    """Translate an ONNX model into the IR; `source` names the file in error messages."""
    graph = OnnxImporter(model, str(source), input_shape).run()
    graph.name = Path(str(source)).stem or "model"
    return graph

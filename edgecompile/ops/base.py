"""What every op provides, and the registry that maps op types to classes.

An op class is a Node subclass with, in one file:
  * shape inference and a float reference (`infer_shape`, `run_float`),
  * cost figures (`param_count`, `macs`, `weight_bytes`),
  * quantization of its parameters (`quantize`),
  * the integer kernel of the simulator (`run_int`, numpy, rules of numerics.py),
  * its C generation rule (`emit_c`), calling a kernel of runtime_c,
  * its quantization-aware-training step (`qat_forward`, torch, for edgecompile.qat),
and declares where it comes from (`onnx_ops`, or `made_by`).  docs/adding-an-op.md lists every
step; tests/test_op_completeness.py checks that each op has them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .. import tiling
from ..errors import EdgeCompileError
from ..ir import Graph, Node

if TYPE_CHECKING:  # pragma: no cover
    from ..codegen import Emitter
    from ..passes.quantize import QuantOptions

OP_TYPES: dict[str, type["Op"]] = {}


def register(cls: type["Op"]) -> type["Op"]:
    """Class decorator: make an op known to the manifest reader and the passes."""
    if cls.op_type in OP_TYPES:
        raise RuntimeError(f"op type {cls.op_type} registered twice")
    OP_TYPES[cls.op_type] = cls
    return cls


class Op(Node):
    """Base of all ops; the defaults describe an op with no parameters."""

    #: Output keeps the input's frac bits (pooling, reshape): no requantization.
    preserves_format: ClassVar[bool] = False
    #: Output is the input's buffer reinterpreted (reshape): no code, no memory.
    is_alias: ClassVar[bool] = False
    keeps_codes: ClassVar[bool] = False  # output codes are input codes, moved or selected: any zero point passes
    #: The C kernel may write its output over its first input (elementwise ops).
    in_place: ClassVar[bool] = False
    #: Each output value depends only on the inputs' values at its own position (elementwise ops):
    #: a spatial tile of the output reads the same tile of every input (passes/patches.py).
    same_position: ClassVar[bool] = False
    #: Runtime C files (without extension) the generated code needs for this op.
    runtime_files: ClassVar[tuple[str, ...]] = ()
    #: Its kernels read and write int8 only: inputs and outputs stay 8-bit whatever --act-bits says.
    int8_only: ClassVar[bool] = False
    #: The ONNX op types whose converters (frontend/onnx_frontend.py, frontend/recurrent.py) make it.
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    #: What makes it when no ONNX converter does (a pass, a cell builder): "" for an imported op.
    made_by: ClassVar[str] = ""
    #: Why edgecompile.qat cannot train through it: "" when its qat_forward does.
    not_trainable: ClassVar[str] = ""
    #: The pass that removes it before quantization ("" for the ops that are compiled): a float-only
    #: op has no run_int, emit_c or qat_forward.
    float_only: ClassVar[str] = ""

    # -- float graph -------------------------------------------------------
    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        raise NotImplementedError

    def run_float(self, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        """Short attribute summary for tables (kernel, stride...)."""
        return ""

    # -- cost ----------------------------------------------------------------
    def param_count(self) -> int:
        return int(sum(np.size(p) for p in self.params.values()))

    def macs(self, graph: Graph) -> int:
        return 0

    def is_wide(self, graph: Graph) -> bool:
        """Whether any of its tensors is int16 (then it emits its kernel's _any variant)."""
        return any(graph.tensors[t].bits > 8 for t in list(self.inputs) + list(self.outputs))

    def scratch_bytes(self, graph: Graph) -> int:
        """Arena bytes the C kernel needs while it runs (planned like a tensor live for one step)."""
        return 0

    def plan_subgraphs(self, planner) -> None:
        """Plan the memory of the sub-graphs the op holds (a recurrent cell's body) with `planner`,
        which the memory planner hands over before it asks for scratch_bytes (the ops sit below
        the passes and do not import them).  Most ops hold none."""

    def tile_input_regions(self, graph: Graph, region) -> list | None:
        """The region of each input that the output's spatial `region` reads (tiling.py), for
        running the op on tiles (passes/patches.py); None: the op cannot run on a tile.  int8 only
        (the tiles' copies move bytes)."""
        out = graph.shape(self.outputs[0])
        if not self.same_position or self.is_wide(graph) or len(out) != 3:
            return None
        if any(graph.shape(t) != out for t in self.inputs):  # broadcasting reads other positions
            return None
        return [region] * len(self.inputs)

    def tile_attrs(self, graph: Graph, region) -> dict:
        """The op's attributes on a tile of its output (a window's padding only at real borders)."""
        return dict(self.attrs)

    def overwrite_orders(self, graph: Graph) -> list | None:
        """How the C kernel reads its first input and writes its output (access_order.py), one order
        per kernel variant it may run, so that the memory plan may put the output over the input;
        None: the kernel's reads and writes do not allow it."""
        return None

    def stored_arrays(self) -> list[np.ndarray]:
        """The constant arrays the C stores for this op (its integer parameters, in their storage)."""
        return [np.asarray(v) for v in self.qparams.values()]

    def weight_bytes(self) -> int:
        """Flash bytes of the quantized parameters as emitted."""
        return int(sum(a.size * _ctype_bytes(a) for a in self.stored_arrays()))

    def geometry_arrays(self, graph: Graph) -> list[np.ndarray]:
        """Constant arrays the C stores that follow from the tensor shapes, not from quantization
        (a strided copy's shape and strides): they depend on the graph the op is in."""
        return []

    def flash_bytes(self, graph: Graph) -> int:
        """Flash bytes of every constant array the op's C stores: its parameters and its geometry."""
        return self.weight_bytes() + int(sum(a.size * _ctype_bytes(a) for a in self.geometry_arrays(graph)))

    # -- quantized graph -------------------------------------------------------
    def quantize(self, graph: Graph, options: "QuantOptions") -> None:
        """Choose integer parameters; the tensors' frac bits are already set."""

    def run_int(self, graph: Graph, *qs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def emit_c(self, em: "Emitter") -> None:
        raise NotImplementedError

    # -- quantization-aware training -----------------------------------------------
    def qat_forward(self, model, *xs):
        """run_int in torch for edgecompile.qat: integer-valued float64 tensors in and out (batch axis
        first), straight-through gradients (ops/qat_support.py).  `model` is the QATModel: its graph
        (formats), and the trainable weights, biases and masks of weighted layers."""
        raise self.qat_refusal()

    @classmethod
    def trainable(cls) -> bool:
        """Whether the op defines its QAT forward pass."""
        return cls.qat_forward is not Op.qat_forward

    def qat_refusal(self) -> EdgeCompileError:
        why = f": {self.not_trainable}" if self.not_trainable else " yet"
        return EdgeCompileError(f"quantization-aware training does not support {self.op_type} ('{self.name}'){why}")

    def formats(self, graph: Graph) -> str:
        """Q-format summary for tables: frac bits of input -> output (and weights)."""
        return f"x:{self.format_of(graph, self.inputs[0])} y:{self.format_of(graph, self.outputs[0])}"

    @staticmethod
    def format_of(graph: Graph, tensor: str) -> str:
        """A tensor's frac bits, marked "u" when it is an unsigned code (zero point -128, numerics.py)
        and "z<z>" for another zero point."""
        t = graph.tensors[tensor]
        mark = "" if not t.zero_point else "u" if t.zero_point == -128 else f"z{t.zero_point}"
        return f"{t.frac_bits}{mark}"


def _ctype_bytes(a: np.ndarray) -> int:
    return int(a.dtype.itemsize)


def op_class(op_type: str) -> type[Op]:
    return OP_TYPES[op_type]


class SlidingWindow:
    """Mixin of the ops whose output pixel reads a window of the input (conv, pooling): they run on
    a band of their output given the input's region under it, padded only at the input's own
    borders (tiling.window_need).  The op defines `window()`: kernel, stride, pads, dilation."""

    def tile_input_regions(self, graph: Graph, region) -> list | None:
        if self.is_wide(graph):
            return None
        return [self._tile_window(graph, region)[0]]

    def tile_attrs(self, graph: Graph, region) -> dict:
        return {**self.attrs, "pads": self._tile_window(graph, region)[1]}

    def _tile_window(self, graph: Graph, region):
        return tiling.window_need(region, graph.shape(self.inputs[0])[1:], *self.window())

"""The intermediate representation: a small dataflow graph of typed nodes.

Tensors are named; shapes exclude the batch axis and use PyTorch's element
order (C, H, W).  Each node is an instance of an op class from edgecompile.ops
(dispatch is on that class, never on a node's name).  The same graph carries
float parameters before quantization and integer parameters after it, so the
float reference, the integer simulator and the C generator all walk one
structure.
"""
from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar, Iterable

import numpy as np

from . import numerics
from .errors import EdgeCompileError


@dataclass
class TensorInfo:
    """A tensor of the graph: its shape and, once quantized, its fixed-point format."""

    name: str
    shape: tuple[int, ...]
    frac_bits: int | None = None  # value = (q - zero_point) * 2^-frac_bits (see numerics.py)
    bits: int = 8
    zero_point: int = 0  # an int8 code: 0 signed, -128 unsigned, or placed by the range (passes/quantize.py)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * ((self.bits + 7) // 8)


@dataclass
class Node:
    """One operation.  Subclasses (edgecompile.ops.*) define what it computes."""

    op_type: ClassVar[str] = "?"
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)       # JSON-able float-graph attributes
    params: dict = field(default_factory=dict)      # name -> float np.ndarray
    qattrs: dict = field(default_factory=dict)      # JSON-able quantized attributes
    qparams: dict = field(default_factory=dict)     # name -> integer np.ndarray

    def __repr__(self) -> str:
        return f"{self.op_type}({self.name}: {self.inputs} -> {self.outputs})"


class Graph:
    """A topologically ordered list of nodes over named tensors, with one or several inputs and outputs.

    A batch of samples for a model with several inputs is one (N, total) array: each sample's
    inputs flattened and concatenated in the order of `inputs` (the layout of the C runner's
    inputs.bin); outputs come back the same way.  A single input or output keeps its shape."""

    def __init__(self, name: str = "model"):
        self.name = name
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.notes: list[str] = []  # decisions the passes made, for the report

    # -- construction -------------------------------------------------------
    def add_tensor(self, name: str, shape: Iterable[int]) -> TensorInfo:
        t = TensorInfo(name, tuple(int(d) for d in shape))
        self.tensors[name] = t
        return t

    def add_node(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def unique_tensor_name(self, base: str) -> str:
        name, k = base, 1
        while name in self.tensors:
            k += 1
            name = f"{base}_{k}"
        return name

    # -- queries -------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.tensors[tensor].shape

    @property
    def input(self) -> TensorInfo:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> TensorInfo:
        return self.tensors[self.outputs[0]]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample of inputs: the input's own, or (total size,) for several."""
        return self.input.shape if len(self.inputs) == 1 else (self.sample_size,)

    @property
    def sample_size(self) -> int:
        """Values per sample over all inputs."""
        return sum(self.tensors[t].size for t in self.inputs)

    @property
    def output_size(self) -> int:
        """Values per sample over all outputs."""
        return sum(self.tensors[t].size for t in self.outputs)

    def split_inputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """A batch of samples (see the class) -> each input's batch, in its own shape."""
        return self._split(self.inputs, x)

    def join_outputs(self, env: dict[str, np.ndarray]) -> np.ndarray:
        """The outputs of a batch: the output itself, or for several, each flattened and concatenated."""
        if len(self.outputs) == 1:
            return env[self.outputs[0]]
        return np.concatenate([env[t].reshape(len(env[t]), -1) for t in self.outputs], axis=1)

    def split_outputs(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """The inverse of join_outputs."""
        return self._split(self.outputs, y)

    def _split(self, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
        """Rows of the tensors `names` side by side, flattened -> each tensor's batch in its shape."""
        if len(names) == 1:
            return {names[0]: x}
        x = np.asarray(x).reshape(len(x), -1)
        split, start = {}, 0
        for name in names:
            t = self.tensors[name]
            split[name] = x[:, start:start + t.size].reshape((len(x),) + t.shape)
            start += t.size
        return split

    # -- editing -------------------------------------------------------------
    def remove_node(self, node: Node, keep: str) -> None:
        """Delete a single-input node, rewiring its consumers to `keep`."""
        out = node.outputs[0]
        self.nodes.remove(node)
        self.rename_uses(out, keep)
        self.tensors.pop(out, None)

    def rename_uses(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.inputs = [new if t == old else t for t in n.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def rename_tensor(self, old: str, new: str) -> None:
        """Give tensor `old` the name `new` everywhere (producer, consumers, outputs)."""
        info = self.tensors.pop(old)
        info.name = new
        self.tensors[new] = info
        for n in self.nodes:
            n.outputs = [new if t == old else t for t in n.outputs]
        self.rename_uses(old, new)
        self.inputs = [new if t == old else t for t in self.inputs]

    def prune_tensors(self) -> None:
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        for name in list(self.tensors):
            if name not in used:
                del self.tensors[name]

    def take_quantization(self, other: "Graph") -> None:
        """Take every format and integer parameter of `other`, a quantized copy of this graph (a pass
        that tried something on a copy keeps it this way)."""
        for name, t in other.tensors.items():
            mine = self.tensors[name]
            mine.frac_bits, mine.bits, mine.zero_point = t.frac_bits, t.bits, t.zero_point
        for node, twin in zip(self.nodes, other.nodes):
            node.qparams, node.qattrs = twin.qparams, twin.qattrs

    def check(self) -> None:
        """Structural invariants every pass must keep (a failure here is a bug)."""
        defined = set(self.inputs)
        for n in self.nodes:
            for t in n.inputs:
                if t not in defined:
                    raise AssertionError(f"{n} reads {t} before it is defined")
            defined.update(n.outputs)
        for t in self.outputs:
            if t not in defined:
                raise AssertionError(f"graph output {t} is never produced")

    # -- evaluation ----------------------------------------------------------
    def run_float(self, x: np.ndarray, keep_all: bool = False):
        """Float reference: x has a leading batch axis.  Returns the output(s), or all tensors.

        The passes ask for the same evaluation several times (the reference of one float graph on the
        same samples), so the outputs of the last few are kept, by the digest of everything they
        depend on: a repeat returns a copy of the same floats, a changed graph or input misses.  The
        tensors of the last keep_all evaluation are kept as well (calibration's and cross-layer
        equalization's statistics read the same graph's), as read-only arrays."""
        key = self.content_key(x)
        if keep_all and key is not None and _float_env[0] == key:
            return dict(_float_env[1])
        if not keep_all and key in _FLOAT_OUTPUTS:
            _FLOAT_OUTPUTS.move_to_end(key)
            return self.join_outputs({t: v.copy() for t, v in _FLOAT_OUTPUTS[key].items()})
        env = self.evaluate(self.split_inputs(x))
        if key is not None:
            _FLOAT_OUTPUTS[key] = {t: env[t].copy() for t in self.outputs}
            while len(_FLOAT_OUTPUTS) > FLOAT_CACHE_SIZE:
                _FLOAT_OUTPUTS.popitem(last=False)
            if keep_all:  # the last whole evaluation is kept too, read-only (its readers only read)
                for v in env.values():
                    v.flags.writeable = False
                small = sum(v.nbytes for v in env.values()) <= FLOAT_ENV_BYTES
                _float_env[:] = [key, dict(env)] if small else [None, None]
        return env if keep_all else self.join_outputs(env)

    def content_key(self, x: np.ndarray, quantized: bool = False) -> bytes | None:
        """A digest of what evaluating the graph on x depends on: node classes, names, wiring, attrs,
        params, tensor shapes and the input batch, and with `quantized` the integer model too (qattrs,
        qparams, tensor formats); None for a graph with a recurrent cell (its op keeps state)."""
        if any(getattr(n, "body", None) is not None for n in self.nodes):
            return None
        h = hashlib.blake2b(digest_size=32)
        _digest(h, (self.inputs, self.outputs, [(t.name, t.shape) + ((t.frac_bits, t.bits, t.zero_point) if quantized
                                                                     else ()) for t in self.tensors.values()]))
        for n in self.nodes:
            _digest(h, (type(n).__module__, type(n).__qualname__, n.name, n.inputs, n.outputs, n.attrs, n.params))
            if quantized:
                _digest(h, (n.qattrs, n.qparams))
        _digest(h, np.asarray(x))
        return h.digest()

    def evaluate(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Float reference over named inputs (a recurrent cell's body has several): every tensor."""
        env = {name: np.asarray(v, dtype=np.float32) for name, v in inputs.items()}
        for n in self.nodes:
            outs = n.run_float(*[env[t] for t in n.inputs])
            env[n.outputs[0]] = np.asarray(outs, dtype=np.float32)
        return env

    def evaluate_int(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Integer inference over named inputs, every tensor: the simulator's walk (simulate.py), here
        beside the float one because a recurrent cell runs its body with it (ops/recurrent.py)."""
        env = {name: np.asarray(v, dtype=np.int64) for name, v in inputs.items()}
        for node in self.nodes:
            self.run_node_int(node, env)
        return env

    def run_node_int(self, node, env: dict[str, np.ndarray]) -> None:
        """One step of the simulator's walk: node's integer output from env's tensors, checked and
        stored in env."""
        y = node.run_int(self, *[env[t] for t in node.inputs])
        t = self.tensors[node.outputs[0]]
        lo, hi = numerics.qrange(t.bits)
        # Every kernel saturates; a value outside the type is a simulator bug.
        assert y.size == 0 or (y.min() >= lo and y.max() <= hi), f"{node} produced values outside int{t.bits}"
        # Between layers a tensor's codes are stored in its own C type (less memory traffic for the
        # next op, which widens them: numerics.storage_dtype); the graph's outputs stay int64.
        env[t.name] = y.astype(np.int64 if t.name in self.outputs else numerics.storage_dtype(lo, hi), copy=False)


FLOAT_CACHE_SIZE = 8  # float evaluations whose outputs Graph.run_float keeps
_FLOAT_OUTPUTS: OrderedDict[bytes, dict[str, np.ndarray]] = OrderedDict()
FLOAT_ENV_BYTES = 256 << 20  # the last keep_all evaluation (every tensor) is kept up to this size
_float_env: list = [None, None]  # [key, env] of the last keep_all evaluation


def _digest(h, value) -> None:
    """Feed a value of attrs/params (dicts, sequences, arrays, scalars, strings) to a hash, unambiguously."""
    if isinstance(value, dict):
        h.update(b"{%d" % len(value))
        for k, v in value.items():
            _digest(h, k)
            _digest(h, v)
    elif isinstance(value, (list, tuple)):
        h.update(b"[%d" % len(value))
        for v in value:
            _digest(h, v)
    elif isinstance(value, np.ndarray) and value.dtype.hasobject:
        _digest(h, ("object array", value.shape, value.reshape(-1).tolist()))
    elif isinstance(value, np.ndarray):
        h.update(f"a{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).view(np.uint8).reshape(-1) if value.size else b"")
    else:
        text = f"{type(value).__name__}:{value!r}".encode()
        h.update(b"s%d:" % len(text) + text)


_C_RESERVED = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
    "typedef", "union", "unsigned", "void", "volatile", "while", "main",
}


def c_identifier(text: str, prefix: str = "m") -> str:
    """A valid, readable C identifier from arbitrary text ("fc1.weight" -> "fc1_weight")."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", str(text))
    ident = re.sub(r"_+", "_", ident).strip("_") or prefix
    if ident[0].isdigit():
        ident = f"{prefix}_{ident}"
    if ident in _C_RESERVED or ident.startswith("__") or re.match(r"_[A-Z]", ident):
        ident = f"{prefix}_{ident}"
    return ident


def require(cond: bool, message: str) -> None:
    """Raise a user-facing error unless `cond` holds."""
    if not cond:
        raise EdgeCompileError(message)

"""C generation: render the quantized graph and its memory plan into C sources.

Each op's `emit_c` asks the Emitter for constant arrays (weights in flash) and
for the C expression of a tensor's buffer (the caller's input/output pointer
or an offset in the static arena), and appends one kernel call.  The
templates in templates/ lay out the files around those pieces.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jinja2
import numpy as np

from . import __version__
from .ir import Graph, c_identifier
from .passes.plan_memory import MemoryPlan, scratch_name
from .resources import resource_dir

_C_TYPES = {"int8_t": np.int8, "int16_t": np.int16, "int32_t": np.int32, "uint8_t": np.uint8,
            "uint16_t": np.uint16}


@dataclass
class CArray:
    ctype: str
    ident: str
    values: np.ndarray
    comment: str = ""

    def initializer(self, per_line: int = 16) -> str:
        flat = [str(int(v)) for v in np.asarray(self.values).reshape(-1)]
        lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
        return ",\n    ".join(lines)

    @property
    def size(self) -> int:
        return int(np.asarray(self.values).size)


@dataclass
class Statement:
    code: str
    kind: str = "call"  # call | comment


@dataclass
class Emitter:
    graph: Graph
    plan: MemoryPlan
    arrays: list[CArray] = field(default_factory=list)
    body: list[Statement] = field(default_factory=list)
    runtime: set[str] = field(default_factory=set)
    _idents: set[str] = field(default_factory=set)

    def const_array(self, base: str, ctype: str, values) -> str:
        values = np.asarray(values)
        info = np.iinfo(_C_TYPES[ctype])
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise ValueError(f"{base}: values do not fit {ctype}")
        ident = c_identifier(base)
        k = 1
        while ident in self._idents:
            k += 1
            ident = f"{c_identifier(base)}_{k}"
        self._idents.add(ident)
        if values.size == 0:  # C has no empty arrays: one unused zero (e.g. an all-zero pruned layer)
            values = np.zeros(1, dtype=values.dtype)
        self.arrays.append(CArray(ctype, ident, values))
        return ident

    def buffer(self, tensor: str) -> str:
        where, offset = self.plan.location(tensor)
        if where == "input":
            return "input"
        if where == "output":
            return "output"
        return f"&ec_arena.bytes[{offset}]"

    def scratch(self, node) -> str:
        """C pointer to the node's scratch buffer (see Op.scratch_bytes)."""
        _, offset = self.plan.location(scratch_name(node))
        return f"&ec_arena.bytes[{offset}]"

    def call(self, code: str) -> None:
        self.body.append(Statement(code + ";"))

    def comment(self, text: str) -> None:
        self.body.append(Statement(text, "comment"))


def emit_model(graph: Graph, plan: MemoryPlan) -> Emitter:
    em = Emitter(graph, plan)
    for node in graph.nodes:
        em.runtime.update(node.runtime_files)
        shape = "x".join(str(d) for d in graph.shape(node.outputs[0]))
        if not node.is_alias:
            em.comment(f"{node.name}: {node.op_type} {node.describe()} -> {shape}".replace("  ", " "))
        before = len(em.body)
        node.emit_c(em)
        if any(s.kind == "call" for s in em.body[before:]):
            em.body.append(Statement("EC_PROFILE_MARK();"))
    return em


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["version"] = __version__
    return env

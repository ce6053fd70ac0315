"""C generation: render the quantized graph and its memory plan into C sources.

Each op's `emit_c` asks the Emitter for constant arrays (weights in flash) and
for the C expression of a tensor's buffer (one of the caller's input/output
pointers, or an offset in the arena, static or the caller's), and appends one
kernel call.  The
templates in templates/ lay out the files around those pieces.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jinja2
import numpy as np

from . import __version__
from .c_api import io_parameters
from .c_calls import name_arguments
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
    align: int = 0  # bytes; 0: the C type's own alignment

    def initializer(self, per_line: int = 16) -> str:
        flat = [str(int(v)) for v in np.asarray(self.values).reshape(-1)]
        lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
        return ",\n    ".join(lines)

    @property
    def size(self) -> int:
        return int(np.asarray(self.values).size)


@dataclass
class CStruct:
    ctype: str
    ident: str
    initializer: str  # a C initializer list, e.g. "{EC_BITMAP, 0, mask, 0, 0, values}"


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
    _shared: dict = field(default_factory=dict)
    structs: list[CStruct] = field(default_factory=list)
    io_params: dict[str, str] = field(default_factory=dict)  # model input/output tensor -> C parameter

    #: Store every array once, however small (the tiles of patch-based execution repeat each layer).
    share_all_arrays = False

    def __post_init__(self):
        if not self.io_params:
            self.io_params = io_parameters(self.graph)

    def const_array(self, base: str, ctype: str, values, align: int = 0) -> str:
        """A static const array in flash; `align` > 0 declares it EC_ALIGNED(align) (runtime_c/ec_fast.h),
        for kernels that read it a word at a time."""
        values = np.asarray(values)
        info = np.iinfo(_C_TYPES[ctype])
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise ValueError(f"{base}: values do not fit {ctype}")
        # Identical weight matrices are stored once (a FastGRNN cell's two gates share W and U);
        # tiny arrays (shifts) are left alone so each layer's flash figure stays its own.
        key = ((ctype, align, values.shape, values.tobytes()) if values.nbytes >= 64 or self.share_all_arrays
               else None)
        if key in self._shared:
            return self._shared[key]
        ident = self._fresh_identifier(base)
        if values.size == 0:  # C has no empty arrays: one unused zero (e.g. an all-zero pruned layer)
            values = np.zeros(1, dtype=values.dtype)
        self.arrays.append(CArray(ctype, ident, values, align=align))
        if key is not None:
            self._shared[key] = ident
        return ident

    def _fresh_identifier(self, base: str) -> str:
        """A sanitized C identifier from `base`, suffixed _2, _3, ... if already taken."""
        ident = c_identifier(base)
        k = 1
        while ident in self._idents:
            k += 1
            ident = f"{c_identifier(base)}_{k}"
        self._idents.add(ident)
        return ident

    def const_struct(self, base: str, ctype: str, initializer: str) -> str:
        """A static const struct (e.g. a sparse matrix descriptor pointing at const arrays)."""
        ident = self._fresh_identifier(base)
        self.structs.append(CStruct(ctype, ident, initializer))
        return ident

    def buffer(self, tensor: str) -> str:
        where, offset = self.plan.location(tensor)
        if where in ("input", "output"):
            param = self.io_params[self.plan.caller_tensor(tensor)]
            # every buffer is a byte pointer (kernels add byte offsets): an int16_t output's too
            return f"(int8_t *){param}" if self.graph.tensors[tensor].bits == 16 else param
        return self.arena(offset)

    @staticmethod
    def arena(offset: int) -> str:
        """C pointer to a byte of the arena: `ec_arena` is the run function's int8_t pointer to the static
        arena or to the caller's (templates/model.c.j2)."""
        return f"&ec_arena[{offset}]"

    def scratch(self, node) -> str:
        """C pointer to the node's scratch buffer (see Op.scratch_bytes)."""
        return self.arena(self.scratch_offset(node))

    def scratch_offset(self, node) -> int:
        """Arena offset of the node's scratch buffer."""
        return self.plan.location(scratch_name(node))[1]

    def unique(self, prefix: str) -> int:
        """A number not used before with this prefix (for C loop variables)."""
        count = sum(1 for i in self._idents if i.startswith(f"#{prefix}"))
        self._idents.add(f"#{prefix}{count}")
        return count

    def arg(self, tensor: str, wide: bool) -> str:
        """A tensor as a kernel argument: its buffer, followed by its element size for an _any kernel."""
        return f"{self.buffer(tensor)}, {self.element_bytes(tensor)}" if wide else self.buffer(tensor)

    def element_bytes(self, tensor: str) -> int:
        """1 for an int8 tensor, 2 for int16."""
        return (self.graph.tensors[tensor].bits + 7) // 8

    def raw(self, code: str) -> None:
        """A line of C as is (loop braces)."""
        self.body.append(Statement(code, "raw"))

    def call(self, code: str) -> None:
        self.body.append(Statement(name_arguments(code) + ";"))

    def comment(self, text: str) -> None:
        self.body.append(Statement(text, "comment"))

    def sub_emitter(self, graph: Graph, plan: MemoryPlan, externals: dict[str, str], base: int) -> "Emitter":
        """The emitter of a sub-graph run inside this function (a recurrent cell's body, BodyEmitter):
        the op that holds it asks for it here, as the ops do not import the C generator."""
        return BodyEmitter(self, graph, plan, externals, base)


def emit_model(graph: Graph, plan: MemoryPlan) -> Emitter:
    em = Emitter(graph, plan)
    patches = plan.patches
    for node in graph.nodes:
        if patches is not None and node.name in patches.nodes:
            if node.name == patches.nodes[0]:
                emit_patches(em, patches)
                em.body.append(Statement("EC_PROFILE_MARK();"))
            continue
        em.runtime.update(node.runtime_files)
        shape = "x".join(str(d) for d in graph.shape(node.outputs[0]))
        if not node.is_alias:
            em.comment(f"{node.name}: {node.op_type} {node.describe()} -> {shape}".replace("  ", " "))
        before = len(em.body)
        node.emit_c(em)
        if any(s.kind == "call" for s in em.body[before:]):
            em.body.append(Statement("EC_PROFILE_MARK();"))
    return em


def emit_patches(em: Emitter, patches) -> None:
    """The first layers tile by tile (passes/patches.py): per tile, copy the input's region into
    the tiles' memory, run the layers on their regions, paste the tile into the stage's output."""
    graph = em.graph
    c, h, w = graph.shape(patches.x)
    oc, oh, ow = graph.shape(patches.y)
    x_tile, y_tile = patches.scratch_offset, patches.scratch_offset + patches.x_bytes
    body = y_tile + patches.y_bytes
    em.runtime.add("ec_layout")
    em.comment(f"{', '.join(patches.nodes)}: in {len(patches.tiles)} patches ({patches.grid[0]}x{patches.grid[1]}) "
               f"of {oc}x{oh}x{ow}")
    for i, tile in enumerate(patches.tiles, start=1):
        (y0, y1, x0, x1), (p0, p1, q0, q1) = tile.x_region, tile.y_region
        em.comment(f"patch {i}: output rows {p0}..{p1 - 1}, columns {q0}..{q1 - 1}")
        em.call(f"ec_crop_s8({em.buffer(patches.x)}, {c}, {h}, {w}, {y0}, {x0}, {em.arena(x_tile)}, {y1 - y0}, "
                f"{x1 - x0})")
        tiles = TileEmitter(em, tile.graph, tile.plan, {patches.x: em.arena(x_tile), patches.y: em.arena(y_tile)},
                            body)
        for node in tile.graph.nodes:
            em.runtime.update(node.runtime_files)
            node.emit_c(tiles)
        em.call(f"ec_paste_s8({em.arena(y_tile)}, {oc}, {p1 - p0}, {q1 - q0}, {em.buffer(patches.y)}, {oh}, {ow}, "
                f"{p0}, {q0})")


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["version"] = __version__
    return env


class BodyEmitter(Emitter):
    """Emits a recurrent cell's body into its parent's function: the same constant arrays,
    kernels and statements, but tensors placed by the body's own memory plan at `base` in the
    parent's arena, and the body's inputs/outputs at the C expressions in `externals`."""

    def __init__(self, parent: Emitter, graph: Graph, plan: MemoryPlan, externals: dict[str, str], base: int):
        super().__init__(graph, plan, parent.arrays, parent.body, parent.runtime, parent._idents, parent._shared,
                         parent.structs, {t: t for t in graph.inputs + graph.outputs})
        self.externals = externals
        self.base = base

    def buffer(self, tensor: str) -> str:
        if tensor in self.externals:
            return self.externals[tensor]
        where, offset = self.plan.location(tensor)
        return self.arena(self.base + offset)

    def scratch_offset(self, node) -> int:
        return self.base + self.plan.location(scratch_name(node))[1]


class TileEmitter(BodyEmitter):
    """A tile's layers (emit_patches): every array shared with the other tiles."""

    share_all_arrays = True

"""Patch-based execution of a model's first layers (part of --memory-plan auto).

The first layers of an image model hold its largest activations.  Running them one spatial
tile of their last output at a time keeps only a tile of each in memory: for every tile the
layers compute the region of each tensor that the tile needs (its receptive field; the halo
that neighbouring tiles share is computed again by each), and the tile of the last output is
pasted into the whole tensor, which the rest of the model reads layer by layer.

Bit-exactness: every output value is computed by the same integer arithmetic from the same
input values as in the whole-tensor run.  A window's value depends only on the values under
it, and padding is applied only at a tensor's own borders (tiling.window_need); elementwise
ops work position by position.  So the tiled run equals the simulator's untiled one byte for
byte; tests/test_patches.py runs both on every tile, and `verify` runs the tiled C.

The plan: a *stage* is a prefix of the graph whose tensors are (C, H, W) int8, read only
inside the stage except its last output, and whose ops can run on tiles
(Op.tile_input_regions).  For each stage and number of bands (GRIDS), the stage needs a
scratch buffer (the largest tile's input copy, output tile and its own memory plan) and costs
extra MACs (the halos) and kernel calls; the rest of the model is planned as usual.  Of the
candidates whose estimated cost fits the budget, those within ARENA_SLACK of the smallest arena
compete on cost, if they beat the plan without patches.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from .. import tiling
from ..arena import round_up
from ..ir import Graph
from ..ops.base import Op
from ..ops.slice import Slice

# Bands of whole rows: each kernel keeps its long rows, and the copies in and out are one run per
# plane.  (2x2 tiles of the VWW MobileNet measured +14 % instructions on an M4 and +20 % on an M55,
# four bands +5 % and +7 %, for about the same arena.)
GRIDS = [(r, 1) for r in range(2, 9)]
# What a recomputed MAC costs, in the model's average MACs: the halos lie in the first layers
# (a 3-channel stem conv, depthwise layers), slower per MAC than the rest.  Measured with bench:
# VWW MobileNetV1 in six bands, 2.7 % more MACs, +5.2 % instructions on an M4 and +8.3 % on an
# M55; MobileNetV2-tiny in four bands, 3.9 % more MACs, +5.2 % and +5.9 %.
RECOMPUTE_COST = 3.0
# What each further kernel call costs (one more band of one layer: its setup, the copies in and out),
# in MACs: LeNet-5's first two layers in five bands, no MAC recomputed, +5,600 instructions on an M4.
CALL_COST = 500
# An arena within this fraction of the smallest is as good: the cheapest such plan wins.
ARENA_SLACK = 0.05


@dataclass
class Tile:
    graph: Graph  # the stage's layers on this tile's regions (input: the input's region, output: the tile)
    plan: object  # its MemoryPlan
    x_region: tiling.Region  # the region of the stage's input it reads
    y_region: tiling.Region  # the region of the stage's output it writes
    macs: int


@dataclass
class PatchPlan:
    nodes: list[str]  # the stage's layers, in order
    x: str  # the stage's input: the model's input
    y: str  # the stage's output, read by the rest of the model
    grid: tuple[int, int]
    tiles: list[Tile]
    macs: int  # the stage's MACs run once
    proxy: str = "patches"  # the node that stands for the stage in the outer plan (its scratch: the tiles)
    scratch_offset: int = -1  # where the tiles' memory starts in the arena
    inner: set[str] = field(default_factory=set)  # tensors that exist only tile by tile

    @property
    def x_bytes(self) -> int:
        return max(round_up(t.graph.tensors[self.x].nbytes) for t in self.tiles)

    @property
    def y_bytes(self) -> int:
        return max(round_up(t.graph.tensors[self.y].nbytes) for t in self.tiles)

    @property
    def body_bytes(self) -> int:
        return max(t.plan.arena_size for t in self.tiles)

    @property
    def scratch_bytes(self) -> int:
        """The input copy, the output tile, then the tile's own arena."""
        return self.x_bytes + self.y_bytes + self.body_bytes

    @property
    def extra_macs(self) -> int:
        return sum(t.macs for t in self.tiles) - self.macs

    @property
    def cost(self) -> float:
        """What the patches cost beyond the layers run once, in the model's average MACs (estimated)."""
        return RECOMPUTE_COST * self.extra_macs + CALL_COST * (len(self.tiles) - 1) * len(self.nodes)


class PatchStage(Op):
    """Stands for a stage in the outer memory plan: reads the model's input, writes the stage's
    output, and needs the tiles' memory while it runs.  Never part of a model's graph."""

    op_type = "PatchStage"

    def scratch_bytes(self, graph: Graph) -> int:
        return int(self.attrs["scratch"])


def stage_ends(graph: Graph) -> list[int]:
    """Lengths k of the prefixes nodes[:k] that can run tile by tile (the module docstring)."""
    if len(graph.inputs) != 1 or len(graph.shape(graph.inputs[0])) != 3 or graph.tensors[graph.inputs[0]].bits != 8:
        return []
    readers: dict[str, list[int]] = {}
    for i, node in enumerate(graph.nodes):
        for t in node.inputs:
            readers.setdefault(t, []).append(i)
    ends = []
    for k, node in enumerate(graph.nodes, start=1):
        if node.is_alias or node.tile_input_regions(graph, (0, 1, 0, 1)) is None:
            break
        y = node.outputs[0]
        if y in graph.outputs or graph.tensors[y].bits != 8 or len(graph.shape(y)) != 3:
            break
        inner = [n.outputs[0] for n in graph.nodes[:k - 1]]
        if all(max(readers.get(t, [0])) < k for t in inner) and max(readers.get(y, [0])) >= k:
            ends.append(k)
    return ends


def tile_graph(graph: Graph, nodes: list, region: tiling.Region) -> tuple[Graph, dict[str, tiling.Region]]:
    """The stage's layers on the tile `region` of its last output: each tensor on the region its
    readers need, a copy (Slice) where a reader needs less than the tensor's region holds; and
    each tensor's region of the whole."""
    y = nodes[-1].outputs[0]
    regions: dict[str, tiling.Region] = {y: region}
    needs: dict[tuple[str, str], tiling.Region] = {}
    for node in reversed(nodes):
        out_region = regions[node.outputs[0]]
        for t, r in zip(node.inputs, node.tile_input_regions(graph, out_region)):
            needs[(node.name, t)] = r
            regions[t] = tiling.union(regions.get(t), r)
    g = Graph(f"{graph.name}_tile")
    for t, r in regions.items():
        info = graph.tensors[t]
        g.tensors[t] = replace(info, shape=(info.shape[0],) + tiling.extent(r))
    x = graph.inputs[0]
    for node in nodes:
        inputs = []
        for t in node.inputs:
            need, held = needs[(node.name, t)], regions[t]
            if need == held:
                inputs.append(t)
                continue
            part = f"{t}@{node.name}"
            shape = (graph.tensors[t].shape[0],) + tiling.extent(need)
            g.tensors[part] = replace(graph.tensors[t], name=part, shape=shape)
            g.add_node(Slice(f"{node.name}_part", [t], [part],
                             attrs={"starts": [0, need[0] - held[0], need[2] - held[2]], "steps": [1, 1, 1],
                                    "out_shape": list(shape)}))
            inputs.append(part)
        tile_node = copy.copy(node)
        tile_node.inputs = inputs
        tile_node.attrs = node.tile_attrs(graph, regions[node.outputs[0]])
        g.add_node(tile_node)
    g.inputs, g.outputs = [x], [y]
    return g, regions


def build(graph: Graph, k: int, grid: tuple[int, int]) -> PatchPlan:
    """The stage nodes[:k] on `grid` tiles of its output, the tiles' memory not yet planned."""
    nodes = graph.nodes[:k]
    y = nodes[-1].outputs[0]
    _, h, w = graph.shape(y)
    tiles = []
    for region in tiling.grid(h, w, *grid):
        g, regions = tile_graph(graph, nodes, region)
        tiles.append(Tile(g, None, regions[graph.inputs[0]], region, sum(n.macs(g) for n in g.nodes)))
    inner = {n.outputs[0] for n in nodes[:-1]}
    return PatchPlan([n.name for n in nodes], graph.inputs[0], y, grid, tiles, sum(n.macs(graph) for n in nodes),
                     proxy=f"{nodes[0].name}..{nodes[-1].name} in patches", inner=inner)


def plan_tiles(patches: PatchPlan, plan_memory, search: int) -> None:
    """Each tile's own memory plan (tiles of the same shapes and padding share one)."""
    plans: dict = {}
    for tile in patches.tiles:
        g = tile.graph
        key = (tuple((t, info.shape) for t, info in g.tensors.items()),
               tuple(str(n.attrs.get("pads")) for n in g.nodes))
        if key not in plans:
            plans[key] = plan_memory(g, "auto", patch_budget=0, search=search)
        tile.plan = plans[key]


def _least_arena(graph: Graph, patches: PatchPlan) -> int:
    """No plan with these patches needs less: the stage's output and the largest tile's input copy,
    output tile and live tensors (at least their bound), at the stage's last step."""
    from .plan_memory import build_buffers, lower_bound
    body = max(lower_bound(build_buffers(t.graph, overwrite=True)) for t in patches.tiles)
    return patches.x_bytes + patches.y_bytes + body + round_up(graph.tensors[patches.y].nbytes)


def outer_graph(graph: Graph, patches: PatchPlan) -> Graph:
    """The model with the stage as one node (PatchStage), for planning the rest of the memory."""
    g = Graph(graph.name)
    g.tensors = {t: info for t, info in graph.tensors.items() if t not in patches.inner}
    g.inputs, g.outputs, g.notes = list(graph.inputs), list(graph.outputs), graph.notes
    g.add_node(PatchStage(patches.proxy, [patches.x], [patches.y], attrs={"scratch": patches.scratch_bytes}))
    for node in graph.nodes[len(patches.nodes):]:
        g.add_node(node)
    return g


def has_empty_tile(patches: PatchPlan) -> bool:
    """A tile whose output rows read only a layer's padding (a strided conv with a wide pad) needs
    no rows of the layers before it: an empty band, which the kernels cannot take."""
    return any(d <= 0 for tile in patches.tiles for info in tile.graph.tensors.values() for d in info.shape)


def tile_grid_fits(graph: Graph, k: int, grid: tuple[int, int]) -> bool:
    _, h, w = graph.shape(graph.nodes[k - 1].outputs[0])
    return grid[0] <= h and grid[1] <= w


def choose(graph: Graph, budget: float, without, plan_memory):
    """Patches whose cost stays within `budget` (a fraction of the model's MACs) and whose arena is
    within ARENA_SLACK of the smallest such arena, the cheapest of those; None when no patches
    beat `without` (the plan without them).  Returns (plan, PatchPlan)."""
    if budget <= 0:
        return None
    total = sum(n.macs(graph) for n in graph.nodes)
    ends = [k for k in stage_ends(graph) if k > without.peak_step]  # a stage that ends before the peak saves nothing
    found = []
    for grid in GRIDS:
        for k in ends:
            if not tile_grid_fits(graph, k, grid):
                break
            patches = build(graph, k, grid)
            if patches.cost > budget * total:
                break  # a longer stage recomputes more
            if has_empty_tile(patches):
                continue
            smallest = min((a for a, _, _, _ in found), default=without.arena_size)
            if _least_arena(graph, patches) > smallest * (1 + ARENA_SLACK):
                continue
            plan_tiles(patches, plan_memory, search=0)  # quick plans to compare candidates
            plan = plan_memory(outer_graph(graph, patches), "auto", patch_budget=0, search=0)
            if plan.arena_size < without.arena_size:
                found.append((plan.arena_size, patches.cost, id(patches), patches))
    if not found:
        return None
    smallest = min(a for a, _, _, _ in found)
    _, _, _, patches = min((f for f in found if f[0] <= smallest * (1 + ARENA_SLACK)), key=lambda f: (f[1], f[0]))
    plan_tiles(patches, plan_memory, search=20000)  # the chosen one planned in full
    plan = plan_memory(outer_graph(graph, patches), "auto", patch_budget=0)
    patches.scratch_offset = plan.location(f"{patches.proxy}#scratch")[1]
    return plan, patches

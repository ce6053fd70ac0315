"""Static memory plan: every activation gets an offset in one arena.

Buffers whose lifetimes do not overlap share memory.  The model's input and
output live in the caller's buffers, so they take no arena space; a reshape's
output is its input's buffer (one "group"), and so is an elementwise op's
output when nothing reads its input afterwards (in place).  A kernel's scratch
memory is a buffer live during its own step only.  Every buffer starts on a
4-byte boundary (sizes are rounded up to 4) so word-wide loads are legal on
every core; the bounds are computed on the same rounded sizes.

Mode "layer": a node's inputs and output are live at its step and never overlap.
The lower bound on such a plan is the largest total size of the groups live at
one step (for a chain of layers: the largest input+output pair inside the
arena).  Several placement heuristics are tried and the smallest plan wins;
for chains the two-ended strategy meets the bound exactly.

Mode "in-place" goes below that layer-by-layer bound: a layer whose C kernel
declares the order of its reads and writes (Op.overwrite_orders,
access_order.py) may put its output over its own input when nothing reads that
input afterwards, starting exactly `gap` bytes below it.  The pair then needs
max(output, gap + input) bytes instead of their sum; the bound of that mode
counts the pair so.

Mode "auto" (the default) also runs the first layers in bands of rows when that
lowers the arena within a recompute budget (passes/patches.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..access_order import smallest_gap
from ..arena import ALIGN, round_up
from ..errors import EdgeCompileError
from ..ir import Graph

@dataclass
class Buffer:
    tensors: list[str]
    size: int  # bytes, rounded up to ALIGN
    first: int  # first step at which it is live (defined)
    last: int  # last step at which it is read
    external: str | None = None  # "input" / "output": lives in the caller's buffer
    offset: int = -1
    io_tensor: str | None = None  # the model input/output whose caller's buffer this is
    writes_over: "Buffer | None" = field(default=None, repr=False)  # the dying input it may overlap
    gap: int = 0  # then it starts at least this many bytes below that input

    @property
    def is_scratch(self) -> bool:
        return self.tensors[0].endswith("#scratch")

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last

    def saving(self) -> int:
        """Bytes it shares with the input it writes over, at most (0 when it writes over none)."""
        if self.writes_over is None:
            return 0
        return max(0, min(self.writes_over.size, self.size - self.gap))


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    arena_size: int
    lower_bound: int
    total_activation_bytes: int  # every activation in its own buffer (no sharing)
    strategy: str
    offsets: dict[str, int] = field(default_factory=dict)  # tensor -> arena offset (arena tensors only)
    mode: str = "layer"  # "layer": outputs apart from inputs; "auto": over dying inputs where allowed
    layer_bound: int = 0  # the layer-by-layer bound (no output over its input)
    peak_step: int = -1  # the step (node index) where the live buffers need the most memory
    overlapping: list[str] = field(default_factory=list)  # layers whose output lies over their input
    peak: str = "-"  # the layer at peak_step
    patches: object = None  # passes.patches.PatchPlan: the first layers run tile by tile

    def location(self, tensor: str) -> tuple[str, int]:
        """('input'|'output'|'arena', offset) of a tensor; ('patch', -1) for a tensor that exists
        only tile by tile (passes/patches.py)."""
        if self.patches is not None and tensor in self.patches.inner:
            return ("patch", -1)
        for b in self.buffers:
            if tensor in b.tensors:
                return (b.external, 0) if b.external else ("arena", b.offset)
        raise KeyError(tensor)

    def caller_tensor(self, tensor: str) -> str:
        """The model input or output whose caller's buffer holds `tensor`."""
        for b in self.buffers:
            if tensor in b.tensors and b.io_tensor:
                return b.io_tensor
        raise KeyError(tensor)


def _last_uses(graph: Graph) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for t in node.inputs:
            last[t] = i
    return last


def build_buffers(graph: Graph, overwrite: bool = False) -> list[Buffer]:
    group_of: dict[str, int] = {}
    groups: list[list[str]] = []
    last_use = _last_uses(graph)
    for name in graph.inputs:
        group_of[name] = len(groups)
        groups.append([name])
    for i, node in enumerate(graph.nodes):
        out = node.outputs[0]
        if node.is_alias or (node.in_place and _can_overwrite(graph, node, i, groups[group_of[node.inputs[0]]],
                                                              last_use)):
            g = group_of[node.inputs[0]]
            group_of[out] = g
            groups[g].append(out)
        else:
            group_of[out] = len(groups)
            groups.append([out])
    end = len(graph.nodes)
    buffers = []
    for members in groups:
        steps_def = [-1 if t in graph.inputs else _producer_step(graph, t) for t in members]
        steps_use = [i for i, n in enumerate(graph.nodes) if any(t in n.inputs for t in members)]
        last = max(steps_use, default=max(steps_def))
        external = io_tensor = None
        if any(t in graph.inputs for t in members):
            external, io_tensor = "input", members[0]
        outs = [t for t in members if t in graph.outputs]
        if len(outs) > 1:
            raise EdgeCompileError(f"the model's outputs {', '.join(outs)} are views of one another (a Reshape or "
                                   "Flatten of another output); return only one of them")
        if outs:
            io_tensor = outs[0]
            if external:
                raise EdgeCompileError("the model computes nothing: its output is its input after only removable "
                                       "or view ops (Identity, Dropout, Flatten, Reshape); export a model with at "
                                       "least one layer")
            external, last = "output", end
        size = round_up(graph.tensors[members[0]].nbytes)
        buffers.append(Buffer(members, size, min(steps_def), last, external, io_tensor=io_tensor))
    if overwrite:
        _pair_overwrites(graph, buffers)
    # Working memory a kernel needs while it runs (e.g. an im2col buffer): live for its step only.
    for i, node in enumerate(graph.nodes):
        node.plan_subgraphs(plan_memory)  # a recurrent cell's scratch holds its body's arena
        need = node.scratch_bytes(graph)
        if need > 0:
            buffers.append(Buffer([scratch_name(node)], round_up(need), i, i))
    return buffers


def _pair_overwrites(graph: Graph, buffers: list[Buffer]) -> None:
    """Mark each output a kernel may write over its dying input, with the smallest safe gap."""
    owner = {t: b for b in buffers for t in b.tensors}
    for i, node in enumerate(graph.nodes):
        if node.is_alias or not node.inputs or node.outputs[0] not in owner:
            continue
        x, y = owner[node.inputs[0]], owner[node.outputs[0]]
        if x is y or x.external or y.external or x.last != i or y.first != i:
            continue
        if node.inputs.count(node.inputs[0]) > 1 or any(owner.get(t) is x for t in node.inputs[1:]):
            continue
        orders = node.overwrite_orders(graph)
        if not orders:
            continue
        gap = round_up(smallest_gap(orders))
        if gap < y.size:
            y.writes_over, y.gap = x, gap


def scratch_name(node) -> str:
    """The planner's name for a node's scratch buffer (not a graph tensor)."""
    return f"{node.name}#scratch"


def _can_overwrite(graph: Graph, node, step: int, group: list[str], last_use: dict[str, int]) -> bool:
    """An elementwise op may write over its first input when nothing reads that buffer later,
    the sizes match, and neither is one of the caller's buffers."""
    x, out = node.inputs[0], node.outputs[0]
    if any(t in graph.inputs or t in graph.outputs for t in group) or out in graph.outputs:
        return False
    if node.inputs.count(x) > 1 or graph.tensors[x].nbytes != graph.tensors[out].nbytes:
        return False
    return all(last_use.get(t, -1) <= step for t in group)


def _producer_step(graph: Graph, tensor: str) -> int:
    for i, n in enumerate(graph.nodes):
        if tensor in n.outputs:
            return i
    raise KeyError(tensor)


def step_footprints(buffers: list[Buffer]) -> dict[int, int]:
    """Bytes the arena buffers live at each step need at least (an output written over its input
    shares what it may with it)."""
    arena = [b for b in buffers if not b.external]
    if not arena:
        return {}
    steps = range(min(b.first for b in arena), max(b.last for b in arena) + 1)
    return {s: sum(b.size - (b.saving() if b.first == s else 0) for b in arena if b.first <= s <= b.last)
            for s in steps}


def lower_bound(buffers: list[Buffer]) -> int:
    return max(step_footprints(buffers).values(), default=0)


def _compatible(a: Buffer, a_offset: int, b: Buffer, b_offset: int) -> bool:
    """Two buffers live at one step: apart, or an output exactly its gap below the input it writes
    over (a gap is proven safe for itself only: a larger one may not be, see access_order.py)."""
    if a_offset + a.size <= b_offset or b_offset + b.size <= a_offset:
        return True
    if a.writes_over is b:
        return a_offset + a.gap == b_offset
    if b.writes_over is a:
        return b_offset + b.gap == a_offset
    return False


def _fits(placed: list[Buffer], buf: Buffer, offset: int) -> bool:
    return all(_compatible(buf, offset, p, p.offset) for p in placed if p.overlaps_in_time(buf))


def _candidates(placed: list[Buffer], buf: Buffer) -> list[int]:
    """Offsets worth trying: 0, just above/below every conflicting buffer, and for an output and
    the input it writes over, the gap apart."""
    cands = {0}
    for p in placed:
        if p.overlaps_in_time(buf):
            cands.add(p.offset + p.size)
            if p.offset - buf.size >= 0:
                cands.add(p.offset - buf.size)
            if buf.writes_over is p and p.offset - buf.gap >= 0:
                cands.add(p.offset - buf.gap)
            if p.writes_over is buf:
                cands.add(p.offset + p.gap)
    return sorted(cands)


def _place_first_fit(order: list[Buffer]) -> int:
    placed: list[Buffer] = []
    for buf in order:
        buf.offset = next(o for o in _candidates(placed, buf) if _fits(placed, buf, o))
        placed.append(buf)
    return max((b.offset + b.size for b in placed), default=0)


def _place_two_ended(order: list[Buffer], capacity: int) -> int | None:
    """Alternate ends: put each buffer at the end opposite its latest conflicting neighbour."""
    placed: list[Buffer] = []
    for buf in order:
        conflicts = [p for p in placed if p.overlaps_in_time(buf)]
        fits = [o for o in _candidates(placed, buf) + [capacity - buf.size]
                if 0 <= o <= capacity - buf.size and _fits(placed, buf, o)]
        if not fits:
            return None
        want_top = bool(conflicts) and conflicts[-1].offset < capacity / 2
        buf.offset = max(fits) if want_top else min(fits)
        placed.append(buf)
    return max((b.offset + b.size for b in placed), default=0)


def _place_chains(order: list[Buffer], capacity: int) -> int | None:
    """Outputs written over their inputs form chains with fixed relative offsets (each its gap below
    its input).  Each chain's first buffer goes as low as leaves room for the whole chain, the
    others where the chain puts them; what does not fit there goes as low as it fits."""
    rel: dict[int, int] = {}
    root: dict[int, Buffer] = {}
    for buf in sorted(order, key=lambda b: b.first):
        x = buf.writes_over
        if x is not None and id(x) in rel:
            rel[id(buf)], root[id(buf)] = rel[id(x)] - buf.gap, root[id(x)]
        else:
            rel[id(buf)], root[id(buf)] = 0, buf
    low: dict[int, int] = {}
    high: dict[int, int] = {}
    for buf in order:
        r = id(root[id(buf)])
        low[r] = min(low.get(r, 0), rel[id(buf)])
        high[r] = max(high.get(r, 0), rel[id(buf)] + buf.size)
    placed: list[Buffer] = []
    for buf in order:
        fits = [o for o in _candidates(placed, buf) + [capacity - buf.size]
                if 0 <= o <= capacity - buf.size and _fits(placed, buf, o)]
        r = root[id(buf)]
        if r is buf:
            cands = sorted(set(fits) | {-low[id(buf)]})
            room = [o for o in cands if o + low[id(buf)] >= 0 and o + high[id(buf)] <= capacity
                    and _fits(placed, buf, o)]
            choice = room[0] if room else (min(fits) if fits else None)
        else:
            want = r.offset + rel[id(buf)]
            ok = 0 <= want <= capacity - buf.size and _fits(placed, buf, want)
            choice = want if ok else (min(fits) if fits else None)
        if choice is None:
            return None
        buf.offset = choice
        placed.append(buf)
    return max((b.offset + b.size for b in placed), default=0)


def _place_search(order: list[Buffer], capacity: int, budget: int = 20000) -> int | None:
    """Depth-first search for a placement within `capacity`: each buffer tries the offsets that
    touch already placed buffers or an end of the arena, backtracking on a dead end.  Bounded
    by `budget` tries, so it gives up (None) rather than take long on a large graph."""
    placed: list[Buffer] = []
    tries = 0

    def options(buf: Buffer) -> list[int]:
        cands = set(_candidates(placed, buf)) | {capacity - buf.size}
        ok = [o for o in cands if 0 <= o <= capacity - buf.size and _fits(placed, buf, o)]
        return sorted(ok)

    stack = [(0, iter(options(order[0])))] if order else []
    while stack:
        depth, choices = stack[-1]
        if len(placed) > depth:
            placed.pop()
        offset = next(choices, None)
        tries += 1
        if offset is None or tries > budget:
            stack.pop()
            if tries > budget:
                return None
            continue
        order[depth].offset = offset
        placed.append(order[depth])
        if depth + 1 == len(order):
            return max(b.offset + b.size for b in placed)
        stack.append((depth + 1, iter(options(order[depth + 1]))))
    return None if order else 0


def _orders(arena: list[Buffer]) -> dict[str, list[Buffer]]:
    """Placement orders worth trying; which one wins depends on the graph's shape."""
    return {
        "size": sorted(arena, key=lambda b: (-b.size, b.first)),
        "definition": sorted(arena, key=lambda b: (b.first, -b.size)),
        "size x lifetime": sorted(arena, key=lambda b: (-b.size * (b.last - b.first + 1), b.first)),
        "lifetime": sorted(arena, key=lambda b: (-(b.last - b.first), -b.size)),
    }


MEMORY_PLANS = ("auto", "in-place", "layer")
PATCH_BUDGET = 0.10  # the default cost allowed for bands, a fraction of the model's MACs (passes/patches.py)


def plan_memory(graph: Graph, mode: str = "auto", patch_budget: float = PATCH_BUDGET,
                search: int = 20000) -> MemoryPlan:
    """The smallest plan found.  "in-place" also lets outputs lie over the inputs they replace;
    "auto" also runs the first layers in bands (passes/patches.py) when that lowers the arena at
    an estimated cost within `patch_budget` (a fraction of the model's MACs); each is kept only
    if smaller.  `search` bounds the placement search's tries; 0 leaves it out (quick, for
    comparing many candidate bandings)."""
    if mode not in MEMORY_PLANS:
        raise EdgeCompileError(f"--memory-plan {mode}: choose one of {', '.join(MEMORY_PLANS)}")
    layer = _plan(graph, build_buffers(graph), "layer", search)
    if mode == "layer":
        return layer
    best = layer
    buffers = build_buffers(graph, overwrite=True)
    if any(b.writes_over for b in buffers):
        plan = _plan(graph, buffers, "in-place", search)
        if plan.arena_size < layer.arena_size:
            best = plan
    from .patches import choose  # patches plans its tiles with this function
    found = choose(graph, patch_budget if mode == "auto" else 0, best, plan_memory)
    if found is not None:
        best, best.patches = found
        best.total_activation_bytes = layer.total_activation_bytes
    best.mode, best.layer_bound = mode, layer.layer_bound
    return best


def _plan(graph: Graph, buffers: list[Buffer], mode: str, search: int = 20000) -> MemoryPlan:
    arena = [b for b in buffers if not b.external]
    bound = lower_bound(buffers)
    total = sum(b.size for b in arena)
    orders = _orders(arena)
    attempts: list[tuple[int, str, dict[int, int]]] = []
    for name, order in orders.items():
        size = _place_first_fit(order)
        attempts.append((size, f"first-fit by {name}", {id(b): b.offset for b in arena}))
    best = min(a[0] for a in attempts)
    capacity = bound
    while capacity < best:  # two-ended placement at the bound, then a little above it
        for name, order in orders.items():
            size = _place_two_ended(order, capacity)
            if size is not None:
                attempts.append((size, f"two-ended by {name}", {id(b): b.offset for b in arena}))
        if any(b.writes_over for b in arena):
            for name, order in (("definition", orders["definition"]),
                                ("tensors first", sorted(orders["definition"], key=lambda b: b.is_scratch))):
                size = _place_chains(order, capacity)
                if size is not None:
                    attempts.append((size, f"chains by {name}", {id(b): b.offset for b in arena}))
        if min(a[0] for a in attempts) <= capacity:
            break
        size = _place_search(orders["definition"], capacity, search) if search > 0 else None
        if size is not None:
            attempts.append((size, "search", {id(b): b.offset for b in arena}))
            break
        capacity += ALIGN * max(1, (best - bound) // (8 * ALIGN))
    size, name, offsets = min(attempts, key=lambda a: a[0])
    for b in arena:
        b.offset = offsets[id(b)]
    plan = MemoryPlan(buffers, size, bound, total, name, mode=mode, layer_bound=bound)
    for b in arena:
        for t in b.tensors:
            plan.offsets[t] = b.offset
        if b.writes_over is not None and _overlap(b, b.writes_over):
            plan.overlapping.append(graph.nodes[b.first].name)
    footprints = step_footprints(buffers)
    plan.peak_step = max(footprints, key=footprints.get) if footprints else -1
    plan.peak = graph.nodes[plan.peak_step].name if 0 <= plan.peak_step < len(graph.nodes) else "-"
    _check(plan)
    return plan


def _overlap(a: Buffer, b: Buffer) -> bool:
    return a.offset < b.offset + b.size and b.offset < a.offset + a.size


def _check(plan: MemoryPlan) -> None:
    """No two buffers live at the same time may overlap in memory (a failure is a bug)."""
    arena = [b for b in plan.buffers if not b.external]
    for i, a in enumerate(arena):
        assert a.offset % ALIGN == 0 and a.offset + a.size <= plan.arena_size
        for b in arena[i + 1:]:
            if a.overlaps_in_time(b):
                assert _compatible(a, a.offset, b, b.offset), (a, b)

"""Streaming inference (`export --streaming`): NAME_step(frame, output) runs one new frame.

Two kinds of models stream:

* A net over a sliding window of frames, time along H of its (C, H, W) input (a DS-CNN on
  49x10 MFCCs: H = 49 frames of W = 10 coefficients).  Every layer that reads the time axis
  has stride 1 and no padding along it, so the newest row of each tensor is its last row and
  depends only on the last k rows of the layer's input (k: the kernel's height, dilated).  Each
  such layer keeps those k rows (its *history*, static state) and computes one output row per
  call.  Elementwise layers run on the one new row.  The first layer that reads the whole
  remaining window (a global pool, a Flatten before a Linear, a layer whose output has one
  row) keeps all its input's rows; it and everything after it run as in NAME_run.
  Equality: after any frames since NAME_reset, NAME_step's output is NAME_run's (and the
  simulator's) on the window of the last H frames, the frames before the reset counting as
  zero frames (NAME_reset pushes H zero frames).
* A recurrent net (ops/recurrent.py): input (T, D), a chain of Recurrent layers (each "all"
  but the last, which is "last"), then layers without a time axis.  Each call runs one step of
  every cell, keeping the states; NAME_reset zeroes them.  Equality: after k frames since the
  reset, the output is the simulator's on the sequence of those k frames (the cells run k steps).

The step runs a *step graph*: the compiled graph's nodes with the time extents cut to the
rows they read per call (the same ops, so the same kernels and simulator), planned in its own
arena (the static arena is the larger of the two), and the histories and states in a static
block of their own, planned here and reported exactly.  Anything else is refused with an
EdgeCompileError naming the layer.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .arena import round_up
from .errors import EdgeCompileError
from .ir import Graph, TensorInfo
from .ops import Recurrent, Reshape, Slice
from .ops.base import SlidingWindow
from .passes.plan_memory import MemoryPlan, plan_memory

WINDOW, RECURRENT = "window", "recurrent"


@dataclass
class History:
    """The last `rows` rows of a tensor, kept between calls: state[offset:offset + nbytes]."""
    tensor: str  # the step graph's name for the history (a step-graph input)
    source: str  # the step graph's tensor whose one new row is pushed in each call
    channels: int
    rows: int
    row_bytes: int
    offset: int = 0

    @property
    def nbytes(self) -> int:
        return self.channels * self.rows * self.row_bytes


@dataclass
class StreamPlan:
    kind: str  # WINDOW or RECURRENT
    graph: Graph  # the step graph
    plan: MemoryPlan  # its arena
    window: int  # frames of the full input (H, or the recurrent model's T)
    frame_shape: tuple[int, ...]  # one frame, as NAME_step takes it: (C, W) or (D,)
    histories: list[History] = field(default_factory=list)
    states: dict[str, list[int]] = field(default_factory=dict)  # Recurrent node -> each state's offset
    state_bytes: int = 0  # the static block of histories and states, bytes (4-aligned)
    reset_output: int = -1  # WINDOW: where in it NAME_reset's warm-up steps write their outputs
    macs_step: int = 0
    macs_full: int = 0

    @property
    def frame_size(self) -> int:
        return int(np.prod(self.frame_shape))

    @property
    def warmup(self) -> int:
        """Zero frames NAME_reset pushes: a window's worth (WINDOW), none (RECURRENT)."""
        return self.window if self.kind == WINDOW else 0

    def summary(self) -> dict:
        return {"kind": self.kind, "window_frames": self.window, "frame_size": self.frame_size,
                "state_bytes": self.state_bytes, "step_arena_bytes": self.plan.arena_size,
                "macs_per_frame": self.macs_step, "macs_full_window": self.macs_full,
                "histories": [{"tensor": h.source, "rows": h.rows, "bytes": h.nbytes} for h in self.histories],
                "reset_output_bytes": self.state_bytes - self.reset_output if self.reset_output >= 0 else 0,
                "reset_frames": self.warmup}


def refuse(node, why: str) -> EdgeCompileError:
    return EdgeCompileError(f"--streaming: layer '{node.name}' ({node.op_type}): {why}")


def plan_streaming(graph: Graph, memory_plan: str = "auto") -> StreamPlan:
    """The step graph of a compiled (quantized) graph and its memory; refuses what cannot stream."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise EdgeCompileError(f"--streaming: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} "
                               "outputs; streaming supports one input (the frames) and one output")
    x = graph.inputs[0]
    shape = graph.shape(x)
    if len(shape) == 2 and any(isinstance(n, Recurrent) for n in graph.nodes):
        axis, kind = 0, RECURRENT
    elif len(shape) == 3:
        axis, kind = 1, WINDOW
    else:
        raise EdgeCompileError(f"--streaming: the input has shape {shape}; streaming needs a (C, time, W) input "
                               "(time along H, e.g. 1x49x10 MFCCs) or a (time, features) input read by a "
                               "recurrent layer")
    step = Graph(graph.name)
    timed: dict[str, int] = {x: axis}  # tensors with a time axis: in the step graph, one row along it
    histories: dict[tuple[str, int], History] = {}
    stateful = []

    def add(name: str, shape) -> TensorInfo:
        info = copy.copy(graph.tensors[name])
        info.shape = tuple(int(d) for d in shape)
        step.tensors[name] = info
        return info

    def one_row(name: str) -> tuple[int, ...]:
        s = list(graph.shape(name))
        s[timed[name]] = 1
        return tuple(s)

    def history(node, name: str, rows: int) -> str:
        """The step-graph tensor the node reads for `name`: its new row, or a history of `rows` rows."""
        if rows == 1:
            return name
        key = (name, rows)
        if key not in histories:
            c, _, w = graph.shape(name)
            hname = f"{name}@last{rows}"
            info = copy.copy(graph.tensors[name])
            info.name, info.shape = hname, (c, rows, w)
            step.tensors[hname] = info
            histories[key] = History(hname, name, c, rows, w * ((info.bits + 7) // 8))
        return histories[key].tensor

    add(x, one_row(x))
    for node in graph.nodes:
        ins = [t for t in node.inputs if t in timed]
        out = node.outputs[0]
        full_out = graph.shape(out)
        new = copy.copy(node)
        new.inputs, new.outputs, new.attrs = list(node.inputs), list(node.outputs), dict(node.attrs)
        if not ins:
            for t in node.inputs:
                if t not in step.tensors:
                    add(t, graph.shape(t))
            add(out, full_out)
        elif isinstance(node, Recurrent):
            if node.reverse:
                raise refuse(node, "it runs its sequence backwards (a reversed or bidirectional layer needs the "
                                   "frames that have not arrived yet); streaming supports forward layers only")
            if node.initial:
                raise refuse(node, "its states start from further inputs; streaming starts them at zero")
            if node.inputs[0] not in timed or timed[node.inputs[0]] != 0:
                raise refuse(node, "its sequence is not the frames along time")
            new.attrs["steps"], new.attrs["states_outside"] = 1, True  # (its states: in the static block)
            stateful.append(new)
            if node.attrs["mode"] == "all":
                timed[out] = 0
                add(out, one_row(out))
            else:
                add(out, full_out)
        elif kind == WINDOW and isinstance(node, SlidingWindow) and node.inputs[0] in timed:
            kernel, stride, pads, dilation = node.window()
            h_in = graph.shape(node.inputs[0])[1]
            k = dilation[0] * (kernel[0] - 1) + 1
            if pads[0] or pads[2]:
                raise refuse(node, f"padding {pads[0]},{pads[2]} along time; streaming needs stride 1 and no "
                                   "padding along time (pad only along W)")
            if full_out[1] == 1:  # reads the whole remaining window: keeps all of it, runs as in NAME_run
                new.inputs[0] = history(node, node.inputs[0], h_in)
                add(out, full_out)
            elif stride[0] != 1:
                raise refuse(node, f"stride {stride[0]} along time; streaming needs stride 1 and no padding "
                                   "along time")
            else:
                new.inputs[0] = history(node, node.inputs[0], k)
                timed[out] = 1
                add(out, one_row(out))
        elif kind == RECURRENT and isinstance(node, Reshape) and full_out[0] == graph.shape(node.inputs[0])[0]:
            new.attrs["shape"] = (1,) + tuple(full_out[1:])  # a view that keeps the steps apart: per step
            timed[out] = 0
            add(out, one_row(out))
        elif kind == RECURRENT and isinstance(node, Slice) and timed[node.inputs[0]] == 0:
            t = graph.shape(node.inputs[0])[0]
            if int(node.attrs["starts"][0]) != t - 1 or full_out[0] != 1:
                raise refuse(node, "it selects steps other than the last one; streaming computes the newest step "
                                   "only")
            new.attrs["starts"] = [0] + list(node.attrs["starts"][1:])  # the newest step: the one there is
            add(out, full_out)
        elif kind == WINDOW and isinstance(node, Reshape) and len(node.inputs) == 1:
            new.inputs[0] = history(node, node.inputs[0], graph.shape(node.inputs[0])[1])  # a Flatten: the window
            add(out, full_out)
        elif (getattr(node, "same_position", False) and len(ins) == len(node.inputs)
              and all(graph.shape(t) == full_out for t in node.inputs)
              and len({timed[t] for t in ins}) == 1):
            timed[out] = timed[ins[0]]
            add(out, one_row(out))
        else:
            raise refuse(node, "it reads its input across the time axis in a way streaming does not support "
                               "(supported: convolutions and pools with stride 1 and no padding along time, "
                               "elementwise layers, a global pool or Flatten over the whole window, recurrent "
                               "layers)")
        step.add_node(new)
    if graph.outputs[0] in timed:
        raise EdgeCompileError(f"--streaming: the output '{graph.outputs[0]}' still has a time axis "
                               f"{graph.shape(graph.outputs[0])}; streaming needs a model that ends in a global "
                               "pool, a Flatten + Linear over the window, or a recurrent layer's last state")
    step.inputs = [x] + [h.tensor for h in histories.values()]
    step.outputs = list(graph.outputs)
    for node in step.nodes:  # the ops agree with the cut shapes
        try:
            inferred = tuple(node.infer_shape(step))
        except (ValueError, AssertionError) as exc:
            raise refuse(node, f"it cannot run on the rows of one step ({exc})") from None
        if inferred != step.shape(node.outputs[0]):
            raise refuse(node, f"on the rows of one step it gives {inferred}, not {step.shape(node.outputs[0])}")
    step.prune_tensors()
    mode = "layer" if memory_plan == "layer" else "in-place"
    plan = plan_memory(step, mode, 0.0)
    sp = StreamPlan(kind, step, plan, int(shape[axis]), one_row(x)[:axis] + one_row(x)[axis + 1:],
                    list(histories.values()))
    at = 0
    for h in sp.histories:
        h.offset = at
        at += round_up(h.nbytes)
    for node in stateful:
        sp.states[node.name] = []
        for _, _, n in node.state_pairs():
            sp.states[node.name].append(at)
            at += round_up(n)
    if kind == WINDOW:  # the outputs of NAME_reset's zero frames go nowhere the caller sees: here
        sp.reset_output = at
        at += round_up(graph.tensors[graph.outputs[0]].nbytes)
    sp.state_bytes = at
    sp.macs_step = int(sum(n.macs(step) for n in step.nodes))
    sp.macs_full = int(sum(n.macs(graph) for n in graph.nodes))
    return sp


def retimed(graph: Graph, steps: int) -> Graph:
    """A recurrent model's graph over `steps` frames instead of its T (the same cells and weights):
    the simulator's reference for the first `steps` calls of NAME_step after a reset."""
    g = copy.copy(graph)
    g.tensors = {k: copy.copy(v) for k, v in graph.tensors.items()}
    g.nodes = []
    t_full = graph.shape(graph.inputs[0])[0]
    timed = {graph.inputs[0]}
    g.tensors[graph.inputs[0]].shape = (steps,) + graph.shape(graph.inputs[0])[1:]
    for node in graph.nodes:
        new = copy.copy(node)
        new.attrs = dict(node.attrs)
        if isinstance(node, Recurrent) and node.inputs[0] in timed:
            new.attrs["steps"] = steps
            if node.attrs["mode"] == "all":
                timed.add(node.outputs[0])
                g.tensors[node.outputs[0]].shape = (steps,) + graph.shape(node.outputs[0])[1:]
        elif isinstance(node, Reshape) and node.inputs[0] in timed and graph.shape(node.outputs[0])[0] == t_full:
            new.attrs["shape"] = (steps,) + tuple(graph.shape(node.outputs[0])[1:])
            timed.add(node.outputs[0])
            g.tensors[node.outputs[0]].shape = tuple(new.attrs["shape"])
        elif isinstance(node, Slice) and node.inputs[0] in timed:
            new.attrs["starts"] = [steps - 1] + list(node.attrs["starts"][1:])  # the last step, as in the model
        elif any(t in timed for t in node.inputs):
            raise EdgeCompileError(f"layer '{node.name}' reads the sequence of {t_full} steps outside a recurrent "
                                   "layer")
        g.nodes.append(new)
    return g


def stream_frames(inputs: np.ndarray) -> np.ndarray:
    """Whole inputs (N, C, H, W) or (N, T, D) -> their frames one after the other: (N * H, C, W) or (N * T, D)."""
    x = np.asarray(inputs)
    if x.ndim == 4:
        x = x.transpose(0, 2, 1, 3)
    return x.reshape((-1,) + x.shape[2:])


def reference_outputs(graph: Graph, stream: StreamPlan, frames: np.ndarray) -> np.ndarray:
    """What each NAME_step call returns on `frames` (N, *frame_shape) int8 after a reset, by the
    simulator on full inputs: (N, output size) integers."""
    frames = np.asarray(frames, dtype=np.int64).reshape((-1,) + tuple(stream.frame_shape))
    out = []
    if stream.kind == WINDOW:
        h = stream.window
        padded = np.concatenate([np.zeros((h,) + frames.shape[1:], np.int64), frames])
        windows = np.stack([padded[i + 1:i + 1 + h] for i in range(len(frames))])  # (N, H, C, W)
        windows = windows.transpose(0, 2, 1, 3)  # (N, C, H, W)
        env = graph.evaluate_int({graph.inputs[0]: windows})
        return env[graph.outputs[0]].reshape(len(frames), -1)
    for k in range(1, len(frames) + 1):
        g = retimed(graph, k)
        env = g.evaluate_int({g.inputs[0]: frames[None, :k]})
        out.append(env[g.outputs[0]].reshape(-1))
    return np.stack(out)


# -- C ------------------------------------------------------------------------------------------
STATE = "ec_state"  # the step's int8_t pointer to the static block of histories and states


def state(offset: int) -> str:
    return f"&{STATE}[{offset}]"


def emit_step(run_em, stream: StreamPlan, frame_param: str = "frame"):
    """The body of NAME_step: the step graph's layers, each history's new row pushed in right after
    the layer that makes it (its buffer is live then), a recurrent layer as one step of its cell
    on its kept states.  Shares the run's constant arrays (the same weights are stored once)."""
    from .codegen import Emitter

    graph = stream.graph
    params = {graph.inputs[0]: frame_param, graph.outputs[0]: "output"}
    params.update({h.tensor: state(h.offset) for h in stream.histories})
    em = Emitter(graph, stream.plan, run_em.arrays, [], run_em.runtime, run_em._idents, run_em._shared,
                 run_em.structs, params)
    em.share_all_arrays = True  # and every array of the run, however small, is found again by its content
    for a in run_em.arrays:
        values = np.asarray(a.values)
        run_em._shared.setdefault((a.ctype, a.align, values.shape, values.tobytes()), a.ident)
    em.runtime.update(("ec_stream", "ec_layout"))

    def push(source: str) -> None:
        for h in stream.histories:
            if h.source == source:
                em.call(f"ec_stream_push({state(h.offset)}, {h.channels}, {h.rows}, {h.row_bytes}, "
                        f"{em.buffer(source)})")

    push(graph.inputs[0])
    for node in graph.nodes:
        em.runtime.update(node.runtime_files)
        shape = "x".join(str(d) for d in graph.shape(node.outputs[0]))
        if not node.is_alias:
            em.comment(f"{node.name}: {node.op_type} {node.describe()} -> {shape} per frame".replace("  ", " "))
        if isinstance(node, Recurrent):
            _emit_cell_step(em, node, stream.states[node.name])
        else:
            node.emit_c(em)
        push(node.outputs[0])
    return em


def _emit_cell_step(em, node, offsets: list[int]) -> None:
    """One step of a recurrent cell (Recurrent.emit_step, its loop's body) on states kept in the static
    block, then its output state copied to the layer's output."""
    node.emit_step(em, em.buffer(node.inputs[0]), [state(p) for p in offsets])
    h = node.state_pairs()[node.attrs["output"]][2]
    em.call(f"ec_copy_s8({state(offsets[node.attrs['output']])}, {em.buffer(node.outputs[0])}, {h})")

"""Recurrent: a cell (a small graph of ordinary ops) run over the time steps of a sequence.

The cell's `body` graph has inputs [x_t, state_1, ...] and outputs [next_state_1, ...]:
FastRNN, FastGRNN, GRU, LSTM and Elman RNN cells are all built from Linear/DualLinear/GatedDualLinear,
Add, Mul, Lerp, Affine and table lookups (frontend/recurrent.py builds them), so every step
uses the same kernels and rules as the rest of the model.  The generated C is a real
loop over t (code size does not grow with the sequence), the states live in the arena,
start at zero, and are copied from the cell's outputs after each step.

Formats: the body's tensors are calibrated over every step of every calibration
sequence; a state has one format, chosen from the values it takes at all steps, shared
by its input and output sides (it is the same buffer).

attrs: steps (T), states [[input name, output name, size], ...] (body tensor names),
output (index of the state the node returns), mode "last" (its final value, shape
(H,)) or "all" (every step, (T, H)), reverse (optional: the loop runs from the last step to
the first, as the backward half of a bidirectional layer; "all" keeps each output at its own
step), initial (optional: the indices of the states that start from the node's further
inputs, in order, instead of zero; each is requantized from its tensor's format to its
state's once, before the loop).  Inputs: the sequence, shape (T, D), then those initial states.

The body is compiled like a model, by the layers above the ops, which hand the cell what
it needs with the arguments they already pass (the ops do not import them): the
quantization pass's options quantize a graph (QuantOptions.quantize_graph), the memory
planner hands its planner to plan_subgraphs before it asks for scratch_bytes, and the C
generator's emitter makes the body's emitter (Emitter.sub_emitter).  The body's integer
steps are Graph.evaluate_int, the simulator's walk.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import numerics
from ..arena import round_up
from ..errors import EdgeCompileError
from ..formats import frac_bits_for
from ..ir import Graph
from .base import Op, register


@register
class Recurrent(Op):
    op_type = "Recurrent"
    onnx_ops = ("GRU", "LSTM", "RNN", "FastRNN", "FastGRNN")  # the last two: edgecompile.nn's own nodes
    not_trainable = "recurrent cells have no QAT forward pass yet (their loop over the body graph)"
    runtime_files = ("ec_layout",)
    int8_only = True  # a cell's sequence and states are int8

    body: Graph = None  # set by the frontend (or the manifest reader)
    body_plan = None  # the body's MemoryPlan, set by plan_subgraphs

    @property
    def steps(self) -> int:
        return int(self.attrs["steps"])

    @property
    def x_name(self) -> str:
        return self.body.inputs[0]

    def state_pairs(self) -> list[tuple[str, str, int]]:
        return [(a, b, int(n)) for a, b, n in self.attrs["states"]]

    @property
    def initial(self) -> list[int]:
        return [int(k) for k in self.attrs.get("initial", [])]

    def infer_shape(self, graph: Graph) -> tuple[int, ...]:
        pairs = self.state_pairs()
        if len(self.inputs) != 1 + len(self.initial):
            raise ValueError(f"recurrent {self.name}: {len(self.inputs) - 1} initial-state inputs for states "
                             f"{self.initial}")
        for k, name in zip(self.initial, self.inputs[1:]):
            if graph.shape(name) != (pairs[k][2],):
                raise ValueError(f"recurrent {self.name}: initial state {name} has shape {graph.shape(name)}, "
                                 f"its state ({pairs[k][2]},)")
        t, d = graph.shape(self.inputs[0])
        if t != self.steps or self.body.shape(self.x_name) != (d,):
            raise ValueError(f"recurrent {self.name}: expects ({self.steps}, {self.body.shape(self.x_name)[0]}) "
                             f"inputs, got ({t}, {d})")
        h = self.state_pairs()[self.attrs["output"]][2]
        return (h,) if self.attrs["mode"] == "last" else (self.steps, h)

    def describe(self) -> str:
        cell = self.attrs.get("cell", "cell")
        # how the gates' W and U are stored when not one int8 per byte (passes/sparsify.py)
        storages = sorted({n.attrs[k] for n in self.body.nodes for k in ("format_a", "format_b") if k in n.attrs}
                          - {"dense"})
        stored = f", W/U {'+'.join(storages)}" if storages else ""
        return f"{cell} x{self.steps} steps{' reversed' if self.reverse else ''}, {self.attrs['mode']}{stored}"

    def param_count(self) -> int:
        return int(sum(n.param_count() for n in self.body.nodes))

    def macs(self, graph: Graph) -> int:
        return self.steps * int(sum(n.macs(self.body) for n in self.body.nodes))

    def weight_bytes(self) -> int:
        """Flash of the cell's constants, each distinct array once (FastGRNN's gates share W and U,
        and the C stores identical arrays of 64 bytes or more once)."""
        seen, total = set(), 0
        for node in self.body.nodes:
            for value in node.stored_arrays():
                key = (value.dtype.str, value.shape, value.tobytes()) if value.nbytes >= 64 else object()
                if key not in seen:
                    seen.add(key)
                    total += value.size * value.itemsize
        return int(total)

    # -- float -------------------------------------------------------------------------------
    @property
    def reverse(self) -> bool:
        return bool(self.attrs.get("reverse", False))

    def _loop(self, seq: np.ndarray, step, zeros, initial=()):
        states = [zeros((len(seq), n)) for _, _, n in self.state_pairs()]
        for k, value in zip(self.initial, initial):
            states[k] = value
        outputs = []
        for t in range(self.steps):
            k = self.steps - 1 - t if self.reverse else t
            env = step({self.x_name: seq[:, k], **{a: s for (a, _, _), s in zip(self.state_pairs(), states)}})
            states = [env[b] for _, b, _ in self.state_pairs()]
            outputs.append(states[self.attrs["output"]])
            yield env
        self._last = (states, outputs[::-1] if self.reverse else outputs)  # outputs in step order

    def run_float(self, seq: np.ndarray, *initial: np.ndarray) -> np.ndarray:
        initial = [np.asarray(v, np.float32) for v in initial]
        for _ in self._loop(np.asarray(seq, np.float32), self.body.evaluate, lambda s: np.zeros(s, np.float32), initial):
            pass
        return self._result(np.float32)

    def _result(self, dtype):
        states, outputs = self._last
        if self.attrs["mode"] == "last":
            return states[self.attrs["output"]]
        return np.stack(outputs, axis=1).astype(dtype)

    def body_values(self, seq: np.ndarray, *initial: np.ndarray) -> dict[str, np.ndarray]:
        """Every body tensor over all steps (stacked on the batch axis), for calibration."""
        values: dict[str, list] = {}
        initial = [np.asarray(v, np.float32) for v in initial]
        for env in self._loop(np.asarray(seq, np.float32), self.body.evaluate, lambda s: np.zeros(s, np.float32),
                              initial):
            for name, v in env.items():
                values.setdefault(name, []).append(v)
        return {k: np.concatenate(v, axis=0) for k, v in values.items()}

    # -- quantization --------------------------------------------------------------------------
    def quantize(self, graph: Graph, options) -> None:
        ranges = options.ranges
        fixed = {self.x_name: graph.tensors[self.inputs[0]].frac_bits}
        for k, (a, b, _) in enumerate(self.state_pairs()):
            # a state's range: every value its output takes (it also starts at 0, inside any range,
            # or at its initial value, which its input side's range holds)
            fixed[a] = fixed[b] = min(frac_bits_for(ranges[t], self.body.tensors[b].bits, options.calib_method,
                                                    options.percentile)
                                      for t in ((b, a) if k in self.initial else (b,)))
        for _ in range(4):  # an op may lower a format to keep its shifts legal: settle on one
            sub = copy.copy(options)
            sub.fixed_formats = {**(options.fixed_formats or {}), **fixed}
            sub.act_bits, sub.act_layer_bits, sub.output_bits = 8, {}, 8  # a cell's tensors stay int8
            sub.unsigned_relu = sub.asymmetric = False  # and signed
            sub.quantize_graph(self.body, ranges, clip_outputs=True)  # the states have their formats
            moved = {b: self.body.tensors[b].frac_bits for _, b, _ in self.state_pairs()
                     if self.body.tensors[b].frac_bits != fixed[b]}
            if not moved:
                break
            for a, b, _ in self.state_pairs():
                if b in moved:
                    fixed[a] = fixed[b] = moved[b]
        out_state = self.state_pairs()[self.attrs["output"]][1]
        graph.tensors[self.outputs[0]].frac_bits = self.body.tensors[out_state].frac_bits
        self.qattrs = {"state_frac_bits": [fixed[a] for a, _, _ in self.state_pairs()]}
        if self.initial:  # from each initial state's format to its state's (a shift, either way)
            shifts = [graph.tensors[t].frac_bits - fixed[self.state_pairs()[k][0]]
                      for k, t in zip(self.initial, self.inputs[1:])]
            if any(abs(v) > numerics.MAX_SHIFT for v in shifts):
                raise EdgeCompileError(f"layer '{self.name}': an initial state's format is {max(shifts, key=abs)} bits "
                                       f"from its state's (at most {numerics.MAX_SHIFT}): its values are far "
                                       "larger or smaller than the state's; check the initial-state inputs")
            self.qattrs["initial_shifts"] = shifts

    def formats(self, graph: Graph) -> str:
        states = ",".join(str(f) for f in self.qattrs.get("state_frac_bits", []))
        return f"x:{graph.tensors[self.inputs[0]].frac_bits} h:{states} y:{graph.tensors[self.outputs[0]].frac_bits}"

    def _initial_int(self, initial_q) -> list[np.ndarray]:
        return [numerics.requantize(np.asarray(v, np.int64), s, -128, 127)
                for v, s in zip(initial_q, self.qattrs.get("initial_shifts", []))]

    def run_int(self, graph: Graph, seq_q: np.ndarray, *initial_q: np.ndarray) -> np.ndarray:
        for _ in self._loop(np.asarray(seq_q, np.int64), self.body.evaluate_int, lambda s: np.zeros(s, np.int64),
                            self._initial_int(initial_q)):
            pass
        return self._result(np.int64)

    # -- C ----------------------------------------------------------------------------------------
    def plan_subgraphs(self, planner) -> None:
        self.body_plan = planner(self.body)

    @property
    def x_copied(self) -> bool:
        """Whether each step's input is first copied to a 4-byte aligned slot: when a step is not a
        multiple of 4 bytes long, every other step would start unaligned, and the fast kernels' word
        loads (runtime_c/ec_linear_fast.c, DSP cores) would fall back to bytes."""
        return self.body.shape(self.x_name)[0] % 4 != 0

    def _layout(self):
        """Scratch layout: every state's buffer, the buffer of every next state not written over its
        state (_written_in_place: those share their state's), the aligned copy of the step's input
        (x_copied), then the body's arena (one step's gate buffers).  Returns ([state offsets, next
        state offsets], the input copy's offset, the body arena's offset, the body's plan)."""
        if self.body_plan is None:
            raise RuntimeError(f"recurrent {self.name}: its body has no memory plan yet (plan_subgraphs)")
        direct = self._written_in_place()
        # A streaming step (attrs "states_outside", edgecompile/streaming.py) keeps its states in the
        # static block, outside the scratch: no buffer for them here (offsets None), and a next state
        # written over its state is written there.
        outside = bool(self.attrs.get("states_outside"))
        prev, at = [], 0
        for _, _, n in self.state_pairs():
            prev.append(None if outside else at)
            at += 0 if outside else round_up(n)
        nxt = []
        for (_, b, n), p in zip(self.state_pairs(), prev):
            nxt.append(p if b in direct else at)
            at += 0 if b in direct else round_up(n)
        x_at = at
        if self.x_copied:
            at += round_up(self.body.shape(self.x_name)[0])
        return [prev, nxt], x_at, at, self.body_plan

    def ram_parts(self) -> dict[str, int]:
        """The arena bytes the layer uses while it runs (its scratch_bytes, exactly, each buffer rounded up
        to 4 bytes as planned), besides its output: "states" (every state, and every next state that is
        not written over its state), "step" (one step's buffers: the body's arena, the gates' and the
        update's tensors as planned, plus the aligned copy of the step's input)."""
        _, x_at, body_base, plan = self._layout()  # the states end where the input's copy starts
        return {"states": x_at, "step": body_base - x_at + plan.arena_size}

    def _written_in_place(self) -> set[str]:
        """The next states the body may write straight over their state (no copy after the step): those
        whose producer runs after every other reader of the state, and either does not read it or is
        elementwise in place (element i read before element i is written).  Later readers of the next
        state find it there.  An LSTM's h' and c', a GRU's h' (copies were 2 % of an LSTM's instructions)."""
        order = {node.name: k for k, node in enumerate(self.body.nodes)}
        direct = set()
        for a, b, _ in self.state_pairs():
            producer = self.body.producer(b)
            if producer is None or b in self.body.inputs:
                continue
            if any(order[c.name] > order[producer.name] for c in self.body.consumers(a) if c is not producer):
                continue
            if a in producer.inputs and not (producer.in_place and producer.same_position):
                continue
            direct.add(b)
        return direct

    def _gate_tables(self) -> dict[str, str]:
        """Gate name -> the name of the table lookup the gate's kernel does in the same pass: a DualLinear
        (or a GRU's GatedDualLinear) whose output only a Lut reads (not a next state), the activation of
        every LSTM/GRU/Elman gate.
        The simulator keeps the two ops; the C skips the separate pass over the gate (on the M4, an LSTM
        49x10->64 spent 4 % of its instructions in those passes)."""
        from .dual_linear import DualLinear
        from .gated_linear import GatedDualLinear
        from .lut import Lut

        outputs = set(self.body.outputs)
        fused = {}
        for node in self.body.nodes:
            if type(node) not in (DualLinear, GatedDualLinear) or node.outputs[0] in outputs:  # (not sparse kinds)
                continue
            readers = self.body.consumers(node.outputs[0])
            if len(readers) == 1 and isinstance(readers[0], Lut):
                fused[node.name] = readers[0].name
        return fused

    def scratch_bytes(self, graph: Graph) -> int:
        return sum(self.ram_parts().values())

    def emit_step(self, em, x: str, states: list[str]) -> None:
        """One step of the cell in C: the step's input at the C pointer `x`, each state at its pointer in
        `states` (both outside the cell's scratch), each next state left in its state's buffer.  The
        loop of emit_c and a streaming export's NAME_step (edgecompile/streaming.py) both run this."""
        (_, nxt), x_at, body_base, plan = self._layout()
        base = em.scratch_offset(self)
        d = self.body.shape(self.x_name)[0]
        if self.x_copied:
            em.call(f"ec_copy_s8({x}, {em.arena(base + x_at)}, {d})")
        externals = {self.x_name: em.arena(base + x_at) if self.x_copied else x}
        direct = self._written_in_place()
        for (a, b, _), state, q in zip(self.state_pairs(), states, nxt):
            externals[a], externals[b] = state, state if b in direct else em.arena(base + q)
        body = em.sub_emitter(self.body, plan, externals, base + body_base)
        # only a lookup done in place: another output buffer could lie over the gate's inputs, still read
        fused = {gate: lut for gate, lut in self._gate_tables().items()
                 if body.buffer(self.body.node(lut).outputs[0]) == body.buffer(self.body.node(gate).outputs[0])}
        for node in self.body.nodes:
            if node.name in fused.values():
                continue  # done by the gate's kernel
            em.runtime.update(node.runtime_files)
            if node.name in fused:
                node.emit_c(body, lut=self.body.node(fused[node.name]))
            else:
                node.emit_c(body)
        for (_, b, n), state, q in zip(self.state_pairs(), states, nxt):
            if b not in direct:
                em.call(f"ec_copy_s8({em.arena(base + q)}, {state}, {n})")

    def emit_c(self, em) -> None:
        (prev, _), _, _, _ = self._layout()
        base = em.scratch_offset(self)
        seq = em.buffer(self.inputs[0])
        d = self.body.shape(self.x_name)[0]
        t = f"t_{em.unique('t')}"

        def at(offset: int) -> str:
            return em.arena(base + offset)

        k = f"({self.steps - 1} - {t})" if self.reverse else t  # the step the loop's pass t reads and writes
        starts = dict(zip(self.initial, zip(self.inputs[1:], self.qattrs.get("initial_shifts", []))))
        for j, ((_, _, n), p) in enumerate(zip(self.state_pairs(), prev)):
            if j in starts:
                em.call(f"ec_align_s8({em.buffer(starts[j][0])}, {at(p)}, {n}, {starts[j][1]})")
            else:
                em.call(f"ec_fill_s8({at(p)}, 0, {n})")
        em.raw(f"for (int {t} = 0; {t} < {self.steps}; ++{t}) {{")
        self.emit_step(em, f"({seq} + {k} * {d})", [at(p) for p in prev])
        h = self.state_pairs()[self.attrs["output"]][2]
        out_prev = prev[self.attrs["output"]]
        if self.attrs["mode"] == "all":
            em.call(f"ec_copy_s8({at(out_prev)}, {em.buffer(self.outputs[0])} + {k} * {h}, {h})")
        em.raw("}")
        if self.attrs["mode"] == "last":
            em.call(f"ec_copy_s8({at(out_prev)}, {em.buffer(self.outputs[0])}, {h})")

"""Recurrent cells as small graphs of ordinary ops (the body of an ops.Recurrent node).

Each builder turns a cell's float weights into a body graph with inputs [x_t, states...]
and outputs [next states...], using only ops that already have exact integer rules:
DualLinear (W x + U h + b in one accumulator), GatedDualLinear (W x + b + g (U h + b'),
a GRU's n gate), Lerp (a + g (b - a), a GRU's update), Linear, Add (with constant weights),
Mul, Affine and table lookups.  The formulas follow PyTorch (and ONNX) exactly:

FastRNN   h~ = act(W x + U h + b);  h' = sigmoid(alpha) h~ + sigmoid(beta) h
FastGRNN  z = sigmoid(W x + U h + b_z);  h~ = tanh(W x + U h + b_h)
          h' = (zeta (1 - z) + nu) h~ + z h,  zeta = sigmoid(zeta_raw), nu = sigmoid(nu_raw)
GRU       r, z = sigmoid(W_{r,z} x + U_{r,z} h + b);  n = tanh(W_n x + b_in + r (U_n h + b_hn))
          h' = n + z (h - n)                    (ONNX linear_before_reset = 1, as PyTorch)
LSTM      i, f, o = sigmoid(...), g = tanh(...);  c' = f c + i g;  h' = o tanh(c')
RNN       h' = act(W x + U h + b)
Low-rank W = W1 W2 (and U = U1 U2) stay two small products: t = W2 x, then W1 t.

The ONNX converters of recurrent layers (ONNX's GRU, LSTM and RNN, and edgecompile.nn's
FastRNN/FastGRNN nodes) are here too, registered with the importer when the frontend
package is imported.
"""
from __future__ import annotations

import numpy as np
import onnx

from .. import ops
from ..ir import Graph
from ..ops import activation
from .onnx_frontend import CUSTOM_CONVERTERS, OnnxImporter, converter, decode_attr, node_attr


def sigmoid(v: float) -> float:
    return float(1.0 / (1.0 + np.exp(-float(v))))


class BodyBuilder:
    """Adds nodes to a body graph; every tensor and node name starts with `prefix/`."""

    def __init__(self, prefix: str, input_size: int, states: list[tuple[str, int]]):
        self.prefix = prefix
        self.graph = Graph(prefix)
        self.count = 0
        self.x = self._tensor("x", (input_size,))
        self.states = [self._tensor(name, (size,)) for name, size in states]
        self.graph.inputs = [self.x] + self.states

    def _tensor(self, name: str, shape) -> str:
        full = f"{self.prefix}/{name}"
        self.graph.add_tensor(full, shape)
        return full

    def _add(self, node_cls, label: str, inputs: list[str], attrs: dict | None = None,
             params: dict | None = None) -> str:
        self.count += 1
        name = f"{self.prefix}.{label}"
        out = f"{self.prefix}/{label}"
        node = node_cls(name, inputs, [out], attrs=attrs or {}, params={k: np.asarray(v, np.float32)
                                                                         for k, v in (params or {}).items()})
        self.graph.add_node(node)
        self.graph.add_tensor(out, node.infer_shape(self.graph))
        return out

    def linear(self, label: str, x: str, w, b=None) -> str:
        params = {"weight": w} if b is None else {"weight": w, "bias": b}
        return self._add(ops.Linear, label, [x], {"act": None}, params)

    def dual(self, label: str, a: str, b: str, wa, wb, bias) -> str:
        return self._add(ops.DualLinear, label, [a, b], {"act": None},
                         {"weight_a": wa, "weight_b": wb, "bias": bias})

    def gated(self, label: str, a: str, b: str, g: str, wa, bias_a, wb, bias_b) -> str:
        return self._add(ops.GatedDualLinear, label, [a, b, g], {"act": None},
                         {"weight_a": wa, "bias_a": bias_a, "weight_b": wb, "bias_b": bias_b})

    def lerp(self, label: str, a: str, b: str, g: str) -> str:
        return self._add(ops.Lerp, label, [a, b, g], {"act": None})

    def table(self, label: str, x: str, fn: str) -> str:
        if fn == "relu":
            return self._add(ops.Clip, label, [x], {"act": activation.RELU})
        return self._add(ops.Lut, label, [x], {"fn": fn})

    def add(self, label: str, a: str, b: str, scale_a: float = 1.0, scale_b: float = 1.0) -> str:
        return self._add(ops.Add, label, [a, b], {"act": None, "scale_a": float(scale_a), "scale_b": float(scale_b)})

    def mul(self, label: str, a: str, b: str) -> str:
        return self._add(ops.Mul, label, [a, b], {"act": None})

    def affine(self, label: str, x: str, scale: float, offset: float) -> str:
        return self._add(ops.Affine, label, [x], {"scale": float(scale), "offset": float(offset)})

    def finish(self, next_states: list[str]) -> Graph:
        self.graph.outputs = list(next_states)
        self.graph.check()
        return self.graph


def _project(b: BodyBuilder, label: str, x: str, factors) -> tuple[str, np.ndarray]:
    """x and the matrix the cell multiplies it by: W, or for W = W1 W2 the vector W2 x and W1."""
    if len(factors) == 1:
        return x, factors[0]
    w1, w2 = factors
    return b.linear(label, x, w2), w1


def fastrnn_body(prefix: str, input_size: int, hidden: int, w, u, bias, alpha: float, beta: float,
                 nonlinearity: str = "tanh") -> Graph:
    """w, u: [W] or [W1, W2] (low rank); alpha, beta: the raw (pre-sigmoid) scalars."""
    b = BodyBuilder(prefix, input_size, [("h", hidden)])
    h = b.states[0]
    xw, wm = _project(b, "W2x", b.x, w)
    hu, um = _project(b, "U2h", h, u)
    pre = b.dual("pre", xw, hu, wm, um, bias)
    cand = b.table("cand", pre, nonlinearity)
    return b.finish([b.add("h_next", cand, h, sigmoid(alpha), sigmoid(beta))])


def fastgrnn_body(prefix: str, input_size: int, hidden: int, w, u, bias_gate, bias_update, zeta: float,
                  nu: float, nonlinearity: str = "tanh") -> Graph:
    b = BodyBuilder(prefix, input_size, [("h", hidden)])
    h = b.states[0]
    xw, wm = _project(b, "W2x", b.x, w)
    hu, um = _project(b, "U2h", h, u)
    z = b.table("z", b.dual("z_pre", xw, hu, wm, um, bias_gate), "sigmoid")
    cand = b.table("cand", b.dual("cand_pre", xw, hu, wm, um, bias_update), nonlinearity)
    zeta_s, nu_s = sigmoid(zeta), sigmoid(nu)
    gate = b.affine("update_gate", z, -zeta_s, zeta_s + nu_s)  # zeta (1 - z) + nu
    return b.finish([b.add("h_next", b.mul("gated_cand", gate, cand), b.mul("kept", z, h))])


def gru_body(prefix: str, input_size: int, hidden: int, w, r, bias, linear_before_reset: bool = True) -> Graph:
    """ONNX GRU weights: w (3H, D), r (3H, H) in gate order z, r, h; bias (6H) = [Wb, Rb]."""
    hh = hidden
    wz, wr, wh = np.split(np.asarray(w), 3)
    rz, rr, rh = np.split(np.asarray(r), 3)
    bw, br = np.split(np.asarray(bias), 2)
    bwz, bwr, bwh = np.split(bw, 3)
    brz, brr, brh = np.split(br, 3)
    b = BodyBuilder(prefix, input_size, [("h", hh)])
    h = b.states[0]
    z = b.table("z", b.dual("z_pre", b.x, h, wz, rz, bwz + brz), "sigmoid")
    rg = b.table("r", b.dual("r_pre", b.x, h, wr, rr, bwr + brr), "sigmoid")
    if linear_before_reset:
        # W_n x + b_in + r (U_n h + b_hn): one op, U_n h kept wide (not rounded to 8 bits before r scales it)
        n = b.table("n", b.gated("n_pre", b.x, h, rg, wh, bwh, rh, brh), "tanh")
    else:
        n = b.table("n", b.dual("n_pre", b.x, b.mul("r_h", rg, h), wh, rh, bwh + brh), "tanh")
    return b.finish([b.lerp("h_next", n, h, z)])  # n + z (h - n), one pass


def lstm_body(prefix: str, input_size: int, hidden: int, w, r, bias) -> Graph:
    """ONNX LSTM weights: w (4H, D), r (4H, H) in gate order i, o, f, c; bias (8H) = [Wb, Rb]."""
    wi, wo, wf, wc = np.split(np.asarray(w), 4)
    ri, ro, rf, rc = np.split(np.asarray(r), 4)
    bw, br = np.split(np.asarray(bias), 2)
    bi, bo, bf, bc = (a + c for a, c in zip(np.split(bw, 4), np.split(br, 4)))
    b = BodyBuilder(prefix, input_size, [("h", hidden), ("c", hidden)])
    h, c = b.states
    i = b.table("i", b.dual("i_pre", b.x, h, wi, ri, bi), "sigmoid")
    f = b.table("f", b.dual("f_pre", b.x, h, wf, rf, bf), "sigmoid")
    o = b.table("o", b.dual("o_pre", b.x, h, wo, ro, bo), "sigmoid")
    g = b.table("g", b.dual("g_pre", b.x, h, wc, rc, bc), "tanh")
    c_next = b.add("c_next", b.mul("f_c", f, c), b.mul("i_g", i, g))
    h_next = b.mul("h_next", o, b.table("tanh_c", c_next, "tanh"))
    return b.finish([h_next, c_next])


def elman_body(prefix: str, input_size: int, hidden: int, w, r, bias, nonlinearity: str = "tanh") -> Graph:
    bw, br = np.split(np.asarray(bias), 2)
    b = BodyBuilder(prefix, input_size, [("h", hidden)])
    h = b.states[0]
    return b.finish([b.table("h_next", b.dual("pre", b.x, h, w, r, bw + br), nonlinearity)])


def recurrent_node(name: str, seq: str, out: str, body: Graph, steps: int, cell: str, mode: str,
                   output_state: int = 0, reverse: bool = False, initial: dict[int, str] | None = None) -> ops.Recurrent:
    """`initial`: state index -> the tensor it starts from (else zero)."""
    states = [[a, nb, int(body.shape(a)[0])] for a, nb in zip(body.inputs[1:], body.outputs)]
    attrs = {"steps": steps, "states": states, "output": output_state, "mode": mode, "cell": cell}
    if reverse:
        attrs["reverse"] = True
    initial = dict(sorted((initial or {}).items()))
    if initial:
        attrs["initial"] = list(initial)
    node = ops.Recurrent(name, [seq] + list(initial.values()), [out], attrs=attrs)
    node.body = body
    return node


# -- ONNX converters ---------------------------------------------------------------------------
def _run_direction(imp: OnnxImporter, name: str, seq: str, body, steps: int, cell: str, want_all: bool,
                   want_last: bool, reverse: bool = False, initial=None) -> tuple[str | None, str | None]:
    """One direction's Recurrent node: its every-step output (T, H) and/or final state (H,) (a
    slice of the every-step one when both are wanted: the last step, or the first when reversed)."""
    hidden = body.shape(body.outputs[0])[0]
    if not want_all:
        final = imp.graph.unique_tensor_name(f"{name}/final")
        imp.add(recurrent_node(name, seq, final, body, steps, cell, "last", reverse=reverse, initial=initial))
        return None, final
    every = imp.graph.unique_tensor_name(f"{name}/steps")
    imp.add(recurrent_node(name, seq, every, body, steps, cell, "all", reverse=reverse, initial=initial))
    if not want_last:
        return every, None
    last = imp.graph.unique_tensor_name(f"{name}/last")
    imp.add(ops.Slice(f"{name}.last", [every], [last], attrs={"starts": [0 if reverse else steps - 1, 0],
                                                               "steps": [1, 1], "out_shape": [1, hidden]}))
    return every, last


def _recurrent_outputs(imp: OnnxImporter, node: onnx.NodeProto, seq: str, body, steps: int, cell: str,
                       out_all: str | None, out_last: str | None, all_batch: int, last_batch: int,
                       all_extra: tuple, last_extra: tuple, reverse: bool = False, initial=None) -> None:
    """Add the Recurrent node and views giving its outputs the ONNX node's shapes: every step
    (with `all_extra` axes of size 1, e.g. ONNX's num_directions) and/or the final state."""
    name = imp.layer_name(node)
    hidden = body.shape(body.outputs[0])[0]
    every, last = _run_direction(imp, name, seq, body, steps, cell, bool(out_all), bool(out_last), reverse, initial)
    if out_all:
        imp.view(node, every, (steps,) + all_extra + (hidden,), all_batch, out_all)
    if out_last:
        imp.view(node, last, last_extra + (hidden,), last_batch, out_last)


def _bidirectional_outputs(imp: OnnxImporter, node: onnx.NodeProto, seq: str, bodies, steps: int,
                           out_all: str | None, out_last: str | None, layout: int) -> None:
    """A bidirectional layer: a forward and a reversed loop over the sequence, their outputs side
    by side on ONNX's direction axis: Y (T, 2, N, H) [layout 1: (N, T, 2, H)], Y_h (2, N, H)
    [layout 1: (N, 2, H)]; both are (T, 2, H) and (2, H) without the batch axis."""
    hidden = bodies[0].shape(bodies[0].outputs[0])[0]
    halves = [_run_direction(imp, body.name, seq, body, steps, node.op_type, bool(out_all), bool(out_last),
                             reverse=k == 1) for k, body in enumerate(bodies)]
    for out, k, shape, axis, batch in ((out_all, 0, (steps, 1, hidden), 1, 0 if layout else 2),
                                       (out_last, 1, (1, hidden), 0, 0 if layout else 1)):
        if out:
            parts = [imp.view(node, half[k], shape, batch, imp.graph.unique_tensor_name(f"{half[k]}/dir"))
                     for half in halves]
            imp.add(ops.Concat(imp.layer_name(node), parts, [out], attrs={"axis": axis}), batch)


@converter("GRU", "LSTM", "RNN")
def _onnx_recurrent(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    """ONNX's recurrent layers (nn.GRU/LSTM/RNN exported by PyTorch): one layer, forward, reverse
    or bidirectional (stacked layers are one ONNX node each)."""
    x = imp.activation_input(node, any_batch_axis=True)
    layout = int(node_attr(node, "layout", 0))
    if imp.batch_axis(x) != (0 if layout else 1):
        raise imp.error(node, f"the input's batch axis is at position {imp.batch_axis(x)}, but layout={layout} "
                              f"expects it at {0 if layout else 1}")
    direction = decode_attr(node_attr(node, "direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise imp.error(node, f"direction {direction!r}: expected forward, reverse or bidirectional")
    if node_attr(node, "clip") is not None:
        raise imp.error(node, "cell clipping is not supported")
    hidden = int(node_attr(node, "hidden_size"))
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[node.op_type]
    dirs = 2 if direction == "bidirectional" else 1
    ws = imp.const(node, 1, "W").astype(np.float64)
    rs = imp.const(node, 2, "R").astype(np.float64)
    bs = imp.optional_const(node, 3)
    bs = np.zeros((dirs, 2 * gates * hidden)) if bs is None else np.asarray(bs, np.float64)
    steps, d = imp.graph.shape(x)
    lens = imp.optional_const(node, 4)
    if lens is not None and not np.all(np.asarray(lens) == steps):
        raise imp.error(node, "sequence_lens must be the full length (padded sequences are not supported)")
    initial = {}  # state index (h 0, c 1) -> the activation it starts from
    for i, what in ((5, "initial_h"), (6, "initial_c")):
        if i >= len(node.input) or not node.input[i]:
            continue
        init = imp.optional_const(node, i)
        if init is not None:
            if np.any(np.asarray(init) != 0):
                raise imp.error(node, f"a nonzero constant {what} is not supported (pass it as an input, or start "
                                      "at zero)")
            continue
        if dirs > 1:
            raise imp.error(node, f"{what} as an input of a bidirectional layer is not supported (states start at "
                                  "zero)")
        t = imp.activation_input(node, i, any_batch_axis=True)  # (1, N, H): with a batch of 1, (1, H) either way
        if imp.graph.shape(t) != (1, hidden):
            raise imp.error(node, f"{what} '{node.input[i]}' has shape {imp.graph.shape(t)} without the batch; "
                                  f"expected (1, {hidden}) (one layer, one direction)")
        initial[i - 5] = imp.view(node, t, (hidden,), 0, imp.graph.unique_tensor_name(f"{node.input[i]}/state"))
    activations = [decode_attr(a).lower() for a in (node_attr(node, "activations") or [])]
    name = imp.layer_name(node)
    prefixes = [name] if dirs == 1 else [f"{name}.forward", f"{name}.backward"]  # the bodies' names
    if node.op_type == "GRU":
        if activations not in ([], ["sigmoid", "tanh"] * dirs):
            raise imp.error(node, f"GRU activations {activations}: only the default sigmoid, tanh")
        lbr = bool(node_attr(node, "linear_before_reset", 0))
        bodies = [gru_body(p, d, hidden, ws[k], rs[k], bs[k], lbr) for k, p in enumerate(prefixes)]
    elif node.op_type == "LSTM":
        if activations not in ([], ["sigmoid", "tanh", "tanh"] * dirs):
            raise imp.error(node, f"LSTM activations {activations}: only the default sigmoid, tanh, tanh")
        if len(node.input) > 7 and node.input[7]:
            raise imp.error(node, "peephole connections are not supported")
        if len(node.output) > 2 and node.output[2] and imp.uses.get(node.output[2], 0):
            raise imp.error(node, "the final cell state Y_c is not supported as an output")
        bodies = [lstm_body(p, d, hidden, ws[k], rs[k], bs[k]) for k, p in enumerate(prefixes)]
    else:
        acts = activations or ["tanh"] * dirs
        if any(a not in ("tanh", "relu", "sigmoid") for a in acts):
            raise imp.error(node, f"RNN activations {acts}: use tanh, relu or sigmoid")
        bodies = [elman_body(p, d, hidden, ws[k], rs[k], bs[k], acts[k]) for k, p in enumerate(prefixes)]
    out_all = node.output[0] if len(node.output) > 0 and node.output[0] and imp.uses.get(node.output[0]) else None
    out_last = node.output[1] if len(node.output) > 1 and node.output[1] and imp.uses.get(node.output[1]) else None
    if dirs == 2:
        _bidirectional_outputs(imp, node, x, bodies, steps, out_all, out_last, layout)
        return
    # Y is (T, num_directions, N, H) [layout 1: (N, T, dirs, H)], Y_h (dirs, N, H) [layout 1: (N, dirs, H)]
    _recurrent_outputs(imp, node, x, bodies[0], steps, node.op_type, out_all, out_last,
                       0 if layout else 2, 0 if layout else 1, (1,), (1,), reverse=direction == "reverse",
                       initial=initial)


def _fast_rnn(imp: OnnxImporter, node: onnx.NodeProto) -> None:
    """edgecompile.nn.RNN of a FastRNN or FastGRNN cell (inputs: x then the cell's parameters)."""
    x = imp.activation_input(node)
    steps, d = imp.graph.shape(x)
    hidden = int(node_attr(node, "hidden_size"))
    params = [np.asarray(imp.const(node, i, f"parameter {i}"), np.float64) for i in range(1, len(node.input))]
    w_rank, u_rank = int(node_attr(node, "w_rank", 0)), int(node_attr(node, "u_rank", 0))
    w = [params.pop(0) for _ in range(2 if w_rank else 1)]
    u = [params.pop(0) for _ in range(2 if u_rank else 1)]
    nonlinearity = decode_attr(node_attr(node, "nonlinearity", "tanh"))
    name = imp.layer_name(node)
    if node.op_type == "FastRNN":
        bias, alpha, beta = params
        body = fastrnn_body(name, d, hidden, w, u, bias, float(alpha[0]), float(beta[0]), nonlinearity)
    else:
        bias_gate, bias_update, zeta, nu = params
        body = fastgrnn_body(name, d, hidden, w, u, bias_gate, bias_update, float(zeta[0]), float(nu[0]),
                                       nonlinearity)
    every = node_attr(node, "return_sequences", 0)
    _recurrent_outputs(imp, node, x, body, steps, node.op_type, node.output[0] if every else None,
                       None if every else node.output[0], 0, 0, (), ())


CUSTOM_CONVERTERS.update({"FastRNN": _fast_rnn, "FastGRNN": _fast_rnn})

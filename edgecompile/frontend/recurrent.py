"""Recurrent cells as small graphs of ordinary ops (the body of an ops.Recurrent node).

Each builder turns a cell's float weights into a body graph with inputs [x_t, states...]
and outputs [next states...], using only ops that already have exact integer rules:
DualLinear (W x + U h + b in one accumulator), Linear, Add (with constant weights),
Mul, Affine and table lookups.  The formulas follow PyTorch (and ONNX) exactly:

FastRNN   h~ = act(W x + U h + b);  h' = sigmoid(alpha) h~ + sigmoid(beta) h
FastGRNN  z = sigmoid(W x + U h + b_z);  h~ = tanh(W x + U h + b_h)
          h' = (zeta (1 - z) + nu) h~ + z h,  zeta = sigmoid(zeta_raw), nu = sigmoid(nu_raw)
GRU       r, z = sigmoid(W_{r,z} x + U_{r,z} h + b);  n = tanh(W_n x + b_in + r (U_n h + b_hn))
          h' = n + z (h - n)                    (ONNX linear_before_reset = 1, as PyTorch)
LSTM      i, f, o = sigmoid(...), g = tanh(...);  c' = f c + i g;  h' = o tanh(c')
RNN       h' = act(W x + U h + b)
Low-rank W = W1 W2 (and U = U1 U2) stay two small products: t = W2 x, then W1 t.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..ir import Graph
from ..ops import activation


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
        xn = b.linear("xn", b.x, wh, bwh)
        hn = b.linear("hn", h, rh, brh)
        n = b.table("n", b.add("n_pre", xn, b.mul("r_hn", rg, hn)), "tanh")
    else:
        n = b.table("n", b.dual("n_pre", b.x, b.mul("r_h", rg, h), wh, rh, bwh + brh), "tanh")
    diff = b.add("h_minus_n", h, n, 1.0, -1.0)
    return b.finish([b.add("h_next", n, b.mul("z_diff", z, diff))])


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
                   output_state: int = 0) -> ops.Recurrent:
    states = [[a, nb, int(body.shape(a)[0])] for a, nb in zip(body.inputs[1:], body.outputs)]
    node = ops.Recurrent(name, [seq], [out], attrs={"steps": steps, "states": states, "output": output_state,
                                                    "mode": mode, "cell": cell})
    node.body = body
    return node

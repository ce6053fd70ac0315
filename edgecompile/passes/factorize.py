"""Low-rank factorization of dense layers by truncated SVD (seeds 000 and 003).

W (out x in) ~= U_r diag(S_r) V_r^T.  The layer becomes two small matmuls,
    t = A x            A = diag(sqrt S_r) V_r^T   (r x in, no bias)
    y = act(B t + b)   B = U_r diag(sqrt S_r)     (out x r)
and W is never rebuilt.  sqrt(S) goes to both factors so that A and B have
similar magnitudes, which suits per-tensor power-of-two weight scales.  t is an
ordinary activation tensor with its own calibrated Q-format.  Factorizing only
pays when r (in + out) < in * out, i.e. r < in*out/(in+out); other layers stay
whole and the report says so.

Eligible layers: Linear, and with `conv1x1` 1x1 convolutions with stride 1 and
no padding (a dense layer applied at every pixel).  The rank of a layer comes
from, in order: its entry in RankSpec.layers, the default rank, or the energy
rule: the smallest r whose singular values keep a share beta of sum(sigma^2).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..errors import EdgeCompileError
from ..ir import Graph


@dataclass
class FactorizeDecision:
    layer: str
    in_features: int
    out_features: int
    rank: int
    applied: bool
    reason: str
    weights_before: int  # weight count (biases excluded: they are kept either way)
    weights_after: int
    energy: float  # share of sum(sigma^2) the kept singular values explain
    total_energy: float = 0.0  # sum(sigma^2) of the layer (weights the layers in a global beta)


@dataclass
class RankSpec:
    """What to factorize: `--rank 16`, `--rank fc1=32,fc2=8` (mixable: `--rank 16,fc3=4`), `--energy 0.95`."""

    default: int | None = None
    energy: float | None = None
    layers: dict[str, int] = field(default_factory=dict)
    conv1x1: bool = False

    @property
    def active(self) -> bool:
        return self.default is not None or self.energy is not None or bool(self.layers)

    @classmethod
    def parse(cls, rank: str | int | None = None, energy: float | None = None, conv1x1: bool = False) -> "RankSpec":
        spec = cls(energy=energy, conv1x1=conv1x1)
        if energy is not None and not 0.0 < energy <= 1.0:
            raise EdgeCompileError(f"--energy {energy}: beta is the share of variance kept and must be in (0, 1]")
        for item in ([] if rank is None else str(rank).split(",")):
            item = item.strip()
            m = re.fullmatch(r"(?:([^=\s]+)=)?(-?\d+)", item)
            if not m:
                raise EdgeCompileError(f"--rank '{rank}': expected N or LAYER=N items separated by commas "
                                       "(e.g. 16 or fc1=32,fc2=8)")
            value = int(m.group(2))
            if value < 1:
                raise EdgeCompileError(f"--rank {item}: a rank must be a positive integer")
            if m.group(1):
                spec.layers[m.group(1)] = value
            elif spec.default is not None:
                raise EdgeCompileError(f"--rank '{rank}': more than one default rank")
            else:
                spec.default = value
        if spec.default is not None and energy is not None:
            raise EdgeCompileError("give either a default --rank N or --energy BETA, not both "
                                   "(per-layer LAYER=N entries combine with either)")
        return spec


def max_useful_rank(in_f: int, out_f: int) -> float:
    return in_f * out_f / (in_f + out_f)


def rank_for_energy(singular_values: np.ndarray, beta: float) -> int:
    """Smallest r with sum(s[:r]^2) >= beta * sum(s^2)."""
    energy = np.cumsum(np.asarray(singular_values, dtype=np.float64) ** 2)
    if energy[-1] <= 0:
        return 1
    # A relative tolerance so that beta = 1.0 is met by the full rank despite rounding.
    return int(np.searchsorted(energy, beta * energy[-1] * (1 - 1e-12)) + 1)


def eligible(node, conv1x1: bool) -> bool:
    if isinstance(node, ops.Linear):
        return True
    return (conv1x1 and isinstance(node, ops.Conv2d) and node.kernel == (1, 1) and node.groups == 1
            and list(node.attrs["stride"]) == [1, 1] and not any(node.attrs["pads"]))


def _matrix(node) -> np.ndarray:
    w = np.asarray(node.params["weight"], dtype=np.float64)
    return w.reshape(w.shape[0], -1)


def factorize(graph: Graph, spec: RankSpec) -> list[FactorizeDecision]:
    candidates = [n for n in graph.nodes if eligible(n, spec.conv1x1)]
    unknown = sorted(set(spec.layers) - {n.name for n in candidates})
    if unknown:
        names = ", ".join(n.name for n in candidates) or "none"
        raise EdgeCompileError(f"--rank names layer(s) {', '.join(unknown)} that cannot be factorized or do not "
                               f"exist; factorizable layers: {names}"
                               + ("" if spec.conv1x1 else " (add --factorize-conv1x1 for 1x1 convolutions)"))
    decisions = []
    for node in candidates:
        w = _matrix(node)
        out_f, in_f = w.shape
        s_all = np.linalg.svd(w, compute_uv=False)
        if node.name in spec.layers:
            rank, why = spec.layers[node.name], "per-layer rank"
        elif spec.default is not None:
            rank, why = spec.default, "default rank"
        elif spec.energy is not None:
            rank, why = rank_for_energy(s_all, spec.energy), f"keeps beta >= {spec.energy:g}"
        else:
            continue
        total = float(np.sum(s_all ** 2))
        kept = float(np.sum(s_all[:rank] ** 2) / total) if total > 0 else 1.0
        limit = max_useful_rank(in_f, out_f)
        if rank >= limit:
            decisions.append(FactorizeDecision(node.name, in_f, out_f, rank, False,
                                               f"rank {rank} >= {limit:.1f} = in*out/(in+out): no saving",
                                               w.size, w.size, min(kept, 1.0), total))
            continue
        _split(graph, node, w, rank)
        decisions.append(FactorizeDecision(node.name, in_f, out_f, rank, True,
                                           f"{why}: {w.size} -> {rank * (in_f + out_f)} weights",
                                           w.size, rank * (in_f + out_f), kept, total))
    return decisions


def _split(graph: Graph, node, w: np.ndarray, rank: int) -> None:
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    root = np.sqrt(s[:rank])
    a = root[:, None] * vt[:rank]
    b = u[:, :rank] * root[None, :]
    in_shape = graph.shape(node.inputs[0])
    mid_shape = (rank,) + tuple(in_shape[1:]) if isinstance(node, ops.Conv2d) else tuple(in_shape[:-1]) + (rank,)
    mid = graph.unique_tensor_name(f"{node.outputs[0]}_rank{rank}")
    graph.add_tensor(mid, mid_shape)
    extra = tuple(np.shape(node.params["weight"])[2:])  # (1, 1) for convs
    cls = type(node)
    common = {k: v for k, v in node.attrs.items() if k not in ("act", "bn_range")}
    first = cls(f"{node.name}.V", [node.inputs[0]], [mid], attrs={**common, "act": None},
                params={"weight": a.reshape((rank, -1) + extra).astype(np.float32)})
    params = {"weight": b.reshape((b.shape[0], rank) + extra).astype(np.float32)}
    if "bias" in node.params:
        params["bias"] = node.params["bias"]
    second = cls(f"{node.name}.U", [mid], list(node.outputs), attrs={**common, "act": node.attrs.get("act")},
                 params=params)
    if "bn_range" in node.attrs:
        second.attrs["bn_range"] = node.attrs["bn_range"]
    i = graph.nodes.index(node)
    graph.nodes[i:i + 1] = [first, second]


def factorize_linear_layers(graph: Graph, rank: int) -> list[FactorizeDecision]:
    """Every Linear at one rank (the spine's --rank N)."""
    return factorize(graph, RankSpec(default=rank))


def layer_spectra(graph: Graph, conv1x1: bool = False) -> dict[str, np.ndarray]:
    """Singular values of every factorizable layer (for scree plots)."""
    return {n.name: np.linalg.svd(_matrix(n), compute_uv=False) for n in graph.nodes if eligible(n, conv1x1)}

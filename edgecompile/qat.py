"""Quantization-aware training that matches the generated C bit for bit.

`prepare(model, calib, bits=...)` compiles the model exactly as `edgecompile export`
would (frontend, BatchNorm folding, activation fusion, factorization, calibration) and
returns a QATModel: a PyTorch module that runs the compiler's *integer* model, with the
float weights as trainable parameters.  Its forward pass reproduces every integer step of
the simulator (numerics.py) on integer-valued float64 tensors, which represent every int32
value exactly:

    weights   q = sat(floor(w * 2^f_w + 1/2)) with f_w chosen by the compiler's own rule
              (ops/weighted.py, recomputed from the current weights at every step)
    layers    acc = conv/linear(q_x, q_w) + q_b, then sat(floor(acc * 2^-s + 1/2))
    others    the same rules: aligned adds, table lookups, rounded averages...

Rounding uses the straight-through estimator: the forward value is the
rounded integer, the gradient is that of the unrounded value; saturated values pass no
gradient.  Weights that are exactly zero when prepared (pruned) stay zero: a mask is
applied in every forward pass.  Activation formats are fixed when prepared, and
`QATModel.export` compiles the fine-tuned weights with those same formats, so in
evaluation mode the QAT forward pass, the simulator and the C agree on every int8 value.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import ops
from .compiler import (CompileOptions, apply_param_overrides, check_layer_bits, check_options, optimize,
                       quant_options)
from .errors import EdgeCompileError
from .frontend import LoadedModel, load_model, load_module
from .ops.weighted import WeightedOp
from .passes.factorize import RankSpec
from .passes.prune import prune
from .passes.quantize import calibrate, parse_bits, quantize_graph

DTYPE = torch.float64  # exact for every integer below 2^53, so for every int32 accumulator


# -- straight-through rounding ------------------------------------------------------------------

def straight_through(value: torch.Tensor, exact: torch.Tensor, lo=None, hi=None) -> torch.Tensor:
    """`exact` (an integer-valued tensor computed from `value`) in the forward pass, the gradient of
    `value` in the backward pass, none where `exact` saturated at lo/hi."""
    grad = value - value.detach()  # exactly 0 in value, d(value) in gradient
    if lo is not None or hi is not None:
        inside = torch.ones_like(value, dtype=torch.bool)
        if lo is not None:
            inside &= value.detach() > lo - 0.5
        if hi is not None:
            inside &= value.detach() < hi + 0.5
        grad = grad * inside
    return exact.detach() + grad


def round_half_up(v: torch.Tensor) -> torch.Tensor:
    """Rule 2 / rule 4 on exact float64 values: floor(v + 1/2)."""
    return torch.floor(v + 0.5)


def requantize(acc: torch.Tensor, shifts, lo: int, hi: int, channel_axis: int = 1) -> torch.Tensor:
    """sat(floor(acc * 2^-s + 1/2)) per channel, straight-through."""
    s = torch.as_tensor(np.asarray(shifts, dtype=np.float64), dtype=DTYPE)
    shape = [1] * acc.ndim
    if s.numel() > 1:
        shape[channel_axis] = -1
    scaled = acc * torch.pow(2.0, -s).reshape(shape)
    return straight_through(scaled, torch.clamp(round_half_up(scaled), lo, hi), lo, hi)


# -- the ops, each as the simulator computes it -------------------------------------------------

def _weighted(model: "QATModel", node: WeightedOp, x: torch.Tensor) -> torch.Tensor:
    q = node.qparams  # quantized from the current weights by node.quantize (see QATModel.forward)
    n = node.out_channels
    f_w = np.array(np.broadcast_to(np.asarray(node.qattrs["weight_frac_bits"], dtype=np.float64), (n,)))
    w = model.weights[node.name] * model.masks[node.name]
    w_scaled = w * torch.pow(2.0, torch.as_tensor(f_w, dtype=DTYPE)).reshape((n,) + (1,) * (w.ndim - 1))
    lo, hi = -(1 << (node.qattrs["weight_bits"] - 1)), (1 << (node.qattrs["weight_bits"] - 1)) - 1
    w_int = straight_through(w_scaled, torch.as_tensor(q["weight"].astype(np.float64), dtype=DTYPE), lo, hi)
    if isinstance(node, ops.Conv2d):
        pt, pl, pb, pr = node.attrs["pads"]
        acc = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w_int, None, tuple(node.attrs["stride"]), 0,
                       node.dilation, node.groups)
    else:
        acc = x @ w_int.T
    if "bias" in q:
        f_in = model.graph.tensors[node.inputs[0]].frac_bits
        b = model.biases[node.name] * torch.pow(2.0, torch.as_tensor(f_in + f_w, dtype=DTYPE))
        b_int = straight_through(b, torch.as_tensor(q["bias"].astype(np.float64), dtype=DTYPE))
        shape = [1] * acc.ndim
        shape[node.channel_axis % acc.ndim] = n
        acc = acc + b_int.reshape(shape)
    return requantize(acc, node.channel_shifts(), node.qattrs["act_min"], node.qattrs["act_max"],
                      node.channel_axis % acc.ndim)


def _maxpool(model, node, x):
    pt, pl, pb, pr = node.attrs["pads"]
    xp = F.pad(x, (pl, pr, pt, pb), value=-float(1 << 20))
    return F.max_pool2d(xp, tuple(node.attrs["kernel"]), tuple(node.attrs["stride"]))


def _window_sum(node, x):
    pt, pl, pb, pr = node.attrs["pads"]
    return F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), tuple(node.attrs["kernel"]), tuple(node.attrs["stride"]),
                        divisor_override=1)


def _avgpool(model, node, x):
    k = int(node.qattrs["scale_shift"])
    total = _window_sum(node, x) * float(1 << max(k, 0))
    if node.attrs.get("count_include_pad", True):
        n = float(node.attrs["kernel"][0] * node.attrs["kernel"][1])
    else:
        n = _window_sum(node, torch.ones_like(x[:1, :1]))
    n = n * float(1 << max(-k, 0))
    exact = torch.div(2 * total + n, 2 * n, rounding_mode="floor")  # rule 5, exact below 2^53
    q = node.qattrs
    return straight_through(total / n, torch.clamp(exact, q["act_min"], q["act_max"]), q["act_min"], q["act_max"])


def _reshape(model, node, x):
    return x.reshape((x.shape[0],) + tuple(node.attrs["shape"]))


def _transpose(model, node, x):
    return x.permute([0] + [p + 1 for p in node.attrs["perm"]])


def _relu(model, node, x):
    return torch.clamp(x, min=0)


def _clip(model, node, x):
    return torch.clamp(x, node.qattrs["act_min"], node.qattrs["act_max"])


def _align(x: torch.Tensor, k: int) -> torch.Tensor:
    if k >= 0:
        return x * float(1 << k)
    scaled = x * 2.0 ** k
    return straight_through(scaled, round_half_up(scaled))


def _add(model, node, a, b):
    q = node.qattrs
    acc = _align(a * q["mult_a"], q["shift_a"]) + _align(b * q["mult_b"], q["shift_b"])
    return requantize(acc, [q["shift_out"]], q["act_min"], q["act_max"])


def _mul(model, node, a, b):
    q = node.qattrs
    b = (b - q.get("zero_b", 0)).reshape(tuple(b.shape) + (1,) * (a.ndim - b.ndim))
    return requantize((a - q.get("zero_a", 0)) * b, [q["shift"]], q["act_min"], q["act_max"])


def _concat(model, node, *xs):
    return torch.cat([_align(x, -s) for x, s in zip(xs, node.qattrs["shifts"])], dim=node.attrs["axis"] + 1)


class _TableLookup(torch.autograd.Function):
    """Forward: the op's exact table; backward: the derivative of the function it tabulates."""

    @staticmethod
    def forward(ctx, x, table, f_in, f_out, fn):
        ctx.save_for_backward(x)
        ctx.fn, ctx.f_in, ctx.f_out = fn, f_in, f_out
        return table[(x + 128).long()]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            real = (x.detach() * 2.0 ** -ctx.f_in).requires_grad_(True)
            y = ctx.fn(real)
            (slope,) = torch.autograd.grad(y.sum(), real)
        return grad * slope * 2.0 ** (ctx.f_out - ctx.f_in), None, None, None, None


_TORCH_FUNCTIONS = {"hardswish": F.hardswish, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
                    "silu": F.silu}


def _lut(model, node, x):
    fn = _TORCH_FUNCTIONS.get(node.attrs["fn"])
    if fn is None:  # hardsigmoid with ONNX's alpha and beta
        alpha, beta = node.attrs.get("alpha", 1 / 6), node.attrs.get("beta", 0.5)

        def fn(v):
            return torch.clamp(alpha * v + beta, 0.0, 1.0)
    table = torch.as_tensor(node.qparams["table"].astype(np.float64), dtype=DTYPE)
    g = model.graph
    return _TableLookup.apply(x, table, g.tensors[node.inputs[0]].frac_bits, g.tensors[node.outputs[0]].frac_bits, fn)


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, exp_table, f_in):
        e = exp_table[(x.max(dim=-1, keepdim=True).values - x).long()]
        total = e.sum(dim=-1, keepdim=True)
        y = torch.clamp(torch.div(2 * e * 128 + total, 2 * total, rounding_mode="floor"), -128, 127)
        ctx.save_for_backward(x)
        ctx.f_in = f_in
        return y

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            real = (x.detach() * 2.0 ** -ctx.f_in).requires_grad_(True)
            p = torch.softmax(real, dim=-1) * 128.0
            (g,) = torch.autograd.grad(p, real, grad)
        return g * 2.0 ** -ctx.f_in, None, None


def _softmax(model, node, x):
    table = torch.as_tensor(node.qparams["exp_table"].astype(np.float64), dtype=DTYPE)
    return _Softmax.apply(x, table, model.graph.tensors[node.inputs[0]].frac_bits)


QAT_OPS: dict[type, Callable] = {  # dispatch on the op's class (subclasses: sparse and packed layers)
    ops.Conv2d: _weighted, ops.Linear: _weighted, ops.MaxPool2d: _maxpool, ops.AvgPool2d: _avgpool,
    ops.Reshape: _reshape, ops.Transpose: _transpose, ops.Relu: _relu, ops.Clip: _clip, ops.Add: _add,
    ops.Mul: _mul, ops.Concat: _concat, ops.Lut: _lut, ops.Softmax: _softmax,
}


def _implementation(node) -> Callable:
    for cls in type(node).__mro__:
        if cls in QAT_OPS:
            return QAT_OPS[cls]
    raise EdgeCompileError(f"quantization-aware training does not support {node.op_type} ('{node.name}') yet")


# -- the module -------------------------------------------------------------------------------

# Export settings that leave every integer alone: where buffers go, what is measured, how many vectors.
EXPORT_FREE = frozenset({"vectors", "sparse", "memory_plan", "patch_budget", "arena", "val"})


class QATModel(torch.nn.Module):
    """The compiler's integer model as a trainable PyTorch module (see the module docstring)."""

    def __init__(self, loaded: LoadedModel, calib: np.ndarray, options: CompileOptions, keep_zeros: bool = True):
        super().__init__()
        self.loaded = copy.deepcopy(loaded)
        self.options = options
        self.calib = np.asarray(calib, dtype=np.float32)
        graph = copy.deepcopy(loaded.graph)
        check_options(graph, options)
        self.decisions = optimize(graph, options)
        check_layer_bits(graph, options)  # a per-layer width for a layer that does not exist
        apply_param_overrides(graph, options.param_overrides)  # start from given weights (e.g. a PTQ export's)
        if options.prune:  # as compile_model prunes; the masks below keep those weights at zero
            prune(graph, options.prune)
        quantize_graph(graph, calibrate(graph, self.calib), quant_options(options, graph))
        self.formats = {name: t.frac_bits for name, t in graph.tensors.items()}
        self.graph = graph
        self.quant = quant_options(options, graph)
        self.quant.fixed_formats = self.formats
        weights, biases = torch.nn.ParameterDict(), torch.nn.ParameterDict()
        self.masks: dict[str, torch.Tensor] = {}
        keys = {}
        for node in graph.nodes:
            _implementation(node)  # refuse unsupported ops now, not in the first forward pass
            if isinstance(node, WeightedOp):
                key = node.name.replace(".", "__")  # ParameterDict keys cannot contain dots
                keys[node.name] = key
                w = torch.as_tensor(np.asarray(node.params["weight"], np.float64), dtype=DTYPE)
                weights[key] = torch.nn.Parameter(w.clone())
                self.masks[node.name] = (w != 0).to(DTYPE) if keep_zeros else torch.ones_like(w)
                if "bias" in node.params:
                    biases[key] = torch.nn.Parameter(
                        torch.as_tensor(np.asarray(node.params["bias"], np.float64), dtype=DTYPE).clone())
        self.weight_params, self.bias_params = weights, biases  # registered with torch
        self.weights = _NamedView(weights, keys)
        self.biases = _NamedView(biases, keys)
        self._keys = keys

    def float_params(self) -> dict[str, dict[str, np.ndarray]]:
        """The current float parameters by layer name (masked), as export takes them."""
        out = {}
        for name in self._keys:
            params = {"weight": (self.weights[name] * self.masks[name]).detach().numpy()}
            if name in self.biases:
                params["bias"] = self.biases[name].detach().numpy()
            out[name] = params
        return out

    def _requantize_weights(self) -> None:
        """Re-run the compiler's own quantization of every layer on the current weights."""
        g = self.graph
        for name, t in g.tensors.items():
            t.frac_bits = self.formats[name]
        for node in g.nodes:
            if isinstance(node, WeightedOp):
                node.params["weight"] = (self.weights[node.name] * self.masks[node.name]).detach().numpy()
                if node.name in self.biases:
                    node.params["bias"] = self.biases[node.name].detach().numpy()
            node.quantize(g, self.quant)
            if any(g.tensors[t].frac_bits != self.formats[t] for t in node.outputs):
                raise EdgeCompileError(f"layer '{node.name}' needs a different output format after training; "
                                       "prepare again from the trained model")

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        t = self.graph.input
        scaled = torch.as_tensor(x, dtype=DTYPE) * 2.0 ** t.frac_bits
        lo, hi = -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1
        return straight_through(scaled, torch.clamp(round_half_up(scaled), lo, hi), lo, hi)

    def forward(self, x: torch.Tensor, integers: bool = False) -> torch.Tensor:
        """Dequantized outputs (or with integers=True the int8 values, as float64)."""
        self._requantize_weights()
        env = {self.graph.inputs[0]: self.quantize_input(x)}
        for node in self.graph.nodes:
            env[node.outputs[0]] = _implementation(node)(self, node, *[env[t] for t in node.inputs])
        out = env[self.graph.outputs[0]]
        return out if integers else out * 2.0 ** -self.graph.output.frac_bits

    def export(self, out_dir: str | Path, name: str | None = None, **settings):
        """Compile the fine-tuned model with the formats it was trained with (edgecompile export).

        settings: only what leaves the integers alone (vectors, sparse); the rest was fixed by
        prepare(), and changing it here would make the C differ from the model you trained."""
        from .export import ExportSettings, export

        fixed = sorted(set(settings) - EXPORT_FREE)
        if fixed:
            raise EdgeCompileError(f"QATModel.export: {', '.join(fixed)} cannot change after training (the C "
                                   f"must equal the QAT model); set bits, rank, energy, per_channel and "
                                   f"calib_method in qat.prepare, and export takes only {', '.join(sorted(EXPORT_FREE))}")

        bits = [str(self.options.bits)] + [f"{k}={v}" for k, v in self.options.layer_bits.items()]
        return export(ExportSettings(model=self.loaded.source, out_dir=Path(out_dir), calib=self.calib,
                                     bits=tuple(bits), name=name or self.loaded.source.stem,
                                     loaded=self.loaded, param_overrides=self.float_params(),
                                     fixed_formats=self.formats, per_channel=self.options.per_channel,
                                     calib_method=self.options.calib_method, output_bits=self.options.output_bits,
                                     **self._rank_settings(), **settings))

    def _rank_settings(self) -> dict:
        r = self.options.ranks
        rank = ",".join(([str(r.default)] if r.default else []) + [f"{k}={v}" for k, v in r.layers.items()]) or None
        return {"rank": rank, "energy": r.energy, "factorize_conv1x1": r.conv1x1}


def quantized_weights(graph) -> dict[str, dict[str, np.ndarray]]:
    """A compiled graph's integer weights as float values (q * 2^-f_w per output channel), with its
    float biases: as param_overrides they start QAT from what post-training quantization chose
    (its rounding and equalization), and the compiler's weight rule gives back the same integers."""
    out = {}
    for node in graph.nodes:
        if not isinstance(node, WeightedOp) or "weight_frac_bits" not in node.qattrs:
            continue
        q = np.asarray(node.qparams["weight"], np.float64)
        f = np.asarray(node.qattrs["weight_frac_bits"], np.int64)
        f = np.broadcast_to(f, (q.shape[0],)).reshape((-1,) + (1,) * (q.ndim - 1))
        out[node.name] = {"weight": np.ldexp(q, -f)}
        if "bias" in node.params:
            out[node.name]["bias"] = np.asarray(node.params["bias"], np.float64)
    return out


def fine_tune(model: QATModel, x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 5e-4, batch: int = 64,
              seed: int = 0, progress=None) -> list[float]:
    """Adam on cross-entropy over (x, y) for `epochs`: the float weights learn through the integer
    forward pass.  Returns the mean loss of every epoch; leaves the model in evaluation mode.
    progress(count, label) is a bar factory as export takes it (one step per batch)."""
    from .progress import no_progress

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    batches = (len(xt) + batch - 1) // batch
    losses = []
    with (progress or no_progress)(epochs * batches, f"fine-tuning {epochs} epoch(s) (QAT)") as bar:
        for _ in range(epochs):
            model.train()
            perm, total = torch.randperm(len(xt)), 0.0
            for i in range(0, len(xt), batch):
                idx = perm[i:i + batch]
                opt.zero_grad()
                loss = F.cross_entropy(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                bar.update(1)
            losses.append(total / len(xt))
    model.eval()
    return losses


class _NamedView:
    """ParameterDict access by layer name ("fc1.V" is stored under "fc1__V")."""

    def __init__(self, params: torch.nn.ParameterDict, keys: dict[str, str]):
        self._params, self._keys = params, keys

    def __getitem__(self, name: str) -> torch.nn.Parameter:
        return self._params[self._keys[name]]

    def __contains__(self, name: str) -> bool:
        return name in self._keys and self._keys[name] in self._params


def prepare(model, calib, bits=8, input_shape: tuple[int, ...] | None = None, rank=None, energy=None,
            per_channel: bool | None = None, calib_method: str = "mse", keep_zeros: bool = True,
            trust_pickle: bool = False) -> QATModel:
    """A QATModel for `model` (an nn.Module or a model file), calibrated on `calib` (array, tensor or file).

    bits: 8, or a spec like "8,fc1=4" / ("8", "fc1=4"); rank/energy as for `edgecompile export`."""
    from .calibration import load_array, match_shape

    if isinstance(calib, torch.Tensor):
        calib = calib.detach().cpu().numpy()
    if isinstance(calib, (list, tuple)):
        calib = np.asarray(calib)
    if isinstance(calib, np.ndarray):
        if not np.issubdtype(calib.dtype, np.number) or not np.all(np.isfinite(calib)) or calib.size == 0:
            raise EdgeCompileError("calibration data: expected a non-empty array of finite numbers "
                                   f"(got dtype {calib.dtype}, shape {calib.shape})")
        calib = np.asarray(calib, dtype=np.float32)
    elif isinstance(calib, (str, Path)):
        calib = load_array(calib)
    else:
        raise EdgeCompileError(f"calibration data: expected an array, a tensor or a file name, got {type(calib).__name__}")
    shape = tuple(input_shape) if input_shape else tuple(calib.shape[1:])
    if isinstance(model, torch.nn.Module):
        loaded = load_module(copy.deepcopy(model).float(), shape, type(model).__name__.lower())
    else:
        loaded = load_model(Path(model), shape, trust_pickle)
    if len(loaded.graph.inputs) != 1 or len(loaded.graph.outputs) != 1:
        source = type(model).__name__ if isinstance(model, torch.nn.Module) else model
        raise EdgeCompileError(f"{source}: QAT fine-tunes models with one input and one output; this one has "
                               f"{len(loaded.graph.inputs)} and {len(loaded.graph.outputs)} (export handles it)")
    calib = match_shape(calib, loaded.graph.input.shape, "calibration data")
    default_bits, layer_bits = parse_bits(bits)
    options = CompileOptions(bits=default_bits, layer_bits=layer_bits, ranks=RankSpec.parse(rank, energy),
                             per_channel=per_channel, calib_method=calib_method, sparse="auto")
    return QATModel(loaded, calib, options, keep_zeros)

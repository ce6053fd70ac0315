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

Each op computes its own step (`qat_forward` in its file under ops/, with the torch helpers of
ops/qat_support.py); this module holds the trainable module and the training loop.

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

import numpy as np
import torch
import torch.nn.functional as F

from .compiler import (CompileOptions, apply_param_overrides, check_layer_bits, check_options, optimize,
                       quant_options)
from .errors import EdgeCompileError
from .frontend import LoadedModel, load_model, load_module
from .ops.qat_support import DTYPE, round_half_up, straight_through
from .ops.weighted import WeightedOp
from .passes.factorize import RankSpec
from .passes.prune import prune
from .passes.quantize import calibrate, parse_bits, quantize_graph

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
            if not node.trainable():  # refuse unsupported ops now, not in the first forward pass
                raise node.qat_refusal()
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
            env[node.outputs[0]] = node.qat_forward(self, *[env[t] for t in node.inputs])
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

"""Random small models from the supported op set, and one fuzz trial on each.

A trial is fully described by a seed: the seed draws a JSON spec (input shape, layers,
export options, frontend), the spec builds the PyTorch model, and `run_trial` exports it and
checks it.  A failing seed is therefore its own regression file (tests/fuzz_regressions/).

Outcomes: "exact" (exported, C equals the simulator bit for bit, float path equals the
reference), "refused" (an EdgeCompileError: a clear no), "mismatch" (a wrong number), "crash"
(any other exception: a bug), "skipped" (PyTorch itself could not save the model that way).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import on_every_core

ACTIVATIONS = ("relu", "relu6", "hardswish", "sigmoid", "none")
FRONTENDS = ("pt2", "torchscript", "onnx", "tf2onnx")  # tf2onnx: ONNX rewritten the way tf2onnx writes it


# -- drawing a spec ----------------------------------------------------------------------------
def _conv_out(size, k, stride, pad, dil):
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _act(rng):
    return str(rng.choice(ACTIVATIONS, p=[0.35, 0.15, 0.15, 0.1, 0.25]))


def draw_conv(rng, c, h, w):
    """A Conv2d (maybe grouped, dilated, strided, padded) that leaves at least one pixel, or None."""
    for _ in range(20):
        k = int(rng.choice([1, 2, 3, 5]))
        dil = int(rng.choice([1, 1, 1, 2]))
        stride = int(rng.choice([1, 1, 2, 3]))
        pad = int(rng.integers(0, k // 2 * dil + 1))
        oh, ow = _conv_out(h, k, stride, pad, dil), _conv_out(w, k, stride, pad, dil)
        if oh >= 1 and ow >= 1:
            break
    else:
        return None
    out = int(rng.integers(1, 17))
    groups = 1
    if rng.random() < 0.3:
        common = [g for g in _divisors(c) if out % g == 0]
        groups = int(rng.choice(common))
        if rng.random() < 0.5 and c > 1:  # depthwise: as many groups as channels
            groups, out = c, c * int(rng.choice([1, 2]))
    return {"op": "conv", "in": c, "out": out, "k": k, "stride": stride, "pad": pad, "dil": dil,
            "groups": groups, "bias": bool(rng.random() < 0.8), "bn": bool(rng.random() < 0.4),
            "act": _act(rng)}, (out, oh, ow)


def draw_pool(rng, c, h, w):
    kind = str(rng.choice(["max", "avg", "global"]))
    if kind == "global":
        return {"op": "pool", "kind": "global"}, (c, 1, 1)
    k = int(rng.integers(1, min(h, w, 4) + 1))
    stride = int(rng.integers(1, k + 1))
    pad = int(rng.integers(0, k // 2 + 1))
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    if oh < 1 or ow < 1:
        return None
    layer = {"op": "pool", "kind": kind, "k": k, "stride": stride, "pad": pad}
    if kind == "avg" and pad and rng.random() < 0.5:
        layer["exclude_pad"] = True  # count_include_pad=False: border windows divide by fewer
    if kind == "max" and rng.random() < 0.3:
        layer["ceil"] = True
        oh, ow = -(-(h + 2 * pad - k) // stride) + 1, -(-(w + 2 * pad - k) // stride) + 1
        # PyTorch drops a last window that starts in the right padding
        oh -= (oh - 1) * stride >= h + pad
        ow -= (ow - 1) * stride >= w + pad
    return layer, (c, oh, ow)


def draw_residual(rng, c, h, w):
    k = int(rng.choice([1, 3, 5]))
    dil = int(rng.choice([1, 1, 2]))
    return {"op": "residual", "c": c, "k": k, "dil": dil, "bn": bool(rng.random() < 0.5),
            "act": _act(rng), "post": str(rng.choice(["relu", "none"]))}, (c, h, w)


def draw_concat(rng, c, h, w):
    a, b = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    return {"op": "concat", "c": c, "a": a, "b": b, "act": _act(rng)}, (a + b, h, w)


def draw_se(rng, c, h, w):
    """Squeeze-and-excitation: x times a gate computed from its global average."""
    return {"op": "se", "c": c, "mid": int(rng.integers(1, 9)),
            "gate": str(rng.choice(["sigmoid", "hardsigmoid"]))}, (c, h, w)


def draw_pad(rng, c, h, w):
    p = [int(v) for v in rng.integers(0, 3, 4)]  # left, right, top, bottom
    return {"op": "pad", "pads": p}, (c, h + p[2] + p[3], w + p[0] + p[1])


def draw_add2(rng, c, h, w):
    """Two different branches added: a 1x1 conv and a 3x3 conv of the same input."""
    out = int(rng.integers(1, 17))
    return {"op": "add2", "c": c, "out": out, "act": _act(rng)}, (out, h, w)


def draw_spec(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    spec = {"seed": int(seed), "layers": []}
    if rng.random() < 0.2:  # an MLP on a feature vector
        n = int(rng.integers(1, 41))
        spec["input"] = [n]
        features = n
    else:
        c, h, w = int(rng.integers(1, 9)), int(rng.integers(1, 41)), int(rng.integers(1, 41))
        spec["input"] = [c, h, w]
        for _ in range(int(rng.integers(1, 5))):
            if h * w * c > 4096 and rng.random() < 0.7:  # keep the examples small and fast
                drawn = draw_pool(rng, c, h, w) if rng.random() < 0.5 else draw_conv(rng, c, h, w)
            else:
                kind = str(rng.choice(["conv", "conv", "pool", "residual", "concat", "se", "pad", "add2"]))
                drawn = {"conv": draw_conv, "pool": draw_pool, "residual": draw_residual, "concat": draw_concat,
                         "se": draw_se, "pad": draw_pad, "add2": draw_add2}[kind](rng, c, h, w)
            if drawn is None:
                continue
            layer, (c, h, w) = drawn
            spec["layers"].append(layer)
            if layer["op"] == "pad" and rng.random() < 0.8:  # mostly where it folds: into a convolution
                drawn = draw_conv(rng, c, h, w)
                if drawn is not None:
                    layer, (c, h, w) = drawn
                    spec["layers"].append(layer)
        if rng.random() < 0.3 and h * w > 1:
            spec["layers"].append({"op": "pool", "kind": "global"})
            h = w = 1
        while c * h * w > 1536:  # a wide first Linear is slow to round and says little more
            layer, (c, h, w) = ({"op": "pool", "kind": "max", "k": 2, "stride": 2, "pad": 0}, (c, h // 2, w // 2)) \
                if min(h, w) >= 2 else ({"op": "pool", "kind": "global"}, (c, 1, 1))
            spec["layers"].append(layer)
        spec["layers"].append({"op": "flatten"})
        features = c * h * w
    for _ in range(int(rng.integers(0, 3))):
        out = int(rng.integers(1, 33))
        spec["layers"].append({"op": "linear", "in": features, "out": out, "bias": bool(rng.random() < 0.9),
                               "bn": bool(rng.random() < 0.2), "act": _act(rng)})
        features = out
    spec["layers"].append({"op": "linear", "in": features, "out": int(rng.integers(1, 11)), "bias": True,
                           "bn": False, "act": "none"})
    if rng.random() < 0.1:
        spec["layers"].append({"op": "softmax"})
    spec["weight_scale"] = float(rng.choice([1.0, 1.0, 1.0, 1e-3, 0.05, 20.0]))
    spec["calib_kind"] = str(rng.choice(["normal", "normal", "normal", "positive", "constant-channel", "sparse"]))
    spec["frontend"] = str(rng.choice(FRONTENDS[:3]))
    if spec["frontend"] == "onnx" and np.random.default_rng(seed + 7).random() < 0.5:  # (its own stream: the
        spec["frontend"] = "tf2onnx"  # other draws stay those of the seeds found before it was added)
    spec["opset"] = int(rng.integers(11, 19))
    spec["options"] = draw_options(rng)
    spec["calib_scale"] = float(rng.choice([0.1, 1.0, 3.0]))
    return spec


def draw_options(rng) -> dict:
    """Export options, the expensive searches less often so that a trial stays quick."""
    o = {"bits": int(rng.choice([8, 8, 8, 7, 6, 5, 4, 3, 2])), "vectors": 16}
    if rng.random() < 0.25:
        o["rank"] = int(rng.integers(1, 9))
    if rng.random() < 0.25:
        o["per_channel"] = False
    if rng.random() < 0.2:
        o["act_bits"] = 16
    o["memory_plan"] = str(rng.choice(["auto", "in-place", "layer"]))
    if rng.random() < 0.2:
        o["arena"] = "extern"
    quick = rng.random() < 0.7
    o["format_search"] = not quick and bool(rng.random() < 0.5)
    o["snap_ranges"] = not quick and bool(rng.random() < 0.5)
    o["equalize"] = "off" if quick else "auto"
    o["weight_rounding"] = "nearest" if quick else "error-feedback"
    o["unsigned_relu"] = bool(rng.random() < 0.8)
    if rng.random() < 0.15:
        o["act_bits"] = "auto"
    if rng.random() < 0.15:
        o["sparse"] = "on"
    if rng.random() < 0.15:
        o["bias_correction"] = True
    if rng.random() < 0.3:
        o["calib_method"] = str(rng.choice(["minmax", "percentile", "sigma", "mse"]))
        o["weight_method"] = str(rng.choice(["minmax", "percentile", "sigma", "mse"]))
    if rng.random() < 0.2:
        o["output_bits"] = int(rng.choice([8, 16]))
    if rng.random() < 0.1:
        o["drop_softmax"] = True
    if rng.random() < 0.1 and "rank" not in o:
        o["energy"] = float(rng.choice([0.5, 0.9, 0.99]))
    o["asymmetric"] = bool(rng.random() < 0.8)
    return o


# -- building the model ------------------------------------------------------------------------
def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "hardswish": nn.Hardswish(), "sigmoid": nn.Sigmoid(),
            "none": nn.Identity()}[name]


def randomize_bn(bn: nn.Module, g: torch.Generator) -> nn.Module:
    n = bn.num_features
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
        bn.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.05)
        bn.weight.copy_(torch.randn(n, generator=g))
        bn.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return bn


class Residual(nn.Module):
    def __init__(self, conv, post):
        super().__init__()
        self.conv, self.post = conv, post

    def forward(self, x):
        return self.post(x + self.conv(x))


class Concat(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class SqueezeExcite(nn.Module):
    def __init__(self, gate):
        super().__init__()
        self.gate = gate

    def forward(self, x):
        return x * self.gate(x)


class Pad(nn.Module):
    def __init__(self, pads):
        super().__init__()
        self.pads = list(pads)

    def forward(self, x):
        return F.pad(x, self.pads)


class Add2(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return self.a(x) + self.b(x)


class Pool(nn.Module):
    def __init__(self, kind, k=1, stride=1, pad=0, ceil=False, exclude_pad=False):
        super().__init__()
        self.kind, self.k, self.stride, self.pad, self.ceil = kind, k, stride, pad, ceil
        self.exclude_pad = exclude_pad

    def forward(self, x):
        if self.kind == "global":
            return F.adaptive_avg_pool2d(x, 1)
        if self.kind == "max":
            return F.max_pool2d(x, self.k, self.stride, self.pad, ceil_mode=self.ceil)
        return F.avg_pool2d(x, self.k, self.stride, self.pad, count_include_pad=not self.exclude_pad)


def build_layer(layer: dict, g: torch.Generator) -> nn.Module:
    op = layer["op"]
    if op == "conv":
        parts = [nn.Conv2d(layer["in"], layer["out"], layer["k"], layer["stride"], layer["pad"], layer["dil"],
                           layer["groups"], bias=layer["bias"])]
        if layer["bn"]:
            parts.append(randomize_bn(nn.BatchNorm2d(layer["out"]), g))
        return nn.Sequential(*parts, activation(layer["act"]))
    if op == "pool":
        return Pool(layer["kind"], layer.get("k", 1), layer.get("stride", 1), layer.get("pad", 0),
                    layer.get("ceil", False), layer.get("exclude_pad", False))
    if op == "se":
        gate = nn.Sigmoid() if layer["gate"] == "sigmoid" else nn.Hardsigmoid()
        return SqueezeExcite(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(layer["c"], layer["mid"], 1), nn.ReLU(),
                                           nn.Conv2d(layer["mid"], layer["c"], 1), gate))
    if op == "pad":
        return Pad(layer["pads"])
    if op == "add2":
        return Add2(nn.Conv2d(layer["c"], layer["out"], 1),
                    nn.Sequential(nn.Conv2d(layer["c"], layer["out"], 3, padding=1), activation(layer["act"])))
    if op == "residual":
        c, k, dil = layer["c"], layer["k"], layer["dil"]
        parts = [nn.Conv2d(c, c, k, padding=dil * (k - 1) // 2, dilation=dil)]
        if layer["bn"]:
            parts.append(randomize_bn(nn.BatchNorm2d(c), g))
        return Residual(nn.Sequential(*parts, activation(layer["act"])), activation(layer["post"]))
    if op == "concat":
        return Concat(nn.Sequential(nn.Conv2d(layer["c"], layer["a"], 1), activation(layer["act"])),
                      nn.Sequential(nn.Conv2d(layer["c"], layer["b"], 3, padding=1), nn.ReLU()))
    if op == "flatten":
        return nn.Flatten()
    if op == "softmax":
        return nn.Softmax(dim=1)
    if op == "linear":
        parts = [nn.Linear(layer["in"], layer["out"], bias=layer["bias"])]
        if layer["bn"]:
            parts.append(randomize_bn(nn.BatchNorm1d(layer["out"]), g))
        return nn.Sequential(*parts, activation(layer["act"]))
    raise ValueError(op)


def build_model(spec: dict) -> nn.Module:
    torch.manual_seed(spec["seed"])
    g = torch.Generator().manual_seed(spec["seed"])
    model = nn.Sequential(*[build_layer(layer, g) for layer in spec["layers"]]).eval()
    scale = spec.get("weight_scale", 1.0)
    if scale != 1.0:  # tiny or large weights stress the weight formats and shifts
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.weight.mul_(scale)
    return model


def calibration(spec: dict, n: int = 32) -> np.ndarray:
    rng = np.random.default_rng(spec["seed"] + 1)
    x = rng.standard_normal((n, *spec["input"])) * spec["calib_scale"]
    kind = spec.get("calib_kind", "normal")
    if kind == "positive":  # like images in [0, scale]
        x = np.abs(x)
    elif kind == "constant-channel":  # one input channel (or feature) never changes
        x[:, 0] = 0.5
    elif kind == "sparse":  # mostly zeros
        x *= rng.random(x.shape) < 0.1
    return x.astype(np.float32)


# -- saving it through a frontend --------------------------------------------------------------
def save_model(model: nn.Module, spec: dict, folder: Path, frontend: str) -> Path:
    example = torch.zeros(2, *spec["input"])
    if frontend == "pt2":
        program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, folder / "model.pt2")
        return folder / "model.pt2"
    if frontend == "torchscript":
        torch.jit.save(torch.jit.trace(model, example), str(folder / "model.pt"))
        return folder / "model.pt"
    torch.onnx.export(model, (example,), folder / "model.onnx", dynamo=False, opset_version=spec["opset"],
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    if frontend == "tf2onnx":
        onnx.save(tf2onnx_style(onnx.load(str(folder / "model.onnx"))), str(folder / "model.onnx"))
    return folder / "model.onnx"


def tf2onnx_style(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same function as tf2onnx writes it from Keras: Gemm as MatMul + Add, Flatten as a
    Reshape to a shape computed at run time (Shape, Gather, Unsqueeze, Concat), and a padded Conv
    as an explicit Pad before an unpadded Conv."""
    from onnx import helper, numpy_helper

    g = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    inits = {i.name: i for i in g.initializer}
    nodes, extra = [], []

    def const(name, value):
        extra.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    for k, n in enumerate(g.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Gemm" and n.input[1] in inits and attrs.get("alpha", 1.0) == 1.0 \
                and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0):
            w = numpy_helper.to_array(inits[n.input[1]])
            wt = const(f"tf_w{k}", w.T.copy() if attrs.get("transB", 0) else w)
            if len(n.input) > 2 and n.input[2]:
                nodes.append(helper.make_node("MatMul", [n.input[0], wt], [f"tf_mm{k}"]))
                nodes.append(helper.make_node("Add", [f"tf_mm{k}", n.input[2]], list(n.output)))
            else:
                nodes.append(helper.make_node("MatMul", [n.input[0], wt], list(n.output)))
        elif n.op_type == "Flatten" and attrs.get("axis", 1) == 1:
            nodes.append(helper.make_node("Shape", [n.input[0]], [f"tf_shape{k}"]))
            nodes.append(helper.make_node("Gather", [f"tf_shape{k}", const(f"tf_zero{k}", np.array(0, np.int64))],
                                          [f"tf_n{k}"], axis=0))
            if opset >= 13:
                nodes.append(helper.make_node("Unsqueeze", [f"tf_n{k}", const(f"tf_ax{k}", np.array([0], np.int64))],
                                              [f"tf_n1{k}"]))
            else:
                nodes.append(helper.make_node("Unsqueeze", [f"tf_n{k}"], [f"tf_n1{k}"], axes=[0]))
            nodes.append(helper.make_node("Concat", [f"tf_n1{k}", const(f"tf_m1{k}", np.array([-1], np.int64))],
                                          [f"tf_target{k}"], axis=0))
            nodes.append(helper.make_node("Reshape", [n.input[0], f"tf_target{k}"], list(n.output)))
        elif n.op_type == "Conv" and any(attrs.get("pads", [0])):
            pt, pl, pb, pr = attrs["pads"]
            pads = const(f"tf_pads{k}", np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64))
            nodes.append(helper.make_node("Pad", [n.input[0], pads], [f"tf_padded{k}"], mode="constant"))
            rest = {a: v for a, v in attrs.items() if a not in ("pads", "auto_pad")}
            nodes.append(helper.make_node("Conv", [f"tf_padded{k}", *n.input[1:]], list(n.output), **rest))
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    used = {name for n in nodes for name in n.input}
    kept = [i for i in list(g.initializer) + extra if i.name in used]  # (the Gemms' weights are transposed copies)
    del g.initializer[:]
    g.initializer.extend(kept)
    onnx.checker.check_model(model)
    return model


# -- one trial ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str  # exact | refused | mismatch | crash | skipped
    detail: str = ""


def float_reference(model: nn.Module, path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime for an ONNX file, PyTorch itself otherwise."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def run_trial(spec: dict, workdir: Path | None = None, verify_c: bool = True,
              targets: tuple[str, ...] = ("host",), sanitize: bool = False) -> Outcome:
    """Generate, save, export and check one model; `targets` verify the C (the host's build under
    ASan and UBSan when `sanitize`)."""
    from edgecompile.errors import EdgeCompileError
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    folder = Path(tempfile.mkdtemp(prefix="fuzz-", dir=workdir))
    try:
        model = build_model(spec)
        try:
            path = save_model(model, spec, folder, spec["frontend"])
        except Exception as exc:  # PyTorch's own exporters: not ours to fix
            return Outcome("skipped", f"{spec['frontend']} save failed: {type(exc).__name__}: {exc}"[:300])
        x = calibration(spec)
        np.save(folder / "calib.npy", x)
        try:
            result = export(ExportSettings(path, folder / "out", folder / "calib.npy", **spec["options"]))
        except EdgeCompileError as exc:
            return Outcome("refused", str(exc)[:500])
        graph = result.compiled.imported
        reference = float_reference(model, path, x).reshape(len(x), -1)
        mine = graph.run_float(x).reshape(len(x), -1)
        scale = max(float(np.abs(reference).max()), 1.0)
        err = float(np.abs(reference - mine).max())
        if not err <= 1e-4 * scale:
            return Outcome("mismatch", f"float path differs from {path.suffix} reference by {err:.3g}")
        checked = on_every_core(lambda target: verify(result.out_dir, target=target,
                                                      sanitize=sanitize and target == "host"),
                                targets if verify_c else ())
        for target, v in zip(targets, checked):
            if not v.ok:
                m = v.first_mismatch
                return Outcome("mismatch", f"{target}: C differs from the simulator: {v.exact}/{v.total} exact, "
                                           f"sample {m.sample} index {m.index}: C {m.c_value} sim {m.sim_value}")
        return Outcome("exact")
    except Exception:
        return Outcome("crash", traceback.format_exc()[-3000:])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- shrinking a failure ------------------------------------------------------------------------
def failure_signature(outcome: Outcome) -> tuple[str, str]:
    """What a failure is, for shrinking: its kind and, for a crash, the exception's type (the
    message carries numbers that change with the model); for a mismatch, which check failed."""
    last = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else ""
    if outcome.kind == "crash":
        return "crash", last.split(":")[0]
    return outcome.kind, last.split(":")[0] if outcome.kind != "mismatch" else last.split(" differs")[0]


def _builds(spec: dict) -> bool:
    """Whether PyTorch builds and runs the candidate (a dropped layer may break the shapes)."""
    try:
        with torch.no_grad():
            build_model(spec)(torch.zeros(2, *spec["input"]))
        return True
    except Exception:
        return False


def _smaller(spec: dict):
    """Candidates one step simpler than spec: a layer dropped (never the last Linear), an option
    dropped (its default), plain weights and calibration data, the ONNX frontend."""
    for i in range(len(spec["layers"]) - 1):
        yield {**spec, "layers": spec["layers"][:i] + spec["layers"][i + 1:]}
    for key in sorted(spec["options"]):
        yield {**spec, "options": {k: v for k, v in spec["options"].items() if k != key}}
    for key, plain in (("weight_scale", 1.0), ("calib_kind", "normal"), ("calib_scale", 1.0), ("frontend", "onnx")):
        if spec.get(key, plain) != plain:
            yield {**spec, key: plain}


def shrink(spec: dict, outcome: Outcome, trial=None, budget: int = 60) -> dict:
    """A smaller spec that fails the same way (failure_signature): one simplification at a time,
    kept while the failure stays, until none is left or `budget` trials are spent (greedy)."""
    trial = trial or run_trial
    want = failure_signature(outcome)
    tried = 0
    improved = True
    while improved and tried < budget:
        improved = False
        for candidate in _smaller(spec):
            if tried >= budget:
                break
            if not _builds(candidate):
                continue
            tried += 1
            if failure_signature(trial(candidate)) == want:
                spec, improved = candidate, True
                break
    return spec


REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"


def save_regression(spec: dict, outcome: Outcome, folder: Path = REGRESSIONS) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"seed_{spec['seed']}.json"
    # the exception's own line: a traceback would carry this machine's paths into the repository
    detail = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else ""
    path.write_text(json.dumps({"spec": spec, "found": outcome.kind, "detail": detail}, indent=1) + "\n")
    return path

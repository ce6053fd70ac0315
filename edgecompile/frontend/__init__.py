"""Frontends: model files -> the IR.  PyTorch formats go through ONNX (torch_frontend),
so onnx_frontend is the only importer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from ..errors import EdgeCompileError
from ..ir import Graph
from .onnx_frontend import import_onnx, supported_onnx_ops  # noqa: F401
from . import recurrent  # noqa: F401  (registers the recurrent layers' ONNX converters)

TORCH_SUFFIXES = (".pt", ".pth", ".pt2", ".ts", ".torchscript", ".bin")


@dataclass
class LoadedModel:
    graph: Graph
    onnx_model: onnx.ModelProto  # the float oracle runs this with onnxruntime
    source: Path
    kind: str  # onnx | torchscript | export | pickle
    torch_model: object = None
    kept: bool = False  # the ONNX conversion an earlier run kept (onnx_cache)


def load_module(module, input_shape: tuple[int, ...], name: str = "model") -> LoadedModel:
    """An nn.Module in memory (e.g. for edgecompile.qat) through the same ONNX path as a file."""
    from . import torch_frontend

    source = Path(f"{name}.pt")
    model = torch_frontend.to_onnx(module.eval(), "module", tuple(input_shape), source)
    return LoadedModel(import_onnx(model, source, tuple(input_shape)), model, source, "module", module)


def load_model(path: str | Path, input_shape: tuple[int, ...] | None = None, trust_pickle: bool = False,
               imports: tuple[str, ...] = ()) -> LoadedModel:
    """Read a model file of any supported format into the IR."""
    path = Path(path)
    if not path.is_file():
        raise EdgeCompileError(f"{path}: no such file")
    if path.suffix.lower() == ".onnx":
        try:
            model = onnx.load(str(path))
        except Exception as exc:
            raise EdgeCompileError(f"{path}: not a valid ONNX file ({type(exc).__name__}: {exc})") from None
        if len(model.graph.node) == 0:
            raise EdgeCompileError(f"{path}: the ONNX graph is empty (is this really an ONNX model?)")
        return LoadedModel(import_onnx(model, path, input_shape), model, path, "onnx")
    from . import onnx_cache, torch_frontend

    key = onnx_cache.key_for(path, input_shape)  # (None: the cache is off)
    kept = onnx_cache.lookup(key)  # converted by an earlier run
    if kept is not None:
        model, shape, kind = kept
        return LoadedModel(import_onnx(model, path, shape), model, path, kind, kept=True)
    module, kind, model_shape = torch_frontend.load_torch_module(path, trust_pickle, imports)
    shape = input_shape or model_shape
    if shape is None:
        raise EdgeCompileError(f"{path}: this PyTorch file does not record its input shape; pass "
                               "--input-shape C,H,W (without the batch axis), or to export, --calib with sample inputs")
    model = None
    if kind == "export":
        try:  # the fast exporter first (torch_frontend.to_onnx); the dynamo exporter decides errors
            model = torch_frontend.to_onnx(module, kind, shape, path)
            graph = import_onnx(model, path, tuple(shape))
        except EdgeCompileError:
            model = None
    if model is None:
        model = torch_frontend.to_onnx(module, kind, shape, path, dynamo=True)
        graph = import_onnx(model, path, tuple(shape))
    onnx_cache.store(key, path, model, tuple(shape), kind)  # (after import_onnx accepted it)
    return LoadedModel(graph, model, path, kind, module)

"""PyTorch files -> ONNX, so that one importer (onnx_frontend) handles every format.

Accepted: TorchScript archives (torch.jit.save), torch.export programs (.pt2),
and - only with trust_pickle - whole pickled nn.Modules (torch.save(model)).
Unpickling runs arbitrary code from the file, so it is never done implicitly.
BatchNorm is kept in the exported graph (no constant folding) so that
edgecompile's own folding pass does the work and layer names survive.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import linecache
import logging
import os
import pickle
import re
import sys
import warnings
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx

from ..errors import EdgeCompileError, InputShapeError

OPSET = 17


def _torch():
    import torch  # imported lazily: ONNX-only users pay nothing for it
    return torch


def is_torchscript(path: Path) -> bool:
    """TorchScript archives hold compiled code; torch.save archives only a pickle."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def load_torch_module(path: Path, trust_pickle: bool, imports: tuple[str, ...]):
    """Return (module_or_program, kind, input_shape or None)."""
    torch = _torch()
    if path.suffix == ".pt2":
        if not zipfile.is_zipfile(path):
            raise EdgeCompileError(f"{path}: not a torch.export program (.pt2 files are zip archives written by "
                                   "torch.export.save); re-export the model, or pass its .onnx or TorchScript file")
        with _captured_log("torch.export") as logged:
            try:
                program = torch.export.load(str(path))
            except Exception as exc:
                reason = _reason(logged.errors[-1] if logged.errors else exc).rstrip(".")
                raise EdgeCompileError(f"{path}: not a readable torch.export program (.pt2): {reason}; "
                                       "re-export it with torch.export.save") from None
        return program, "export", _exported_input_shape(program)
    if not zipfile.is_zipfile(path):
        raise EdgeCompileError(f"{path}: not a PyTorch file (expected a TorchScript archive, a .pt2 program, "
                               "a pickled module with --trust-pickle, or an .onnx model)")
    if is_torchscript(path):
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise EdgeCompileError(f"{path}: corrupt TorchScript archive: {exc}") from None
        return module.eval(), "torchscript", None
    return _load_pickle(path, trust_pickle, imports), "pickle", None


def _load_pickle(path: Path, trust_pickle: bool, imports: tuple[str, ...]):
    torch = _torch()
    safe_error = None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses any class it does not know
        obj, safe_error = None, exc
    if obj is not None:
        if isinstance(obj, dict):
            raise EdgeCompileError(
                f"{path}: this file holds a state_dict (weights only, no architecture). Save the model itself: "
                "torch.jit.save(torch.jit.script(model), 'model.pt') or torch.jit.trace, "
                "torch.export.save(torch.export.export(model, (example,)), 'model.pt2'), or ONNX; "
                "or torch.save(model) and pass --trust-pickle --import MODULE.")
        raise EdgeCompileError(f"{path}: holds a {type(obj).__name__}, not a model")
    if not trust_pickle:
        raise EdgeCompileError(
            f"{path}: this is a pickled Python object (torch.save(model)). Loading it runs code from the file. "
            "If you trust it, pass --trust-pickle and --import MODULE (the module that defines the model class); "
            "better, save TorchScript (torch.jit.save) or a torch.export .pt2 program, which load safely.")
    modules = [_import_user_module(name, path) for name in imports]
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=False,
                         pickle_module=_redirecting_pickle(modules))
    except (AttributeError, ModuleNotFoundError, ImportError) as exc:
        raise EdgeCompileError(f"{path}: cannot find the model's class ({exc}). Pass --import MODULE naming the "
                               "Python module that defines it (it must be importable: on PYTHONPATH or a .py path)"
                               ) from None
    except Exception as exc:
        raise EdgeCompileError(f"{path}: cannot unpickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, torch.nn.Module):
        detail = f" ({safe_error})" if safe_error else ""
        raise EdgeCompileError(f"{path}: holds a {type(obj).__name__}, not an nn.Module{detail}")
    return obj.eval()


def _import_user_module(name: str, path: Path) -> ModuleType:
    """Import MODULE by dotted name, or a .py file by path."""
    try:
        if name.endswith(".py"):
            loaded = sys.modules.get(Path(name).stem)
            if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == Path(name).resolve():
                return loaded  # already imported (by the caller): a second copy would make its classes strangers
            spec = importlib.util.spec_from_file_location(Path(name).stem, name)
            if spec is None or spec.loader is None:
                raise ImportError(name)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(name)
    except Exception as exc:
        raise EdgeCompileError(f"--import {name}: cannot import it ({type(exc).__name__}: {exc}); "
                               f"needed to unpickle {path}") from None


def _redirecting_pickle(modules: list[ModuleType]):
    """A pickle module whose Unpickler looks up classes saved from __main__ in `modules`.

    Models are often saved from a script, so their class is recorded as
    __main__.Net; --import names the module that defines it now.
    """

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "__main__":
                for m in modules:
                    if hasattr(m, name):
                        return getattr(m, name)
            return super().find_class(module, name)

    shim = ModuleType("edgecompile_pickle")
    shim.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
    shim.Unpickler = Unpickler
    return shim


def _exported_input_shape(program):
    """The recorded input shape without batch, or a tuple of them when the program takes several."""
    shapes = []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in getattr(program.graph_signature, "user_inputs", []):
            val = node.meta.get("val")
            if val is None or len(val.shape) < 2:
                return None
            try:
                shapes.append(tuple(int(d) for d in val.shape[1:]))
            except TypeError:
                return None
    if not shapes:
        return None
    return shapes[0] if len(shapes) == 1 else tuple(shapes)


def _reason(exc: Exception) -> str:
    """The line of a PyTorch exception that says what went wrong.  The TorchScript interpreter
    ends with "RuntimeError: ..." (the cause, last); the ONNX exporter starts with its reason and
    follows it with graph dumps, which are dropped."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    causes = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", ln)]
    line = causes[-1] if causes else lines[0]
    for boilerplate in ("  [Caused by", "  (Could this error message be improved?"):
        line = line.split(boilerplate, 1)[0].strip()
    return line if len(line) <= 300 else line[:297] + "..."


class _Captured(logging.Handler):
    """Keeps the exceptions a logger reports instead of printing them."""

    def __init__(self):
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


@contextlib.contextmanager
def _captured_log(name: str):
    """PyTorch loaders log a whole traceback before raising a vaguer error of their own; keep the
    logged exception (its message is the real reason) and print nothing."""
    log = logging.getLogger(name)
    handler, saved = _Captured(), (log.handlers, log.propagate)
    log.handlers, log.propagate = [handler], False  # PyTorch attaches its own stderr handler here
    try:
        yield handler
    finally:
        log.handlers, log.propagate = saved


@contextlib.contextmanager
def _quiet_exporter():
    """PyTorch's C++ side prints graph dumps straight to file descriptor 1 when an export fails,
    and the dynamo exporter logs a warning per torchvision op it skips; both would bury our
    output, so fd 1 points at /dev/null and torch.onnx logs only errors meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        onnx_log.setLevel(level)


def _program_output_names(module) -> list[str]:
    """The names of the nodes an exported program's module returns (its outputs' names, as the
    dynamo exporter gives them), or [] when they cannot be read."""
    import torch.fx

    try:
        returned = next(n for n in module.graph.nodes if n.op == "output").args[0]
    except (AttributeError, StopIteration, IndexError):
        return []
    returned = returned if isinstance(returned, (tuple, list)) else [returned]
    names = [n.name for n in returned if isinstance(n, torch.fx.Node)]
    return names if len(names) == len(returned) and len(set(names)) == len(names) else []


def _argument_names(model, kind: str, count: int) -> list[str]:
    """The names of forward()'s arguments (the C header and calibration .npz keys use them),
    or input0, input1, ... when they cannot be read."""
    import inspect

    names = []
    try:
        if kind == "torchscript":
            names = [a.name for a in model.forward.schema.arguments[1:]]
        elif kind != "export":
            names = list(inspect.signature(model.forward).parameters)
    except (AttributeError, TypeError, ValueError):
        names = []
    if len(names) != count or len(set(names)) != count:
        names = [f"input{i}" for i in range(count)]
    return names


def to_onnx(model, kind: str, input_shape: tuple[int, ...], source: Path, dynamo: bool = False) -> onnx.ModelProto:
    """Export to ONNX with batch 1 and BatchNorm kept as its own node.  A torch.export program goes
    through the TorchScript exporter unless `dynamo` (then through the dynamo exporter, as it is)."""
    from .onnx_frontend import input_shapes

    torch = _torch()
    shapes = input_shapes(input_shape)
    examples = tuple(torch.zeros((1,) + s, dtype=torch.float32) for s in shapes)
    if kind == "export" and not dynamo:
        # The exported program's module, traced by the TorchScript exporter: about a fifth of the
        # dynamo exporter's time (which first runs every ATen decomposition of the program) and
        # the same ONNX ops; load_model falls back to dynamo when this fails or imports badly.
        model, kind = model.module(), "exported-module"
    input_names = ["input"] if len(shapes) == 1 and kind != "exported-module" else \
        _argument_names(model, kind, len(shapes))
    output_names = _program_output_names(model) if kind == "exported-module" else ["output"]
    if set(output_names) & set(input_names):  # (ONNX names each value once)
        output_names = []
    buf = io.BytesIO()
    if kind != "export":  # a wrong input shape fails here with PyTorch's own clear message
        try:
            with torch.no_grad():
                result = model(*examples)
            count = len(result) if isinstance(result, (tuple, list)) else 1
            if len(output_names) != count:
                output_names = [f"output{i}" for i in range(count)] if count > 1 else ["output"]
        except Exception as exc:
            raise InputShapeError(f"{source}: the model does not run on an input of shape {tuple(input_shape)} "
                                   f"(plus batch 1): {_reason(exc)}. Check --input-shape (C,H,W without batch) "
                                   f"or the calibration data's shape.") from None
    try:
        with warnings.catch_warnings(), _quiet_exporter():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                if kind == "export":
                    # An exported program is already in inference form and cannot be
                    # re-traced; the dynamo exporter takes it as it is.
                    program = torch.onnx.export(model, examples, None, dynamo=True, optimize=False,
                                                verbose=False)
                    return program.model_proto
                # (an exported program's module cannot be switched to eval(): it is in eval form)
                mode = torch.onnx.TrainingMode.PRESERVE if kind == "exported-module" else torch.onnx.TrainingMode.EVAL
                torch.onnx.export(model, examples, buf, dynamo=False, do_constant_folding=False,
                                  opset_version=OPSET, input_names=input_names, output_names=output_names,
                                  training=mode, verbose=kind == "exported-module")  # (the source lines)
    except Exception as exc:
        raise EdgeCompileError(f"{source}: PyTorch could not export the model to ONNX (input shape "
                               f"{tuple(input_shape)}): {_reason(exc)}") from None
    proto = onnx.load_from_string(buf.getvalue())
    if kind == "exported-module":
        _name_after_program(proto)
    return proto


_PROGRAM_FRAME = re.compile(r"^(<eval_with_key>\.\d+)\((\d+)\): forward$", re.M)
_PROGRAM_LINE = re.compile(r"^\s*(\w+) = torch\.ops\.")


def _name_after_program(proto: onnx.ModelProto) -> None:
    """Name the ONNX nodes traced from an exported program's module after the program's own nodes
    (node_max_pool2d_1, as the dynamo exporter names them), so that layer names do not depend on
    the exporter: each node's doc string (verbose export) holds the stack of the trace, whose frame
    in the program's generated code is the line that calls that node's op."""
    used = {node.name for node in proto.graph.node}
    for node in proto.graph.node:
        frame = _PROGRAM_FRAME.search(node.doc_string)
        line = linecache.getline(frame.group(1), int(frame.group(2))) if frame else ""
        match = _PROGRAM_LINE.match(line)
        if match and node.op_type != "Constant":
            name, k = f"node_{match.group(1)}", 1
            while name in used:  # one op of the program may become several ONNX nodes; names stay unique
                k += 1
                name = f"node_{match.group(1)}_{k}"
            used.discard(node.name)
            used.add(name)
            node.name = name
        node.doc_string = ""


def run_torch(model, kind: str, x: np.ndarray) -> np.ndarray:
    """Float reference output of the original PyTorch model (for tests and reports)."""
    torch = _torch()
    if kind == "export":
        model = model.module()
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

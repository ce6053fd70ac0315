"""Every registered op has all its pieces (docs/adding-an-op.md): a float reference, an integer
kernel, a C rule, a QAT forward pass, a frontend mapping and a row in docs/ops.md, or declares on
its class why a piece does not apply (float_only, not_trainable, made_by)."""
from __future__ import annotations

import re
import subprocess
import sys
import types

import pytest

import edgecompile.frontend  # noqa: F401 (registers every converter, recurrent ones included)
from edgecompile.frontend.onnx_frontend import CONVERTERS, CUSTOM_CONVERTERS, OnnxImporter
from edgecompile.ops import OP_TYPES, Op
from conftest import ROOT

OPS = sorted(OP_TYPES.items())


def overrides(cls: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(Op, method)


def names_read(fn, seen=None) -> set[str]:
    """The global names and attributes a converter's code reads, following the frontend functions and
    OnnxImporter methods it calls (a converter may build its op in a helper, e.g. imp.view)."""
    seen = set() if seen is None else seen
    names, stack = set(), [fn.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    for name in list(names):
        target = fn.__globals__.get(name) or getattr(OnnxImporter, name, None)
        if isinstance(target, types.FunctionType) and target.__module__.startswith("edgecompile.frontend") \
                and target not in seen:
            seen.add(target)
            names |= names_read(target, seen)
    return names


@pytest.mark.parametrize("op_type, cls", OPS, ids=[t for t, _ in OPS])
def test_op_has_its_kernels(op_type, cls):
    assert overrides(cls, "infer_shape") and overrides(cls, "run_float"), f"{op_type}: no float reference"
    if cls.float_only:  # removed by a pass before quantization: nothing integer to define
        assert not overrides(cls, "run_int") and not overrides(cls, "emit_c") and not cls.trainable(), \
            f"{op_type} is declared float-only ({cls.float_only}) but defines integer pieces"
        return
    assert overrides(cls, "run_int"), f"{op_type}: no run_int (the simulator's integer kernel)"
    assert overrides(cls, "emit_c"), f"{op_type}: no emit_c (its C)"


@pytest.mark.parametrize("op_type, cls", OPS, ids=[t for t, _ in OPS])
def test_op_has_a_qat_forward_or_says_why_not(op_type, cls):
    if cls.trainable():
        assert not cls.not_trainable, f"{op_type} has a qat_forward and a reason not to be trainable"
    else:
        assert cls.not_trainable.strip(), f"{op_type}: define qat_forward, or set not_trainable to the reason"


@pytest.mark.parametrize("op_type, cls", OPS, ids=[t for t, _ in OPS])
def test_op_comes_from_the_frontend_or_a_pass(op_type, cls):
    assert bool(cls.onnx_ops) != bool(cls.made_by.strip()), \
        f"{op_type}: declare the ONNX ops that produce it (onnx_ops) or what makes it (made_by), one of them"
    for onnx_op in cls.onnx_ops:
        converter = CONVERTERS.get(onnx_op) or CUSTOM_CONVERTERS.get(onnx_op)
        assert converter is not None, f"{op_type}: no @converter(\"{onnx_op}\") in the frontend"
        assert cls.__name__ in names_read(converter), \
            f"{op_type}: the converter of {onnx_op} ({converter.__name__}) never builds ops.{cls.__name__}"


def documented_ops() -> dict[str, str]:
    """op type -> file, from the table of docs/ops.md."""
    text = (ROOT / "docs" / "ops.md").read_text()
    return dict(re.findall(r"^\| `(\w+)` \| `(\w+\.py)` \|", text, re.M))


@pytest.mark.parametrize("op_type, cls", OPS, ids=[t for t, _ in OPS])
def test_op_is_in_the_docs_op_list(op_type, cls):
    rows = documented_ops()
    assert op_type in rows, f"{op_type}: add its row to docs/ops.md"
    assert rows[op_type] == cls.__module__.rsplit(".", 1)[-1] + ".py", f"{op_type}: docs/ops.md names another file"


def test_the_docs_list_no_op_that_does_not_exist():
    assert set(documented_ops()) <= set(OP_TYPES)


def test_importing_the_ops_does_not_import_torch():
    """The QAT forward passes import torch when they run: ONNX-only users never load it."""
    code = "import sys, edgecompile.ops, edgecompile.compiler; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"


def test_qat_refuses_an_untrainable_op_with_its_reason():
    node = OP_TYPES["Recurrent"]("rnn", ["x"], ["y"])
    with pytest.raises(Exception, match=r"does not support Recurrent \('rnn'\): recurrent cells"):
        node.qat_forward(None, None)

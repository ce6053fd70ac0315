"""Frontends: every accepted format imports, the IR's float evaluation matches onnxruntime,
and bad files give clear errors."""
from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from edgecompile import metrics
from edgecompile.errors import EdgeCompileError, InputShapeError, UnsupportedOpError
from edgecompile.frontend import load_model
from conftest import randomize_batchnorm, save_torchscript
from models_for_tests import INPUT_SHAPES, ConvBNNet, OddConvNet, WideMLP

MODELS = [ConvBNNet, OddConvNet, WideMLP]


def make(cls, seed=0):
    torch.manual_seed(seed)
    model = cls().eval()
    randomize_batchnorm(model, seed)
    return model


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_ir_float_matches_onnxruntime_and_torch(cls, tmp_path, rng):
    model = make(cls)
    shape = INPUT_SHAPES[cls]
    loaded = load_model(save_torchscript(model, tmp_path / "m.pt"), shape)
    x = rng.standard_normal((16,) + shape).astype(np.float32)
    ort = metrics.onnxruntime_outputs(loaded.onnx_model, x)
    ir = loaded.graph.run_float(x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(ir - ort)) <= 1e-4
    assert np.max(np.abs(ir - ref)) <= 1e-4


@pytest.mark.slow
def test_digits_lenet_matches_onnxruntime(digits_lenet):
    loaded = load_model(digits_lenet["model"], (1, 28, 28))
    x = np.load(digits_lenet["test_x"])[:32]
    assert np.max(np.abs(loaded.graph.run_float(x) - metrics.onnxruntime_outputs(loaded.onnx_model, x))) <= 1e-4


@pytest.mark.slow
def test_torch_export_program_carries_its_input_shape(tmp_path, rng):
    model = make(ConvBNNet)
    program = torch.export.export(model, (torch.zeros(1, 3, 24, 24),))
    path = tmp_path / "m.pt2"
    torch.export.save(program, str(path))
    records = []
    listener = logging.Handler()
    listener.emit = records.append
    logging.getLogger("torch.onnx").addHandler(listener)
    try:
        loaded = load_model(path)  # no input shape given: the program records it
    finally:
        logging.getLogger("torch.onnx").removeHandler(listener)
    assert not [r.getMessage() for r in records if r.levelno >= logging.WARNING]  # the exporter stays quiet
    assert loaded.graph.input.shape == (3, 24, 24)
    x = rng.standard_normal((4, 3, 24, 24)).astype(np.float32)
    with torch.no_grad():
        assert np.max(np.abs(loaded.graph.run_float(x) - model(torch.from_numpy(x)).numpy())) <= 1e-4


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("name", ["dscnn", "mobilenetv2", "mobilenetv3_block", "shufflenet"])
@pytest.mark.slow
def test_torch_export_programs_of_the_zoo_load_and_match_torch(name, dynamo, tmp_path, rng):
    """Bias-free convolutions, ReLU6, h-swish and shuffles as torch.export writes them, through
    both exporters: the TorchScript one that load_model tries first, and the dynamo one it falls
    back to (which casts a zero bias like the input: a CastLike the importer turns into a constant)."""
    import cnn_zoo
    from edgecompile.frontend import import_onnx, torch_frontend

    model, shape = cnn_zoo.build(name)
    path = tmp_path / f"{name}.pt2"
    torch.export.save(torch.export.export(model.eval(), (torch.zeros((1,) + shape),)), str(path))
    if dynamo:
        program = torch.export.load(str(path))
        graph = import_onnx(torch_frontend.to_onnx(program, "export", shape, path, dynamo=True), path, shape)
    else:
        graph = load_model(path).graph
    x = rng.standard_normal((2,) + shape).astype(np.float32)
    with torch.no_grad():
        assert np.max(np.abs(graph.run_float(x) - model(torch.from_numpy(x)).numpy())) <= 1e-4


class _PoolReshapeLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.rnn = torch.nn.LSTM(12, 8, batch_first=True)  # its ONNX export is several nodes of one op
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)  # (N, 4, 3, 3)
        y, _ = self.rnn(y.reshape(x.shape[0], 3, 12))
        return self.fc(y[:, -1])


@pytest.mark.slow
def test_torch_export_layers_are_named_after_the_program(tmp_path, rng):
    """The layers of a .pt2 take the names of the program's nodes (what the user's code called),
    unique even where one op of the program becomes several ONNX nodes."""
    model = _PoolReshapeLSTM().eval()
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 8, 8),)), str(path))
    loaded = load_model(path)
    assert loaded.kind == "export"
    names = [n.name for n in loaded.graph.nodes]
    assert {"conv", "max_pool2d", "reshape", "fc"} <= set(names), names
    onnx_names = [n.name for n in loaded.onnx_model.graph.node]
    assert len(set(onnx_names)) == len(onnx_names)
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        assert np.max(np.abs(loaded.graph.run_float(x) - model(torch.from_numpy(x)).numpy())) <= 1e-4


def test_cast_of_an_activation_to_an_integer_type_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [1, 4])
    node = helper.make_node("Cast", ["x"], ["y"], name="to_int", to=TensorProto.INT32)
    path = tmp_path / "cast.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(EdgeCompileError, match="to_int.*INT32"):
        load_model(path)


def test_onnx_file_with_its_own_shape(tmp_path, rng):
    model = make(OddConvNet)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.zeros(1, 2, 15, 6),), str(path), dynamo=False, do_constant_folding=False)
    loaded = load_model(path)
    assert loaded.graph.input.shape == (2, 15, 6)
    x = rng.standard_normal((3, 2, 15, 6)).astype(np.float32)
    with torch.no_grad():
        assert np.max(np.abs(loaded.graph.run_float(x) - model(torch.from_numpy(x)).numpy())) <= 1e-4


def test_onnx_matmul_add_becomes_linear_with_bias(tmp_path, rng):
    w = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["y"])],
        "mm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("B", TensorProto.FLOAT, b.shape, b.ravel())])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    loaded = load_model(path)
    assert [n.op_type for n in loaded.graph.nodes] == ["Linear"]
    x = rng.standard_normal((5, 6)).astype(np.float32)
    assert np.allclose(loaded.graph.run_float(x), x @ w + b, atol=1e-5)



@pytest.mark.parametrize("attr, value, expected", [
    ("value", helper.make_tensor("v", TensorProto.FLOAT, [4], [1.5, -2.0, 0.25, 3.0]), [1.5, -2.0, 0.25, 3.0]),
    ("value_floats", [1.5, -2.0, 0.25, 3.0], [1.5, -2.0, 0.25, 3.0]),
    ("value_ints", [2, -1, 0, 5], [2, -1, 0, 5]),
])
def test_constant_nodes_fold_to_their_values(attr, value, expected, tmp_path, rng):
    """Constant nodes (every PyTorch export has some) are read from their attribute, whatever its
    kind, into the same values onnx's reference evaluator gives: here the weight of a MatMul."""
    w = rng.standard_normal((6, 4)).astype(np.float32)
    const = helper.make_node("Constant", [], ["b"], **{attr: value})
    cast = helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT)
    graph = helper.make_graph(
        [const, cast, helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "bf"], ["y"])],
        "c", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel())])
    path = tmp_path / "c.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = rng.standard_normal((5, 6)).astype(np.float32)
    assert np.allclose(load_model(path).graph.run_float(x), x @ w + np.float32(expected), atol=1e-5)

# -- bad input ----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(EdgeCompileError, match="no such file"):
        load_model(tmp_path / "nope.pt", (1, 28, 28))


def test_corrupt_files(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"this is not a model")
    with pytest.raises(EdgeCompileError, match="not a PyTorch file"):
        load_model(tmp_path / "bad.pt", (1, 28, 28))
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x01garbage\xff\xff")
    with pytest.raises(EdgeCompileError, match="ONNX"):
        load_model(tmp_path / "bad.onnx")


def test_state_dict_is_refused_with_advice(tmp_path):
    torch.save(make(WideMLP).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(EdgeCompileError, match="state_dict.*torch.jit"):
        load_model(tmp_path / "sd.pt", (64,))


def test_pickled_module_needs_explicit_trust(tmp_path, rng):
    torch.save(make(WideMLP), tmp_path / "whole.pt")
    with pytest.raises(EdgeCompileError, match="--trust-pickle"):
        load_model(tmp_path / "whole.pt", (64,))
    loaded = load_model(tmp_path / "whole.pt", (64,), trust_pickle=True, imports=("models_for_tests",))
    x = rng.standard_normal((2, 64)).astype(np.float32)
    assert loaded.graph.run_float(x).shape == (2, 30)


def test_pickle_saved_from_main_found_through_import(tmp_path):
    """A class pickled as __main__.X is looked up in the --import module."""
    import models_for_tests

    model = make(WideMLP)
    original = WideMLP.__module__
    try:
        WideMLP.__module__ = "__main__"
        import __main__
        setattr(__main__, "WideMLP", WideMLP)
        torch.save(model, tmp_path / "main.pt")
    finally:
        WideMLP.__module__ = original
        delattr(__main__, "WideMLP")
    with pytest.raises(EdgeCompileError, match="--import"):
        load_model(tmp_path / "main.pt", (64,), trust_pickle=True)
    loaded = load_model(tmp_path / "main.pt", (64,), trust_pickle=True, imports=(models_for_tests.__file__,))
    assert loaded.graph.output.shape == (30,)


def test_unsupported_op_names_op_node_and_supported_list(tmp_path):
    from models_for_tests import WithUnsupported

    path = save_torchscript(make(WithUnsupported), tmp_path / "floor.pt")
    with pytest.raises(UnsupportedOpError) as info:
        load_model(path, (8,))
    text = str(info.value)
    assert "Floor" in text and "Supported ONNX ops" in text and "Conv" in text and str(path) in text


def test_missing_input_shape_is_explained(tmp_path):
    path = save_torchscript(make(WideMLP), tmp_path / "m.pt")
    with pytest.raises(EdgeCompileError, match="--input-shape"):
        load_model(path)


def test_wrong_input_shape_is_explained(tmp_path):
    path = save_torchscript(make(WideMLP), tmp_path / "m.pt")
    with pytest.raises(InputShapeError, match=r"shape \(65,\).*mat1 and mat2.*--input-shape"):
        load_model(path, (65,))

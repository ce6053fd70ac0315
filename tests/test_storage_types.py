"""The simulator stores codes between layers in their own C type (int8 for an 8-bit tensor,
numerics.storage_dtype): no op may compute in that type.  Every op of the example models, given
inputs that span each input's whole range (both ends included), returns the same integers from
narrow inputs as from int64 ones, and a whole model simulates to the same outputs as before."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgecompile import numerics, simulate
from edgecompile.compiler import CompileOptions, compile_model
from edgecompile.frontend import load_module


def test_storage_dtype_is_the_narrowest_type_that_holds_the_range():
    assert numerics.storage_dtype(-128, 127) is np.int8
    assert numerics.storage_dtype(0, 127) is np.int8
    assert numerics.storage_dtype(-129, 0) is np.int16
    assert numerics.storage_dtype(0, 128) is np.int16
    assert numerics.storage_dtype(-(1 << 15), (1 << 15) - 1) is np.int16
    assert numerics.storage_dtype(0, 1 << 15) is np.int32
    assert numerics.storage_dtype(numerics.ACC_MIN, numerics.ACC_MAX) is np.int32
    assert numerics.storage_dtype(0, 1 << 31) is np.int64


def test_requantize_float_writes_the_clamps_type_and_the_same_integers(rng):
    acc = rng.integers(-(1 << 20), 1 << 20, size=(4, 3, 5)).astype(np.float32)
    acc[0, :, 0], acc[0, :, 1] = -(1 << 20), (1 << 20) - 1  # saturates at both ends
    bias, shifts = np.array([7, -900, 0]), np.array([9, 4, 0])
    shifted = np.stack([numerics.rounding_shift(acc[:, c].astype(np.int64) + bias[c], s)
                        for c, s in enumerate(shifts)], axis=1)  # rule 2, in int64
    for lo, hi, dtype in ((-128, 127, np.int8), (0, 127, np.int8), (-32768, 32767, np.int16)):
        y = numerics.requantize_float(acc.copy(), bias, shifts, lo, hi, axis=1)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, numerics.saturate(shifted, lo, hi))
        assert y.min() == lo and y.max() == hi


class Cells(torch.nn.Module):
    """A GRU and an LSTM (tables, products, lerps, gated gates) and a head."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(6, 10, batch_first=True)
        self.lstm = torch.nn.LSTM(10, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        y, _ = self.gru(x)
        y, _ = self.lstm(y)
        return self.fc(y[:, -1])


def zoo_models():
    import cnn_zoo

    for name in ("mobilenetv3_block", "shufflenet", "squeezenet", "dscnn"):
        yield name, *cnn_zoo.build(name)
    torch.manual_seed(0)
    yield "cells", Cells(), (5, 6)


def full_range_inputs(rng, graph, node, n: int) -> list[np.ndarray]:
    """Random codes over each input's whole range, its two ends in the first two samples."""
    xs = []
    for t in node.inputs:
        lo, hi = numerics.qrange(graph.tensors[t].bits)
        x = rng.integers(lo, hi + 1, size=(n,) + graph.shape(t), dtype=np.int64)
        x[0], x[1] = lo, hi
        xs.append(x)
    return xs


@pytest.mark.parametrize("name, model, shape", list(zoo_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_op_gives_the_same_integers_from_narrow_inputs(name, model, shape, rng):
    calib = rng.standard_normal((16,) + tuple(shape)).astype(np.float32)
    graph = compile_model(load_module(model, shape, name), calib, CompileOptions(
        format_search=False, weight_rounding="nearest", equalize="off")).graph
    for node in graph.nodes:
        wide = full_range_inputs(rng, graph, node, 6)
        narrow = [x.astype(numerics.storage_dtype(*numerics.qrange(graph.tensors[t].bits)))
                  for x, t in zip(wide, node.inputs)]
        expected = node.run_int(graph, *wide)
        np.testing.assert_array_equal(node.run_int(graph, *narrow), expected, err_msg=f"{name}: {node}")
    x_q = simulate.quantize_input(graph, calib)
    env = graph.evaluate_int(graph.split_inputs(x_q))
    for t in graph.outputs:
        assert env[t].dtype == np.int64  # what callers of the simulator's outputs get
    inner = [n.outputs[0] for n in graph.nodes if n.outputs[0] not in graph.outputs]
    assert any(env[t].dtype != np.int64 for t in inner)

"""The generated C API: what NAME.h declares and how the runner calls it.

A model input or output is one array in the caller's memory: `input`/`output` for a model
with one of that kind, numbered `input0`, `input1`, ... for a kind it has several of, each with
its NAME_<PARAM>_SIZE and NAME_<PARAM>_FRAC_BITS macros (an output also NAME_<PARAM>_ZERO_POINT: its
real value is (q - zero point) * 2^-frac bits) and float helper.  Inputs are int8_t; an output
is int8_t or, as --output-bits says (passes/quantize.py output_width), int16_t.  The arena is
static inside NAME.c, or with --arena extern the caller's, passed as NAME_run's last argument.

With --streaming (streaming.py) NAME.h also declares NAME_reset() and NAME_step(frame, output),
one new frame (NAME_STREAM_FRAME_SIZE int8 values: a row of the (C, H, W) input along H, in (C, W)
order, or one step of a (T, D) sequence) per call, the output in NAME_run's type, and with an
extern arena both take it as their last argument; the state kept between calls is a static
block of NAME_STREAM_STATE_SIZE bytes (export.stream_context gives the templates their view).

The runner writes each sample's outputs one after the other in their C types, little-endian
(outputs.bin; the export's vectors/expected.bin is the same record): output_record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .arena import ALIGN as ARENA_ALIGN
from .errors import EdgeCompileError
from .ir import Graph

ARENA_MODES = ("static", "extern")


@dataclass
class CallerTensor:
    """A model input or output as the C API shows it: a parameter of NAME_run and its macros."""
    tensor: str  # the graph's name for it
    param: str  # input / output, or input0, input1, ... when the model has several
    size: int
    frac_bits: int
    shape: tuple[int, ...]
    zero_point: int = 0  # an output's code of real zero (numerics.py); 0 for inputs and most outputs
    bits: int = 8  # int8_t or int16_t

    @property
    def ctype(self) -> str:
        return c_type(self.bits)

    @property
    def macro(self) -> str:
        """The macro infix: NAME_<macro>_SIZE, NAME_<macro>_FRAC_BITS, NAME_<macro>_ZERO_POINT."""
        return self.param.upper()


def io_parameters(graph: Graph) -> dict[str, str]:
    """C parameter names: `input` and `output` for a model with one of each (the API of single-tensor
    models), numbered input0, input1, ... for the kind the model has several of."""
    names = {}
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for i, t in enumerate(tensors):
            names[t] = kind if len(tensors) == 1 else f"{kind}{i}"
    return names


def caller_tensors(graph: Graph, kind: str) -> list[CallerTensor]:
    """The model's inputs (kind "input") or outputs, in the order NAME_run takes them."""
    names = io_parameters(graph)
    tensors = graph.inputs if kind == "input" else graph.outputs
    return [CallerTensor(t, names[t], graph.tensors[t].size, graph.tensors[t].frac_bits, graph.tensors[t].shape,
                         int(graph.tensors[t].zero_point), graph.tensors[t].bits) for t in tensors]


def c_type(bits: int) -> str:
    return {8: "int8_t", 16: "int16_t"}[bits]


def file_dtype(bits: int) -> np.dtype:
    """How an int8_t or int16_t value is stored in the vector and output files: little-endian."""
    return np.dtype({8: "<i1", 16: "<i2"}[bits])


def output_record(graph: Graph) -> np.dtype:
    """One sample's outputs as the runner writes them: each output's values in its C type."""
    return np.dtype([(t.param, file_dtype(t.bits), (t.size,)) for t in caller_tensors(graph, "output")])


def read_outputs(graph: Graph, raw: np.ndarray | bytes, what: str) -> np.ndarray:
    """Output records (bytes) -> (samples, output_size) int64, the outputs side by side."""
    record = output_record(graph)
    data = np.frombuffer(bytes(raw), dtype=np.uint8)
    if data.size % record.itemsize:
        raise EdgeCompileError(f"{what}: {data.size} bytes is not a whole number of {record.itemsize}-byte "
                               f"output records")
    rows = data.view(record)
    return np.concatenate([rows[f].astype(np.int64).reshape(len(rows), -1) for f in record.names], axis=1)


def output_bytes(graph: Graph, values: np.ndarray) -> bytes:
    """(samples, output_size) integers -> the runner's output records (the inverse of read_outputs)."""
    record = output_record(graph)
    values = np.asarray(values).reshape(len(values), -1)
    rows = np.zeros(len(values), dtype=record)
    start = 0
    for f in record.names:
        size = record[f].shape[0]
        rows[f] = values[:, start:start + size]
        start += size
    return rows.tobytes()


def comment_safe(text: str) -> str:
    """A model's tensor name inside a C comment: printable ASCII, and no comment end."""
    return re.sub(r"[^ -~]", "?", text).replace("*/", "*_/").replace("/*", "/_*")


def input_layout(graph: Graph, tensor: str) -> str:
    """How a C input is ordered: PyTorch's (C,H,W), or the model's own layout when it starts
    by transposing its input (TensorFlow-converted models take NHWC)."""
    from .ops import Transpose

    users = graph.consumers(tensor)
    rank = len(graph.shape(tensor))
    if users and all(isinstance(u, Transpose) for u in users) and rank == 3:
        return "the model's own NHWC layout: H,W,C; the model transposes it to C,H,W itself"
    return {3: "C,H,W", 1: "features"}.get(rank, "row-major")


def pow2_literal(e: int) -> str:
    """2^e as an exact C float literal (hex float is C99)."""
    return f"0x1p{e:+d}f"


def runner_args(upper: str, inputs: list[dict], outputs: list[dict], extern: bool) -> str:
    """The runner's call: each input at its offset in the concatenated sample buffer ec_in, each
    output its own ec_out_<param> array (outputs may differ in type)."""
    ins = ["ec_in"] + ["ec_in + " + " + ".join(f"{upper}_{t['macro']}_SIZE" for t in inputs[:k])
                       for k in range(1, len(inputs))]
    outs = [f"ec_out_{t['param']}" for t in outputs]
    return ", ".join(ins + outs + (["ec_arena_buffer.bytes"] if extern else []))


def api_context(graph: Graph, code: str, arena: str) -> dict:
    """The templates' view of the API; `code` is the body of NAME_run (to find unused parameters)."""
    upper = graph.name.upper()

    def describe(t: CallerTensor) -> dict:
        return dict(vars(t), macro=t.macro, ctype=t.ctype, shape_text="x".join(map(str, t.shape)),
                    label=comment_safe(t.tensor))

    inputs = [dict(describe(t), layout=input_layout(graph, t.tensor), scale_literal=pow2_literal(t.frac_bits))
              for t in caller_tensors(graph, "input")]
    outputs = [dict(describe(t), step_literal=pow2_literal(-t.frac_bits)) for t in caller_tensors(graph, "output")]
    extern = arena == "extern"
    params = [f"const int8_t *{t['param']}" for t in inputs] + [f"{t['ctype']} *{t['param']}" for t in outputs]

    def arrays(tensors: list[dict]) -> str:
        return ", ".join(f"{t['param']}[{upper}_{t['macro']}_SIZE]" for t in tensors)

    return {
        "inputs": inputs, "outputs": outputs, "arena_mode": arena, "arena_align": ARENA_ALIGN,
        "run_params": ", ".join(params + (["void *arena"] if extern else [])),
        "run_doc": f"{arrays(inputs)} -> {arrays(outputs)}" + (f", in arena[{upper}_ARENA_SIZE]" if extern else ""),
        "runner_args": runner_args(upper, inputs, outputs, extern),
        "unused_params": [t["param"] for t in inputs + outputs if not re.search(rf"\b{t['param']}\b", code)],
        "uses_arena": "ec_arena" in code,
    }

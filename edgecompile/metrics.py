"""Accuracy figures: float oracle (onnxruntime), top-1 agreement, SQNR."""
from __future__ import annotations

import numpy as np
import onnx

from . import simulate
from .errors import EdgeCompileError
from .ir import Graph


def onnxruntime_outputs(model: onnx.ModelProto, x: np.ndarray, graph: Graph | None = None,
                        source=None) -> np.ndarray:
    """The float oracle: run the ONNX model with onnxruntime, one sample at a time
    when the model fixes its batch size.  With several inputs or outputs, `graph` (the imported
    IR, whose inputs and outputs carry the ONNX names) splits and joins them (see Graph)."""
    try:
        return _onnxruntime_outputs(model, x, graph)
    except EdgeCompileError:
        raise
    except Exception as exc:  # onnxruntime refuses the file (e.g. it infers other shapes than its exporter)
        where = f"{source}: " if source is not None else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeCompileError(f"{where}onnxruntime, the float reference every export is checked against, "
                               f"cannot run this model: {first}. Re-export the model (another opset or "
                               f"exporter) or save it as .pt2") from None


def _onnxruntime_outputs(model: onnx.ModelProto, x: np.ndarray, graph: Graph | None) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.asarray(x, dtype=np.float32)
    if graph is None or (len(graph.inputs) == 1 and len(graph.outputs) == 1):
        feeds = {session.get_inputs()[0].name: x}
    else:
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in graph.split_inputs(x).items()}

    def run(feed: dict) -> np.ndarray:
        outs = session.run(None, feed)
        return outs[0] if graph is None or len(graph.outputs) == 1 else graph.join_outputs(dict(zip(graph.outputs, outs)))

    batch_dim = session.get_inputs()[0].shape[0]
    if isinstance(batch_dim, int) and batch_dim == 1:
        return np.concatenate([run({k: v[i:i + 1] for k, v in feeds.items()}) for i in range(len(x))])
    return run(feeds)


def float_reference(loaded, x: np.ndarray, graph: Graph | None = None) -> np.ndarray | None:
    """The float oracle's outputs: onnxruntime, or for models with edgecompile's own ONNX ops
    (edgecompile.nn recurrent cells, which onnxruntime cannot run) the PyTorch model itself
    when it is at hand; None when neither can run (then the IR's float evaluation is the reference)."""
    if not any(n.domain == "edgecompile" for n in loaded.onnx_model.graph.node):
        return onnxruntime_outputs(loaded.onnx_model, x, graph, loaded.source)
    if loaded.torch_model is not None and (graph is None or len(graph.inputs) == len(graph.outputs) == 1):
        import torch

        with torch.no_grad():
            return loaded.torch_model(torch.from_numpy(np.asarray(x, np.float32))).numpy()
    return None


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    ref = np.asarray(reference, dtype=np.float64)
    noise = np.sum((ref - np.asarray(approx, dtype=np.float64)) ** 2)
    signal = np.sum(ref ** 2)
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return float(10 * np.log10(signal / noise))


def top1_agreement(reference: np.ndarray, approx: np.ndarray) -> float | None:
    """Share of samples whose argmax agrees; None when the output is not a score vector."""
    ref = np.asarray(reference).reshape(len(reference), -1)
    if ref.shape[1] < 2:
        return None
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(np.asarray(approx).reshape(len(ref), -1), axis=1)))


def per_tensor_sqnr(graph: Graph, x: np.ndarray) -> dict[str, float]:
    """SQNR of every node output of the integer model against the float graph."""
    float_env = graph.run_float(x, keep_all=True)
    int_env = simulate.run_integer(graph, simulate.quantize_input(graph, x), keep_all=True)
    return {n.outputs[0]: sqnr_db(float_env[n.outputs[0]], simulate.dequantize(graph, n.outputs[0],
                                                                                int_env[n.outputs[0]]))
            for n in graph.nodes}

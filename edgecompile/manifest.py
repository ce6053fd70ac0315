"""The machine-readable quantized graph an exported project carries.

manifest.json describes tensors (shape, frac bits) and nodes (op type,
attributes, integer attributes); weights.npz holds the integer parameters.
`edgecompile verify` and the simulator read these, so a project can be
checked without the original model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import ops
from .errors import EdgeCompileError
from .ir import Graph, TensorInfo

FORMAT_VERSION = 1


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _graph_doc(graph: Graph, arrays: dict, prefix: str) -> dict:
    """The JSON of a graph; integer parameters go into `arrays` under keys starting with prefix.
    A node with a body (a recurrent cell) carries its body graph nested the same way."""
    nodes = []
    for i, node in enumerate(graph.nodes):
        keys = {}
        for k, v in node.qparams.items():
            key = f"{prefix}n{i}.{k}"
            arrays[key] = np.asarray(v)
            keys[k] = key
        doc = {"op": node.op_type, "name": node.name, "inputs": node.inputs, "outputs": node.outputs,
               "attrs": _jsonable(node.attrs), "qattrs": _jsonable(node.qattrs), "qparams": keys}
        if getattr(node, "body", None) is not None:
            doc["body"] = _graph_doc(node.body, arrays, f"{prefix}n{i}.body.")
        nodes.append(doc)
    return {"name": graph.name, "inputs": graph.inputs, "outputs": graph.outputs,
            "tensors": {n: {"shape": list(t.shape), "frac_bits": t.frac_bits, "bits": t.bits,
                            **({"zero_point": t.zero_point} if t.zero_point else {})}
                        for n, t in graph.tensors.items()},
            "nodes": nodes}


def write_manifest(graph: Graph, out_dir: Path, extra: dict) -> None:
    arrays: dict[str, np.ndarray] = {}
    doc = {"format": "edgecompile-manifest", "version": FORMAT_VERSION, **_graph_doc(graph, arrays, ""),
           **_jsonable(extra)}
    (out_dir / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n")
    np.savez_compressed(out_dir / "weights.npz", **arrays)


def _graph_from_doc(doc: dict, weights, path: Path) -> Graph:
    graph = Graph(doc["name"])
    graph.inputs, graph.outputs = doc["inputs"], doc["outputs"]
    for name, t in doc["tensors"].items():
        graph.tensors[name] = TensorInfo(name, tuple(t["shape"]), t["frac_bits"], t["bits"], t.get("zero_point", 0))
    for n in doc["nodes"]:
        if n["op"] not in ops.OP_TYPES:
            raise EdgeCompileError(f"{path}: node '{n['name']}' has unknown op '{n['op']}'")
        cls = ops.op_class(n["op"])
        node = cls(n["name"], n["inputs"], n["outputs"], attrs=n["attrs"], qattrs=n["qattrs"],
                   qparams={k: weights[key] for k, key in n["qparams"].items()})
        if "body" in n:
            node.body = _graph_from_doc(n["body"], weights, path)
        graph.add_node(node)
    return graph


def read_manifest(out_dir: Path) -> tuple[Graph, dict]:
    path = Path(out_dir) / "manifest.json"
    try:
        doc = json.loads(path.read_text())
        weights = np.load(Path(out_dir) / "weights.npz")
    except FileNotFoundError as exc:
        raise EdgeCompileError(f"{out_dir}: not an edgecompile project ({exc.filename} is missing); "
                               "create one with `edgecompile export`") from None
    except (json.JSONDecodeError, ValueError, OSError) as exc:
        raise EdgeCompileError(f"{path}: unreadable manifest ({exc}); re-run `edgecompile export`") from None
    if doc.get("format") != "edgecompile-manifest" or doc.get("version") != FORMAT_VERSION:
        raise EdgeCompileError(f"{path}: not a version-{FORMAT_VERSION} edgecompile manifest; re-export")
    return _graph_from_doc(doc, weights, path), doc

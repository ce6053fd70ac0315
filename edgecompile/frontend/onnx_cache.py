"""The ONNX conversions of PyTorch files, kept between runs.

Loading a torch.export program costs a new process about 4 s before any compiling (torch.export.load
imports much of torch, then the model is traced to ONNX); people export the same model many times
(other --bits, --rank, a board), so the conversion is kept, and a repeat export reads it in ~10 ms.

An entry is found by a digest of everything the conversion depends on: the file's bytes, the input
shape asked for, the PyTorch, ONNX and edgecompile versions and the source of torch_frontend.py (the
conversion itself).  Any change misses and converts afresh; an unreadable entry is converted afresh
and replaced.  Only TorchScript archives and .pt2 programs are kept, not pickles (their loading
asks for --trust-pickle every time), nor models with edgecompile's own ONNX ops (recurrent cells:
the float oracle runs the PyTorch model itself, which a kept entry does not have).

The entries live in $EDGECOMPILE_CACHE_DIR, else $XDG_CACHE_HOME/edgecompile, else
~/.cache/edgecompile; EDGECOMPILE_CACHE=off turns keeping and reading them off.  The newest
MAX_ENTRIES are kept.  A cache that cannot be written is skipped, never an error.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from .. import __version__

MAX_ENTRIES = 32
CONVERTER = Path(__file__).with_name("torch_frontend.py")  # the conversion's code: part of every key
FORMAT = 1  # of an entry's files; a new layout changes it


def enabled() -> bool:
    return os.environ.get("EDGECOMPILE_CACHE", "on").lower() not in ("off", "0", "no", "false")


def cache_dir() -> Path:
    if os.environ.get("EDGECOMPILE_CACHE_DIR"):
        return Path(os.environ["EDGECOMPILE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecompile"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def entry_key(path: Path, input_shape) -> str:
    """The digest that names the entry of `path` converted for `input_shape` (None: the shape
    the file records)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(CONVERTER.read_bytes())
    h.update(json.dumps([FORMAT, __version__, _version("torch"), _version("onnx"), input_shape],
                        default=int).encode())  # (numpy integers in a shape)
    return h.hexdigest()[:40]


def key_for(path: Path, input_shape) -> str | None:
    """entry_key of `path` for `input_shape`, or None when the cache is off or the file cannot be
    read (then nothing is looked up or kept)."""
    if not enabled():
        return None
    try:
        return entry_key(path, input_shape)
    except OSError:
        return None


def lookup(key: str | None) -> tuple[onnx.ModelProto, tuple, str] | None:
    """The kept (ONNX model, input shape it was converted for, kind) named `key` (key_for), or None."""
    if key is None:
        return None
    folder = cache_dir() / "onnx"
    try:
        about = json.loads((folder / f"{key}.json").read_text())
        model = onnx.load(str(folder / f"{key}.onnx"))
        shape = tuple(tuple(s) for s in about["shape"]) if about["several"] else tuple(about["shape"])
        kind = about["kind"]
        os.utime(folder / f"{key}.json")  # recently used: pruned last
    except (OSError, ValueError, KeyError, TypeError, DecodeError):  # none kept, or not whole: convert
        return None
    return model, shape, kind


def store(key: str | None, path: Path, model: onnx.ModelProto, shape: tuple, kind: str) -> None:
    """Keep the conversion of `path` (converted for `shape`) as entry `key` (key_for), unless it
    holds edgecompile's own ops; written whole or not at all (renamed into place)."""
    if key is None or kind not in ("export", "torchscript") or \
            any(n.domain == "edgecompile" for n in model.graph.node):
        return
    folder = cache_dir() / "onnx"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        several = bool(shape) and isinstance(shape[0], tuple)
        for suffix, data in ((".onnx", model.SerializeToString()),
                             (".json", json.dumps({"source": str(path), "kind": kind, "several": several,
                                                   "shape": [list(s) for s in shape] if several else list(shape)
                                                   }).encode())):
            _write_whole(folder / f"{key}{suffix}", data)
        prune(folder)
    except OSError:
        return


def _write_whole(target: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(name, target)
    except OSError:
        Path(name).unlink(missing_ok=True)
        raise


def prune(folder: Path) -> None:
    """Keep the MAX_ENTRIES most recently used entries."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        for suffix in (".json", ".onnx"):
            old.with_suffix(suffix).unlink(missing_ok=True)

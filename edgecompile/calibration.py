"""Reading calibration/input data files (.npy, .npz, .pt) and checking them against the model."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import EdgeCompileError

NPZ_KEYS = ("x", "inputs", "calib", "data", "arr_0")


def load_array(path: str | Path, what: str = "calibration data") -> np.ndarray:
    """A float32 array from .npy, .npz (keys x/inputs/calib/data or the only array) or .pt (a tensor)."""
    path = Path(path)
    if not path.is_file():
        raise EdgeCompileError(f"{path}: no such file ({what})")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = [k for k in NPZ_KEYS if k in z.files] or (z.files if len(z.files) == 1 else [])
                if not keys:
                    raise EdgeCompileError(f"{path}: which array is the {what}? Name it one of {NPZ_KEYS} "
                                           f"(found {z.files})")
                arr = z[keys[0]]
        elif suffix in (".pt", ".pth"):
            import torch

            obj = torch.load(str(path), map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                obj = next((obj[k] for k in NPZ_KEYS if k in obj), obj)
            if not isinstance(obj, torch.Tensor):
                raise EdgeCompileError(f"{path}: expected a tensor of {what}, found {type(obj).__name__}")
            arr = obj.detach().cpu().numpy()
        else:
            raise EdgeCompileError(f"{path}: unknown {what} format '{suffix}'; use .npy, .npz or .pt")
    except EdgeCompileError:
        raise
    except Exception as exc:
        raise EdgeCompileError(f"{path}: cannot read {what} ({type(exc).__name__}: {exc})") from None
    return _checked(arr, path, what)


def _checked(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Float, non-empty, finite: as float32."""
    if not np.issubdtype(arr.dtype, np.floating):
        raise EdgeCompileError(f"{path}: {what} must be floating point (the model's preprocessed float inputs); "
                               f"got dtype {arr.dtype}")
    if arr.size == 0:
        raise EdgeCompileError(f"{path}: {what} holds no values (shape {arr.shape}); give at least one sample")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise EdgeCompileError(f"{path}: {what} contains {bad} NaN/Inf values; clean the data first")
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_arrays(path: str | Path, what: str = "calibration data") -> dict[str, np.ndarray]:
    """Every array of an .npz by name, in the file's order; any other file: its one array under ""."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return {"": load_array(path, what)}
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise EdgeCompileError(f"{path}: cannot read {what} ({type(exc).__name__}: {exc})") from None
    return {k: _checked(a, path, f"{what} '{k}'") for k, a in arrays.items()}


def load_inputs(path: str | Path, graph, what: str = "calibration data") -> np.ndarray:
    """A batch of model inputs from a file (see Graph for the layout with several inputs).

    A model with several inputs takes an .npz with one array per input, named like the input, or
    else taken in the file's order; or one array of the inputs flattened and concatenated."""
    if len(graph.inputs) == 1:
        return match_shape(load_array(path, what), graph.input.shape, str(path), what)
    return match_inputs(load_arrays(path, what), graph, str(path), what)


def match_inputs(arrays: dict[str, np.ndarray], graph, source: str, what: str = "calibration data") -> np.ndarray:
    """One array per model input (by name, else in order) -> the (N, total) batch."""
    if len(arrays) == 1:
        return match_shape(next(iter(arrays.values())), (graph.sample_size,), source, what)
    if all(name in arrays for name in graph.inputs):
        keys = list(graph.inputs)
    elif len(arrays) == len(graph.inputs):
        keys = list(arrays)
    else:
        raise EdgeCompileError(f"{source}: {what} has arrays {', '.join(arrays)}; the model has "
                               f"{len(graph.inputs)} inputs ({', '.join(graph.inputs)}): give one array per input, "
                               "named like it or in the same order")
    parts = [match_shape(arrays[k], graph.tensors[name].shape, f"{source} ['{k}']", what)
             for k, name in zip(keys, graph.inputs)]
    if len({len(p) for p in parts}) != 1:
        raise EdgeCompileError(f"{source}: {what} has {', '.join(str(len(p)) for p in parts)} samples for the "
                               f"inputs {', '.join(keys)}; every input needs the same number")
    return np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)


def match_shape(arr: np.ndarray, shape: tuple[int, ...], source: str, what: str = "calibration data") -> np.ndarray:
    """(N, *shape) or one sample of `shape` -> (N, *shape); a clear error otherwise."""
    shape = tuple(shape)
    if arr.size == 0:
        raise EdgeCompileError(f"{source}: {what} holds no values (shape {arr.shape}); give at least one sample")
    if arr.shape[1:] == shape:
        return arr
    if arr.shape == shape:
        return arr[None]
    if arr.ndim >= 1 and arr.shape[1:] and int(np.prod(arr.shape[1:])) == int(np.prod(shape)) and arr.ndim == 2:
        return arr.reshape((arr.shape[0],) + shape)  # flat vectors of the right size
    raise EdgeCompileError(f"{source}: {what} has shape {arr.shape}; the model's input is {shape} per sample, "
                           f"so expected (N, {', '.join(str(d) for d in shape)})")


def load_labels(path: str | Path, n: int) -> np.ndarray:
    """n integer class labels from a .npy file (explore's and fit's --labels)."""
    try:
        y = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise EdgeCompileError(f"{path}: cannot read labels ({exc})") from None
    y = np.asarray(y).reshape(-1)
    if len(y) != n or not np.issubdtype(y.dtype, np.integer):
        raise EdgeCompileError(f"{path}: expected {n} integer class labels, got {len(y)} of dtype {y.dtype}")
    return y


def synthetic_inputs(shape: tuple[int, ...], count: int = 256, seed: int = 0) -> np.ndarray:
    """Stand-in calibration data when none is given: standard normal inputs (see README)."""
    return np.random.default_rng(seed).standard_normal((count,) + tuple(shape)).astype(np.float32)

"""`edgecompile export`: model file -> a self-contained C project directory.

The project is written to a temporary directory next to the destination and
moved into place only when complete, so a failed export never leaves a
half-written project that looks good.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, metrics, simulate
from .calibration import NPZ_KEYS, load_arrays, load_inputs, match_inputs, match_shape
from .c_api import ARENA_MODES, api_context, caller_tensors, file_dtype, io_parameters, output_bytes
from .codegen import emit_model, template_env
from .streaming import emit_step, plan_streaming, reference_outputs, stream_frames
from .compiler import Compiled, CompileOptions, Log, compile_model
from .passes.cleanup import drop_final_softmax
from .passes.factorize import RankSpec
from .passes.precision import parse_act_bits
from .passes.prune import parse_prune
from .passes.plan_memory import PATCH_BUDGET
from .passes.quantize import parse_bits
from .errors import EdgeCompileError, InputShapeError
from .frontend import load_model
from .ir import c_identifier
from .manifest import write_manifest
from .progress import ProgressFactory, no_progress
from .report import Table, layer_table, markdown_report, totals
from .resources import resource_dir


MAX_VECTORS = 65_536  # test vectors are written to the project and run by every verify


@dataclass
class ExportSettings:
    model: Path
    out_dir: Path
    calib: Path | None = None
    bits: int | str | tuple = 8  # 8, or "8", "fc1=4,conv2=6", or several such items
    rank: str | int | None = None  # "16", "fc1=32,fc2=8" (see RankSpec)
    energy: float | None = None
    factorize_conv1x1: bool = False
    sparse: str = "auto"
    prune: str | tuple = ()  # "fc1=0.5,conv2=0.75" (passes/prune.py)
    drop_softmax: bool = False
    per_channel: bool | None = None
    calib_method: str = "mse"
    weight_method: str = "minmax"
    bias_correction: bool = False
    output_correction: bool = True
    weight_rounding: str = "error-feedback"
    format_search: bool = True
    snap_ranges: bool = True
    unsigned_relu: bool = True
    asymmetric: bool = True
    equalize: str = "auto"
    memory_plan: str = "auto"  # auto | in-place | layer (passes/plan_memory.py)
    patch_budget: float = PATCH_BUDGET  # cost bands may add, a fraction of the model's MACs
    act_bits: int | str | tuple = 8  # 8, 16, "auto", "conv2=16,fc1=16"
    output_bits: int | str = "auto"  # the model outputs: 8, 16, or auto (16 for a few values)
    name: str | None = None
    input_shape: tuple[int, ...] | None = None
    trust_pickle: bool = False
    imports: tuple[str, ...] = ()
    vectors: int = 256
    val: Path | None = None  # held-out inputs to measure integer vs float on (default: the calibration samples)
    arena: str = "static"  # static: inside NAME.c; extern: the caller passes it to NAME_run
    streaming: bool = False  # also NAME_reset/NAME_step: one new frame per call (edgecompile/streaming.py)
    loaded: object = None  # a LoadedModel already in memory (edgecompile.qat): `model` only names it
    param_overrides: dict = field(default_factory=dict)
    fixed_formats: dict | None = None


@dataclass
class ExportResult:
    name: str
    out_dir: Path
    compiled: Compiled
    layers: Table
    summary: dict
    files: list[str] = field(default_factory=list)


def check_destination(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise EdgeCompileError(f"{out_dir}: exists and is not a directory; choose another -o")
        if any(out_dir.iterdir()) and not (out_dir / "manifest.json").is_file():
            raise EdgeCompileError(f"{out_dir}: exists, is not empty and is not an edgecompile project; "
                                   "refusing to overwrite it. Choose another -o or empty it.")


def _taken_names() -> set[str]:
    """File stems the generated project already uses (its runner, the runtime's and the targets'
    sources): a model of the same name would shadow their headers or replace their files."""
    taken = {"runner", "model_test", "vectors"}
    for folder in ("runtime_c", "targets"):
        taken |= {p.stem.lower() for p in resource_dir(folder).rglob("*") if p.suffix in (".c", ".h")}
    return taken


def model_name(settings: ExportSettings) -> str:
    """The C name: --name or the file name, sanitized.  The runtime owns the prefix ec_ and the
    project's own file names; a file name that takes one gets the prefix model_, an explicit
    --name that does is refused."""
    name = c_identifier(settings.name or settings.model.stem, prefix="model").lower()
    if name.startswith("ec_") or name in _taken_names():
        if settings.name:
            raise EdgeCompileError(f"--name {settings.name}: names starting with ec_ and the project's own file "
                                   f"names (runner, the runtime's, the targets') are taken; choose another, "
                                   f"for example --name model_{name}")
        name = f"model_{name}"
    return name


def export(settings: ExportSettings, log: Log = lambda _m: None,
           progress: ProgressFactory = no_progress) -> ExportResult:
    t_start = time.perf_counter()
    check_destination(settings.out_dir)
    if not 1 <= settings.vectors <= MAX_VECTORS:
        raise EdgeCompileError(f"--vectors {settings.vectors}: choose 1 to {MAX_VECTORS:,} test vectors "
                               "(verify runs them all; more do not test the C any better)")
    if settings.arena not in ARENA_MODES:
        raise EdgeCompileError(f"--arena {settings.arena}: choose {' or '.join(ARENA_MODES)}")
    shape = settings.input_shape
    if isinstance(settings.calib, np.ndarray):
        calib = np.asarray(settings.calib, dtype=np.float32)
        arrays = {"": calib}
    else:
        arrays = load_arrays(settings.calib) if settings.calib else None
        calib = None
    if shape is None and arrays and settings.model.suffix.lower() != ".onnx":
        shape = calib_input_shapes(arrays)
    log(f"loading {settings.model}")
    try:
        loaded = (copy.deepcopy(settings.loaded) if settings.loaded is not None
                  else load_model(settings.model, shape, settings.trust_pickle, settings.imports))
    except InputShapeError as exc:
        if settings.input_shape is None and shape is not None:
            sizes = " and ".join(str(a.shape) for a in arrays.values())
            raise EdgeCompileError(f"{settings.calib}: the calibration data has shape {sizes}, so the "
                                   f"input shape was taken as {shape}, which the model does not accept: {exc}") from None
        raise
    graph = loaded.graph
    graph.name = model_name(settings)
    if calib is not None:
        calib = (match_shape(calib, graph.input.shape, _calib_name(settings.calib)) if len(graph.inputs) == 1
                 else match_inputs(arrays, graph, _calib_name(settings.calib)))
    elif settings.calib:
        calib = load_inputs(settings.calib, graph)
    val = None
    if settings.val is not None:  # read before the long compile, so a bad file fails fast
        val = load_inputs(settings.val, graph, "validation inputs")
    log(f"imported {len(graph.nodes)} nodes; input{'s' if len(graph.inputs) > 1 else ''} "
        + ", ".join(str(graph.shape(t)) for t in graph.inputs)
        + ("; the ONNX conversion an earlier run kept (EDGECOMPILE_CACHE=off converts afresh)" if loaded.kept else ""))
    default_bits, layer_bits = parse_bits(settings.bits)
    act_bits, act_layers, act_auto = parse_act_bits(settings.act_bits)
    options = CompileOptions(bits=default_bits, layer_bits=layer_bits,
                             ranks=RankSpec.parse(settings.rank, settings.energy, settings.factorize_conv1x1),
                             sparse=settings.sparse, prune=parse_prune(settings.prune), drop_softmax=settings.drop_softmax,
                             per_channel=settings.per_channel, calib_method=settings.calib_method,
                             weight_method=settings.weight_method, bias_correction=settings.bias_correction,
                             output_correction=settings.output_correction,
                             weight_rounding=settings.weight_rounding, format_search=settings.format_search,
                             snap_ranges=settings.snap_ranges, unsigned_relu=settings.unsigned_relu,
                             asymmetric=settings.asymmetric,
                             equalize=settings.equalize, memory_plan=settings.memory_plan,
                             patch_budget=settings.patch_budget,
                             param_overrides=settings.param_overrides, fixed_formats=settings.fixed_formats,
                             act_bits=act_bits, act_layer_bits=act_layers, act_auto=act_auto,
                             output_bits=settings.output_bits)
    compiled = compile_model(loaded, calib, options, log)
    stream = None
    if settings.streaming:
        log("planning the streaming step")
        stream = plan_streaming(compiled.graph, settings.memory_plan)
    log("measuring accuracy against the float model")
    summary = measure(loaded, compiled, val, settings.val)
    layers = layer_table(compiled.graph, compiled.plan, summary.pop("_layer_sqnr"))
    vec_in = vector_inputs(compiled, settings.vectors)
    vec_out = simulate_vectors(compiled.graph, vec_in, progress)
    summary.update(totals(compiled.graph, compiled.plan))
    if stream is not None:
        summary["streaming"] = stream.summary()
        summary["run_arena_bytes"] = summary["arena_bytes"]
        summary["arena_bytes"] = max(summary["arena_bytes"], stream.plan.arena_size)  # NAME_ARENA_SIZE
    if compiled.format_search is not None:
        r = compiled.format_search
        summary["format_search"] = {"changed": {t: list(v) for t, v in r.changed.items()}, "trials": r.trials,
                                    "validation_sqnr_db": [round(r.sqnr_before_db, 2), round(r.sqnr_after_db, 2)],
                                    "kept": bool(r.changed), "seconds": round(r.seconds, 2)}
    summary["weight_rounding"] = {"method": settings.weight_rounding, "layers_changed": compiled.rounded_layers}
    summary["output_correction"] = [{"layer": c.layer, "gains": [round(float(v), 4) for v in c.gains],
                                     "leave_one_out_gain_db": round(c.loo_gain_db, 2),
                                     "correlation": round(c.correlation, 3)} for c in compiled.output_corrections]
    if compiled.precision is not None:
        p = compiled.precision
        summary["act16"] = {"layers": p.wide_layers, "sqnr_8bit_db": p.sqnr_8bit_db, "sqnr_db": p.sqnr_db,
                            "arena_8bit": p.arena_8bit, "arena": p.arena}
    summary.update({"name": graph.name, "source": str(settings.model), "bits": default_bits, "layer_bits": layer_bits,
                    "rank": settings.rank, "energy": settings.energy, "prune": parse_prune(settings.prune),
                    "vectors": int(len(vec_in)), "edgecompile": __version__,
                    "calibration": "synthetic N(0,1) + BatchNorm statistics" if compiled.calib_is_synthetic
                    else f"{_calib_name(settings.calib)} ({len(compiled.calib)} samples)"})
    log(f"writing {settings.out_dir}")
    files = write_project(settings, compiled, summary, layers, vec_in, vec_out, stream)
    summary["export_seconds"] = round(time.perf_counter() - t_start, 3)
    return ExportResult(graph.name, settings.out_dir, compiled, layers, summary, files)


def calib_input_shapes(arrays: dict[str, np.ndarray]):
    """The input shape(s) calibration data implies for a PyTorch model, which does not record them: one
    array's samples, or for an .npz of several arrays none of which is named like a single input's
    (x, inputs, ...), one shape per array in the file's order (a model with several inputs)."""
    if len(arrays) > 1 and not any(k in NPZ_KEYS for k in arrays):
        return tuple(tuple(a.shape[1:]) for a in arrays.values())
    arr = next((arrays[k] for k in NPZ_KEYS if k in arrays), next(iter(arrays.values())))
    return tuple(arr.shape[1:]) if arr.ndim >= 2 else None


def _calib_name(calib) -> str:
    return "in-memory array" if isinstance(calib, np.ndarray) else str(calib)


def simulate_vectors(graph, vec_in: np.ndarray, progress: ProgressFactory, chunk: int = 64) -> np.ndarray:
    """The simulator's outputs for the test vectors, in chunks so that a long run shows progress."""
    with progress(len(vec_in), f"simulating {len(vec_in)} test vectors") as bar:
        parts = []
        for i in range(0, len(vec_in), chunk):
            parts.append(simulate.run_integer(graph, vec_in[i:i + chunk]).reshape(len(vec_in[i:i + chunk]), -1))
            bar.update(len(parts[-1]))
    return np.concatenate(parts)


MAX_EVAL_SAMPLES = 256  # the float and integer graphs both run on each: enough for SQNR and top-1


def measure(loaded, compiled: Compiled, val: np.ndarray | None = None, val_name=None) -> dict:
    """Float oracle check and float-vs-integer agreement on held-out samples (--val) or else on the
    calibration samples."""
    x = (compiled.calib if val is None else val)[:MAX_EVAL_SAMPLES]
    ir_float = compiled.imported.run_float(x).reshape(len(x), -1)
    reference = metrics.float_reference(loaded, x, compiled.imported)
    reference = ir_float if reference is None else reference.reshape(len(x), -1)
    oracle_err = float(np.max(np.abs(reference - ir_float)))
    if compiled.softmax_dropped:  # the C returns logits: judge it against the float logits
        logits = copy.deepcopy(compiled.imported)
        drop_final_softmax(logits)
        reference = logits.run_float(x).reshape(len(x), -1)
    transformed = compiled.graph.run_float(x).reshape(len(x), -1)
    integer = simulate.run_dequantized(compiled.graph, x).reshape(len(x), -1)
    # a model that ignores its input: the float model's mean output over the calibration samples
    calib = compiled.calib[:MAX_EVAL_SAMPLES]
    constant = np.broadcast_to(compiled.graph.run_float(calib).reshape(len(calib), -1).mean(axis=0), reference.shape)
    # Several outputs side by side are no score vector: no top-1 figure for them.
    agree = metrics.top1_agreement(reference, integer) if len(compiled.graph.outputs) == 1 else None
    return {
        "eval_samples": int(len(x)),
        "eval_data": eval_data(compiled, len(x), val_name, None if val is None else len(val)),
        "eval_held_out": val is not None,
        "oracle_max_abs_err": oracle_err,
        "top1_agreement": agree,
        "output_sqnr_db": metrics.sqnr_db(reference, integer),
        "constant_output_sqnr_db": metrics.sqnr_db(reference, constant),  # what the SQNR is worth
        "constant_output_top1_agreement": (metrics.top1_agreement(reference, constant) if agree is not None
                                           else None),
        # integer vs the float graph it was quantized from: the quantization error alone
        "quantization_sqnr_db": metrics.sqnr_db(transformed, integer),
        "factorized_float_sqnr_db": metrics.sqnr_db(reference, transformed) if compiled.factorization else None,
        "factorized_float_top1_agreement": (metrics.top1_agreement(reference, transformed)
                                            if compiled.factorization else None),
        "_layer_sqnr": metrics.per_tensor_sqnr(compiled.graph, x),
    }


def eval_data(compiled: Compiled, n: int, val_name=None, val_count: int | None = None) -> str:
    """Which samples the integer-vs-float figures were measured on, as the report says it."""
    if compiled.calib_is_synthetic and val_name is None:
        return f"{n} synthetic N(0,1) inputs"
    first = "the" if n == (len(compiled.calib) if val_name is None else val_count) else "the first"
    return f"{first} {n} samples of {val_name} (--val)" if val_name is not None else f"{first} {n} calibration samples"


def vector_inputs(compiled: Compiled, count: int) -> np.ndarray:
    """The first calibration samples, topped up with random int8 inputs when there are too few."""
    q = simulate.quantize_input(compiled.graph, compiled.calib[:count])
    if len(q) < count:
        rng = np.random.default_rng(1)
        extra = rng.integers(-128, 128, size=(count - len(q),) + q.shape[1:], dtype=np.int64)
        q = np.concatenate([q, extra.astype(np.int8)])
    return q


def write_project(settings: ExportSettings, compiled: Compiled, summary: dict, layers: Table,
                  vec_in: np.ndarray, vec_out: np.ndarray, stream=None) -> list[str]:
    out_dir = settings.out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        render_sources(tmp, compiled, settings, summary, stream)
        (tmp / "vectors").mkdir()
        vec_in.astype(np.int8).tofile(tmp / "vectors" / "inputs.bin")
        (tmp / "vectors" / "expected.bin").write_bytes(output_bytes(compiled.graph, vec_out))
        write_tensor_vectors(tmp / "vectors", compiled.graph, vec_in, vec_out)
        if stream is not None:  # `make test-stream`: the first two vectors' frames, and each step's outputs
            frames = stream_frames(vec_in[:2])
            frames.astype(np.int8).tofile(tmp / "vectors" / "frames.bin")
            (tmp / "vectors" / "expected_stream.bin").write_bytes(
                output_bytes(compiled.graph, reference_outputs(compiled.graph, stream, frames)))
        render_linked_vectors(tmp, compiled.graph, vec_in, vec_out)
        write_manifest(compiled.graph, tmp, {"summary": {k: v for k, v in summary.items()},
                                             "c_api": {"arena": settings.arena,
                                                       "streaming": stream is not None}})
        (tmp / "report.md").write_text(markdown_report(compiled, summary, layers))
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default) + "\n")
        from .targets import write_target_support

        write_target_support(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()
                  and "targets" not in p.relative_to(out_dir).parts)


def write_tensor_vectors(folder: Path, graph, vec_in: np.ndarray, vec_out: np.ndarray) -> None:
    """For a model with several inputs or outputs, each tensor's vectors on their own as well:
    <param>.bin (input0.bin, ...) and expected_<param>.bin (expected_output0.bin, ...)."""
    if len(graph.inputs) == 1 and len(graph.outputs) == 1:
        return
    params = io_parameters(graph)
    for name, values in graph.split_inputs(vec_in).items():
        values.astype(np.int8).tofile(folder / f"{params[name]}.bin")
    for name, values in graph.split_outputs(vec_out).items():
        values.astype(file_dtype(graph.tensors[name].bits)).tofile(folder / f"expected_{params[name]}.bin")


def _json_default(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    return str(value)


def runtime_closure(runtime_dir: Path, files: list[str]) -> list[str]:
    """`files` and every runtime header they include ("..." includes), transitively: a kernel's
    private headers (e.g. its DSP and portable inner products) come along with it."""
    out, todo = [], list(files)
    while todo:
        f = todo.pop(0)
        if f in out:
            continue
        out.append(f)
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', (runtime_dir / f).read_text(), re.M):
            if (runtime_dir / inc).is_file() and inc not in out:
                todo.append(inc)
    return out


def render_sources(root: Path, compiled: Compiled, settings: ExportSettings, summary: dict, stream=None) -> None:
    graph = compiled.graph
    name = graph.name
    em = emit_model(graph, compiled.plan)
    step = emit_step(em, stream) if stream is not None else None
    runtime_dir = resource_dir("runtime_c")
    (root / "src").mkdir()
    (root / "runtime").mkdir()
    runtime_files = runtime_closure(runtime_dir, ["ec_fixed.h", "ec_tensor.h", "ec_sections.h"]
                                    + [f"{base}{ext}" for base in sorted(em.runtime) for ext in (".h", ".c")])
    for f in runtime_files:
        shutil.copy2(runtime_dir / f, root / "runtime" / f)
    env = template_env()
    code = "\n".join(s.code for s in em.body if s.kind != "comment")
    ctx = {
        **api_context(graph, code, settings.arena),
        "name": name, "NAME": name.upper(), "source": settings.model.name,
        "arena_size": summary["arena_bytes"], "arena_bound": compiled.plan.lower_bound,
        "arena_total": compiled.plan.total_activation_bytes,
        "weight_bytes": summary["weight_bytes"], "layer_count": len(graph.nodes),
        "arrays": em.arrays, "structs": em.structs, "body": em.body,
        "runtime_headers": [f"{b}.h" for b in sorted(em.runtime)],
        "model_sources": [f"src/{name}.c", f"src/{name}_io.c"],
        "runtime_sources": [f"runtime/{f}" for f in runtime_files if f.endswith(".c")],
        "stream": stream_context(graph, stream, step, settings.arena),
    }
    files = {f"src/{name}.h": "model.h.j2", f"src/{name}.c": "model.c.j2", f"src/{name}_io.c": "model_io.c.j2",
             "src/runner.c": "runner.c.j2", "Makefile": "Makefile.j2"}
    for rel, template in files.items():
        (root / rel).write_text(env.get_template(template).render(**ctx))


def stream_context(graph, stream, step, arena: str) -> dict | None:
    """The templates' view of NAME_step and NAME_reset (None without --streaming)."""
    if stream is None:
        return None
    out = caller_tensors(graph, "output")[0]
    extern = arena == "extern"
    code = "\n".join(s.code for s in step.body if s.kind != "comment")
    s = stream.summary()
    what = (f"{stream.window}-frame window, {len(stream.histories)} histories" if stream.kind == "window"
            else f"recurrent, {len(stream.states)} cells")
    return {
        "kind": stream.kind, "window": stream.window, "frame_size": stream.frame_size, "warmup": stream.warmup,
        "state_size": stream.state_bytes, "ctype": out.ctype, "output_size": out.size,
        "reset_output": stream.reset_output,
        "macs_step": s["macs_per_frame"], "macs_full": s["macs_full_window"],
        "summary": f"{what}, {s['macs_per_frame']:,} MACs per frame ({s['macs_full_window']:,} per window)",
        "params": f"const int8_t *frame, {out.ctype} *output" + (", void *arena" if extern else ""),
        "reset_params": "void *arena" if extern else "void",
        "body": step.body, "uses_arena": "ec_arena" in code,
        "unused_params": [p for p in ("frame", "output") if not re.search(rf"\b{p}\b", code)],
    }


def render_linked_vectors(root: Path, graph, vec_in: np.ndarray, vec_out: np.ndarray, count: int = 4) -> None:
    k = min(count, len(vec_in))
    values = graph.split_outputs(vec_out[:k])
    outputs = [dict(param=t.param, ctype=t.ctype, size=t.size,
                    rows=[", ".join(str(int(v)) for v in values[t.tensor][i].reshape(-1)) for i in range(k)])
               for t in caller_tensors(graph, "output")]
    text = template_env().get_template("vectors.h.j2").render(
        count=k, input_size=vec_in[0].size, outputs=outputs,
        inputs=[", ".join(str(int(v)) for v in vec_in[i].reshape(-1)) for i in range(k)])
    (root / "vectors" / "vectors.h").write_text(text)

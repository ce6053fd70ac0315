"""Tables and the Markdown report: what the user reads after an export."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .ir import Graph


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    right: set[int]  # right-aligned (numeric) columns

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
                  for i, h in enumerate(self.headers)]

        def line(cells):
            return "  ".join(c.rjust(w) if i in self.right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        sep = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.headers), sep] + [line(r) for r in self.rows])

    def markdown(self) -> str:
        align = ["---:" if i in self.right else ":---" for i in range(len(self.headers))]
        out = ["| " + " | ".join(self.headers) + " |", "| " + " | ".join(align) + " |"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        return "\n".join(out)


def fmt_int(n: int) -> str:
    return f"{int(n):,}"


def fmt_size(n: int | None) -> str:
    """A memory size as a datasheet gives it: 512 KiB, 4 MiB ("-" for none, e.g. the host)."""
    if n is None:
        return "-"
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{fmt_int(n)} B"


def fmt_db(v: float | None) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "exact" if v > 0 else "-inf"
    return f"{v:.1f}"


def shape_text(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def weight_bits_text(node) -> str:
    """The weight width of a layer, or of the layers inside a recurrent cell's body."""
    if "weight_bits" in node.qattrs:
        return str(node.qattrs["weight_bits"])
    body = getattr(node, "body", None)
    widths = sorted({int(n.qattrs["weight_bits"]) for n in (body.nodes if body is not None else [])
                     if "weight_bits" in n.qattrs}, reverse=True)
    return "/".join(str(b) for b in widths) or "-"


def layer_table(graph: Graph, plan, sqnr: dict[str, float] | None = None) -> Table:
    headers = ["layer", "op", "attrs", "output", "params", "MACs", "w bits", "flash B", "RAM B", "Q-format",
               "SQNR dB"]
    rows = []
    for node in graph.nodes:
        out = node.outputs[0]
        where, _ = plan.location(out)
        ram = "view" if node.is_alias else (fmt_int(graph.tensors[out].nbytes) + (" (out)" if where == "output" else ""))
        parts = node.ram_parts() if hasattr(node, "ram_parts") else None  # a recurrent layer's own arena bytes
        if parts and not node.is_alias:
            ram = (f"{fmt_int(graph.tensors[out].nbytes + sum(parts.values()))} = {ram} + "
                   + " + ".join(f"{fmt_int(v)} {k}" for k, v in parts.items()))
        rows.append([node.name, node.op_type, node.describe(), shape_text(graph.shape(out)),
                     fmt_int(node.param_count()), fmt_int(node.macs(graph)), weight_bits_text(node),
                     fmt_int(node.flash_bytes(graph)), ram, node.formats(graph), fmt_db((sqnr or {}).get(out))])
    return Table(headers, rows, {4, 5, 6, 7, 10})


CONSTANT_MARGIN_DB = 3.0  # a constant output this close to the integer model's SQNR makes the SQNR say little
CONSTANT_WARNING = ("the float outputs hardly vary with the input, so the integer model's figures say little about "
                    "how well it follows its input")


def outputs_hardly_vary(s: dict) -> bool:
    return s["constant_output_sqnr_db"] >= s["output_sqnr_db"] - CONSTANT_MARGIN_DB


def constant_line(s: dict) -> str:
    """What a model that ignores its input scores on the evaluation samples, and what that means."""
    agree = s["constant_output_top1_agreement"]
    return (f"a constant output (the float model's mean over the calibration samples) scores "
            f"{fmt_db(s['constant_output_sqnr_db'])} dB" + (f" and {100 * agree:.2f} % top-1 agreement"
                                                            if agree is not None else "")
            + " on the same samples" + (f": {CONSTANT_WARNING}" if outputs_hardly_vary(s) else ""))


def totals(graph: Graph, plan) -> dict[str, int]:
    return {
        "params": sum(n.param_count() for n in graph.nodes),
        "macs": sum(n.macs(graph) for n in graph.nodes),
        "weight_bytes": sum(n.flash_bytes(graph) for n in graph.nodes),
        "arena_bytes": plan.arena_size,
        "arena_lower_bound": plan.lower_bound,
        "arena_layer_bound": plan.layer_bound,
        "memory_plan": plan.mode,
        "arena_peak_layer": plan.peak,
        "layers_over_input": list(plan.overlapping),
        "patches": patches_summary(graph, plan.patches),
        "activations_unshared": plan.total_activation_bytes,
        "input_bytes": sum(graph.tensors[t].nbytes for t in graph.inputs),
        "output_bytes": sum(graph.tensors[t].nbytes for t in graph.outputs),
    }


def streaming_line(s: dict) -> str:
    """The export's line on NAME_step (--streaming): MACs per new frame against the whole window's, and
    its RAM: the static state kept between calls and the arena a step uses (inside NAME_ARENA_SIZE)."""
    st = s["streaming"]
    share = 100 * st["macs_per_frame"] / st["macs_full_window"] if st["macs_full_window"] else 0.0
    kept = (f"histories of {len(st['histories'])} tensors" if st["kind"] == "window" else "recurrent states")
    what = f"{st['window_frames']}-frame window" if st["kind"] == "window" else f"{st['window_frames']}-step sequence"
    return (f"streaming: NAME_step {fmt_int(st['macs_per_frame'])} MACs per frame vs {fmt_int(st['macs_full_window'])} "
            f"per {what} ({share:.1f} %); state {fmt_int(st['state_bytes'])} B static ({kept}), step arena "
            f"{fmt_int(st['step_arena_bytes'])} B (inside the {fmt_int(s['arena_bytes'])} B arena)"
            ).replace("NAME", s["name"])


def patches_summary(graph: Graph, patches) -> dict | None:
    """The first layers run in patches (passes/patches.py): which, on what grid, at what cost."""
    if patches is None:
        return None
    total = sum(n.macs(graph) for n in graph.nodes)
    return {"layers": list(patches.nodes), "grid": list(patches.grid), "extra_macs": int(patches.extra_macs),
            "extra_macs_percent": round(100 * patches.extra_macs / total, 2) if total else 0.0,
            "tile_bytes": int(patches.scratch_bytes)}


def arena_note(s: dict) -> str:
    """How the arena compares with its bounds, for the summary line and the report."""
    over = s["layers_over_input"]
    text = f"layer-by-layer bound {fmt_int(s['arena_layer_bound'])} B"
    if over:
        text += (f"; {len(over)} layer{'s write over their inputs' if len(over) > 1 else ' writes over its input'}, "
                 f"bound {fmt_int(s['arena_lower_bound'])} B")
    p = s.get("patches")
    if p:
        text += (f"; {p['layers'][0]}..{p['layers'][-1]} ({len(p['layers'])} layers) in {p['grid'][0]}x{p['grid'][1]} "
                 f"patches, {p['extra_macs_percent']:+.1f} % MACs")
    return text + f"; peak at {s['arena_peak_layer']}; unshared {fmt_int(s['activations_unshared'])} B"


def factorization_table(decisions) -> Table:
    rows = [[d.layer, f"{d.in_features}->{d.out_features}", str(d.rank), "yes" if d.applied else "no",
             fmt_int(d.weights_before), fmt_int(d.weights_after), f"{100 * d.energy:.1f}", d.reason]
            for d in decisions]
    return Table(["layer", "shape", "rank", "factorized", "weights before", "weights after", "beta %", "note"],
                 rows, {2, 4, 5, 6})


def sparsity_table(decisions) -> Table:
    rows = [[d.layer, f"{100 * d.density:.1f}", d.format, fmt_int(d.dense_bytes), fmt_int(d.stored_bytes),
             f"{100 * (1 - d.stored_bytes / d.dense_bytes):.0f}" if d.dense_bytes else "-"] for d in decisions]
    return Table(["layer", "density %", "format", "dense B", "stored B", "saved %"], rows, {1, 3, 4, 5})


def markdown_report(compiled, summary: dict, layers: Table) -> str:
    """The project's report.md: layers, memory, accuracy, factorization, sparsity and notes of a
    compiled model (compiler.Compiled), from the export's summary."""
    s = summary
    lines = [f"# {s['name']}: edgecompile {s['edgecompile']} report", "",
             f"Source `{s['source']}`, weights {s['bits']}-bit"
             + ("".join(f", {k} {v}-bit" for k, v in s["layer_bits"].items()))
             + " (4 bits or fewer packed), power-of-two scales, int32 biases and accumulators.",
             "", "## Layers", "", layers.markdown(), "",
             "Q-format: frac bits f of input (x), weights (w) and output (y); >>s is the requantization "
             "shift s = f_x + f_w - f_y (round half up). SQNR: each layer's integer output against the float "
             "graph on the evaluation samples.", "", "## Memory", "",
             f"- weights (flash): {fmt_int(s['weight_bytes'])} bytes",
             f"- arena (RAM): {fmt_int(s['arena_bytes'])} bytes ({arena_note(s)}; plan: "
             f"{compiled.plan.strategy}, --memory-plan {s['memory_plan']})"
             + (f"; written over their input: {', '.join(s['layers_over_input'])}" if s["layers_over_input"] else ""),
             f"- caller's buffers: input {fmt_int(s['input_bytes'])} bytes, output {fmt_int(s['output_bytes'])} bytes"]
    if "streaming" in s:
        lines.append(f"- {streaming_line(s)}")
    lines += ["", "## Accuracy", "",
             f"- calibration: {s['calibration']}",
             f"- float oracle: IR float evaluation vs onnxruntime, max |error| {s['oracle_max_abs_err']:.2e}",
             f"- integer vs float model on {s['eval_data']}: output SQNR {fmt_db(s['output_sqnr_db'])} dB"
             + (f", top-1 agreement {100 * s['top1_agreement']:.2f} %" if s["top1_agreement"] is not None else "")
             + ("" if s["eval_held_out"] else
                " (the data the ranges were chosen from; `--val FILE` measures on held-out samples)"),
             f"- {constant_line(s)}"]
    if compiled.calib_is_synthetic:
        lines += ["", "> No calibration data was given: activation ranges come from standard-normal inputs and "
                  "BatchNorm statistics. Pass `--calib` with real inputs for better accuracy."]
    if compiled.factorization:
        lines += ["", "## Low-rank factorization", "", factorization_table(compiled.factorization).markdown(), ""]
        if s.get("factorized_float_sqnr_db") is not None:
            lines.append(f"Float model after factorization vs original: SQNR "
                         f"{fmt_db(s['factorized_float_sqnr_db'])} dB"
                         + (f", top-1 agreement {100 * s['factorized_float_top1_agreement']:.2f} %"
                            if s["factorized_float_top1_agreement"] is not None else "")
                         + f"; integer vs factorized float: SQNR {fmt_db(s['quantization_sqnr_db'])} dB")
    if "act16" in s:
        a = s["act16"]
        lines += ["", "## 16-bit activations", "",
                  f"- int16 outputs: {', '.join(a['layers']) or 'none'}",
                  f"- output SQNR against the float graph: {fmt_db(a['sqnr_8bit_db'])} dB with 8-bit activations, "
                  f"{fmt_db(a['sqnr_db'])} dB as compiled",
                  f"- arena: {fmt_int(a['arena_8bit'])} B with 8-bit activations, {fmt_int(a['arena'])} B as compiled"]
    if any(d.format != "dense" or d.density < 1.0 for d in compiled.sparsity):
        lines += ["", "## Sparsity", "", sparsity_table(compiled.sparsity).markdown(), "",
                  "Density counts the nonzero quantized weights; bytes are the weight arrays alone "
                  "(biases and shifts are the same either way)."]
    if compiled.graph.notes:
        lines += ["", "## Compiler notes", ""] + [f"- {n}" for n in compiled.graph.notes]
    lines += ["", "## Files", "", f"- `src/{s['name']}.c`, `src/{s['name']}.h`: the model; "
              f"`src/{s['name']}_io.c`: float helpers; `src/runner.c`: test runner",
              "- `runtime/`: the kernels it uses; `targets/`: build rules per target",
              f"- `vectors/`: {s['vectors']} test inputs and the simulator's outputs; "
              "`manifest.json` + `weights.npz`: the quantized graph", ""]
    return "\n".join(lines)

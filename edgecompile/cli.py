"""The `edgecompile` command line (click).

Every user-facing failure is an EdgeCompileError: printed as one clear message
on stderr with exit status 1, never a traceback.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from . import __version__
from .errors import EdgeCompileError


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise EdgeCompileError(f"--input-shape '{text}': expected positive integers like 1,28,28 (C,H,W, no batch)")
    return dims


def progress_bar(length: int, label: str):
    """A bar for a long step (edgecompile.progress), on stderr so stdout stays the result."""
    return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True)


class Progress:
    """Stage lines with elapsed time, and bars for the long stages, on stderr so stdout stays the report."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"[{time.perf_counter() - self.t0:6.1f}s] {message}", err=True)

    def bar(self, length: int, label: str):
        from .progress import no_progress

        return (no_progress if self.quiet else progress_bar)(length, label)


def print_json(value) -> None:
    """--json, the same for every command: the machine-readable result on stdout instead of the tables."""
    click.echo(json.dumps(value, indent=1, default=str))


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as JSON on stdout instead of the tables.")(fn)


def example(line: str) -> str:
    """The one-line example that ends a command's --help (\b keeps click from rewrapping it)."""
    return f"\b\nExample: {line}"


class EdgeCompileGroup(click.Group):
    """Turns EdgeCompileError into `error: ...` on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeCompileError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except OSError as exc:  # a path the user gave that cannot be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}; check the path", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=EdgeCompileGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecompile")
def cli() -> None:
    """Compile trained PyTorch/ONNX models to bit-exact fixed-point C for microcontrollers."""


model_options = [
    click.option("--input-shape", help="Input shape without batch, e.g. 1,28,28 (when the model does not record it)."),
    click.option("--trust-pickle", is_flag=True,
                 help="Allow loading a pickled nn.Module (torch.save(model)); unpickling runs code from the file."),
    click.option("--import", "imports", multiple=True, metavar="MODULE",
                 help="Module (or .py file) defining the pickled model's class; repeatable."),
]


def with_model_options(fn):
    for option in reversed(model_options):
        fn = option(fn)
    return fn


@cli.command(epilog=example("edgecompile export model.pt --calib calib.npy --bits 8 --rank 16 -o out/"))
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Directory for the generated C project.")
@click.option("--calib", type=click.Path(path_type=Path),
              help="Calibration inputs: .npy/.npz/.pt of shape (N, C, H, W) (or (N, features)).")
@click.option("--bits", multiple=True, default=["8"], show_default=True,
              help="Weight bits, 2..8: N for all layers, LAYER=N for one (comma-separated, repeatable: "
              "--bits 8 --bits fc1=4,conv2=6). 4 bits or fewer are packed 2 or 4 per byte.")
@click.option("--rank", help="Factorize dense layers where it saves memory: N for all, LAYER=N for one "
              "(comma-separated, e.g. 16 or fc1=32,fc2=8).")
@click.option("--energy", type=float, help="Rank per layer: the smallest that keeps this share beta of the "
              "variance (sum of squared singular values), e.g. 0.95.")
@click.option("--factorize-conv1x1", is_flag=True, help="Also factorize 1x1 convolutions.")
@click.option("--sparse", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Store pruned weights sparsely: where it saves flash (auto), always (on), never (off).")
@click.option("--prune", multiple=True, help="Zero the given share of a layer's smallest weights: LAYER=SHARE, "
              "e.g. fc1=0.5 (repeat or separate with commas; `fit` chooses these for you).")
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "sigma", "mse"]), default="mse",
              show_default=True, help="How activation formats are chosen from the calibration data.")
@click.option("--weight-method", type=click.Choice(["minmax", "percentile", "sigma", "mse"]), default="minmax",
              show_default=True, help="How weight formats are chosen (per channel).")
@click.option("--bias-correction", is_flag=True, help="Shift biases to cancel the mean error of the rounded "
              "weights on the calibration data.")
@click.option("--output-correction/--no-output-correction", default=True, show_default=True,
              help="Scale each model output by the least-squares gain and offset that bring the integer outputs "
              "closest to the float model's on the calibration samples (kept only when samples left out of the "
              "fit confirm it; a net whose outputs follow the float ones closely is left as it is).")
@click.option("--weight-rounding", type=click.Choice(["error-feedback", "nearest"]), default="error-feedback",
              show_default=True, help="Integer weights that minimize each layer's output error on the calibration "
              "data (error-feedback), or each weight rounded to nearest.")
@click.option("--format-search/--no-format-search", default=True, show_default=True,
              help="Search activation formats for the model's output error on the calibration data (kept only "
              "when half the samples, unseen by the search, confirm the gain).")
@click.option("--snap-ranges/--no-snap-ranges", default=True, show_default=True,
              help="Rescale tensors that only conv/linear layers read so that they fill their power-of-two formats "
              "(the float function is unchanged; kept only when the calibration samples' output error falls).")
@click.option("--unsigned-relu/--signed-relu", default=True, show_default=True,
              help="Store never-negative tensors (ReLU outputs, their pools and concatenations) as unsigned codes "
              "where their readers allow (one bit finer; the offset folds into biases and offsets).")
@click.option("--asymmetric/--symmetric", default=True, show_default=True,
              help="Give signed tensors a zero point too where their writer and readers allow one (up to one bit "
              "finer for skewed ranges such as h-swish outputs).")
@click.option("--equalize", type=click.Choice(["off", "auto", "weights", "activations", "noise", "weights-pow2",
                                               "activations-pow2", "noise-pow2"]), default="auto", show_default=True,
              help="Cross-layer equalization of conv/linear pairs joined by ReLU: auto keeps 'noise' where the "
              "calibration samples show it lowers the output error, without the pairs it would make slower "
              "(sparse or left-shifting layers); off turns it off; a method forces it on every pair.")
@click.option("--act-bits", multiple=True, default=["8"], show_default=True,
              help="Activation bits: 8, 16, auto (16 where it measurably helps) or LAYER=16 (comma-separated, "
              "repeatable).")
@click.option("--output-bits", type=click.Choice(["auto", "8", "16"]), default="auto", show_default=True,
              help="The model outputs' C type: int8_t, int16_t, or auto (int16_t for an output of at most "
              "256 values, such as a classifier's logits: its rounding error then vanishes).")
@click.option("--drop-softmax", is_flag=True, help="Leave out a final Softmax (the C returns logits).")
@click.option("--per-channel/--per-tensor", "per_channel", default=None,
              help="Weight formats per output channel (default) or one per tensor.")
@click.option("--name", help="C name of the model (default: the file name).")
@click.option("--val", type=click.Path(path_type=Path),
              help="Held-out inputs (.npy/.npz/.pt) to measure integer vs float on [default: the calibration "
              "samples].")
@click.option("--vectors", type=int, default=256, show_default=True, help="Number of test vectors to write.")
@click.option("--memory-plan", type=click.Choice(["auto", "in-place", "layer"]), default="auto", show_default=True,
              help="auto: layers write over the inputs they replace where their kernels' order allows, and the "
              "first layers run in bands of rows when that lowers the arena within --patch-budget; in-place: "
              "without patches; layer: every output apart from its inputs (the layer-by-layer plan).")
@click.option("--patch-budget", type=click.FloatRange(0, 100), default=10, show_default=True,
              help="What the bands may cost, estimated in percent of the model's MACs: each recomputed halo MAC "
              "counts three times, each further kernel call 500 MACs (README, Memory plan).")
@click.option("--arena", type=click.Choice(["static", "extern"]), default="static", show_default=True,
              help="Activation memory: a static array inside NAME.c, or a buffer the caller passes to NAME_run.")
@click.option("--streaming", is_flag=True,
              help="Also generate NAME_reset() and NAME_step(frame, output): one new frame per call on state kept "
              "between calls (a conv net over a window of frames with stride 1 and no padding along time, or a "
              "recurrent net; README, Streaming).")
@json_option
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@with_model_options
def export(model, out_dir, calib, bits, rank, energy, factorize_conv1x1, sparse, prune, calib_method, weight_method,
           bias_correction, output_correction, weight_rounding, format_search, snap_ranges, unsigned_relu, asymmetric, equalize,
           act_bits, output_bits, drop_softmax, per_channel, name, val, vectors, memory_plan, patch_budget, arena, streaming, as_json, quiet,
           input_shape, trust_pickle, imports):
    """Compile MODEL (.pt TorchScript, .pt2, .onnx) into a C project in OUTPUT."""
    from .export import ExportSettings
    from .export import export as run_export
    from .report import (arena_note, constant_line, factorization_table, fmt_db, fmt_int, outputs_hardly_vary,
                         sparsity_table, streaming_line)

    settings = ExportSettings(model=model, out_dir=out_dir, calib=calib, bits=tuple(bits), rank=rank, energy=energy,
                              factorize_conv1x1=factorize_conv1x1, sparse=sparse, prune=tuple(prune), drop_softmax=drop_softmax,
                              per_channel=per_channel, calib_method=calib_method, weight_method=weight_method,
                              bias_correction=bias_correction, output_correction=output_correction,
                              weight_rounding=weight_rounding,
                              format_search=format_search, snap_ranges=snap_ranges, unsigned_relu=unsigned_relu,
                              asymmetric=asymmetric,
                              equalize=equalize, memory_plan=memory_plan, patch_budget=patch_budget / 100,
                              act_bits=tuple(act_bits),
                              output_bits=output_bits if output_bits == "auto" else int(output_bits), name=name,
                              input_shape=parse_shape(input_shape), trust_pickle=trust_pickle,
                              imports=tuple(imports), vectors=vectors, val=val, arena=arena,
                              streaming=streaming)
    stages = Progress(quiet)
    result = run_export(settings, stages, progress=stages.bar)
    s = result.summary
    if as_json:
        print_json(s)
        return
    click.echo(f"\nmodel '{result.name}' from {model} -> {out_dir}/\n")
    click.echo(result.layers.text())
    click.echo("")
    if result.compiled.factorization:
        click.echo(factorization_table(result.compiled.factorization).text())
        click.echo("")
    if any(d.format != "dense" for d in result.compiled.sparsity):
        click.echo(sparsity_table(result.compiled.sparsity).text())
        click.echo("")
    click.echo(f"weights (flash): {fmt_int(s['weight_bytes'])} B   arena (RAM): {fmt_int(s['arena_bytes'])} B "
               f"({arena_note(s)})   MACs: {fmt_int(s['macs'])}")
    if "streaming" in s:
        click.echo(streaming_line(s))
    agree = s["top1_agreement"]
    click.echo(f"integer vs float on {s['eval_data']}: output SQNR {fmt_db(s['output_sqnr_db'])} dB"
               + (f", top-1 agreement {100 * agree:.2f} %" if agree is not None else "")
               + f"   (IR vs onnxruntime max |err| {s['oracle_max_abs_err']:.1e})")
    if outputs_hardly_vary(s):
        click.echo(f"note: {constant_line(s)}")
    if result.compiled.calib_is_synthetic:
        click.echo("note: no --calib given; ranges come from N(0,1) inputs and BatchNorm statistics. "
                   "Real calibration data gives better accuracy.")
    if "act16" in s:
        a = s["act16"]
        click.echo(f"16-bit activations: {', '.join(a['layers']) or 'none'}; output SQNR {fmt_db(a['sqnr_8bit_db'])} -> "
                   f"{fmt_db(a['sqnr_db'])} dB; arena {fmt_int(a['arena_8bit'])} -> {fmt_int(a['arena'])} B")
    for note in result.compiled.graph.notes:
        if "lowered" in note or "dropped" in note or note.startswith("output correction:"):
            click.echo(f"note: {note}")
    click.echo(f"wrote {out_dir}/ ({s['vectors']} test vectors; report in {out_dir}/report.md). "
               f"Next: edgecompile verify {out_dir}")


@cli.command(epilog=example("edgecompile verify out/ --target qemu-m4"))
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--inputs", type=click.Path(path_type=Path),
              help="Float inputs (.npy/.npz/.pt) to run instead of the project's test vectors.")
@click.option("--count", type=int, help="Use only the first N inputs.")
@click.option("--target", default="host", show_default=True, help="Where to run: host or a qemu-* target (`edgecompile targets` lists them).")
@click.option("--sanitize", is_flag=True, help="Host build under AddressSanitizer and UBSan.")
@json_option
def verify(project, inputs, count, target, sanitize, as_json):
    """Build PROJECT, run it and compare every output byte with the simulator."""
    from dataclasses import asdict

    from .verify import verify as run_verify

    result = run_verify(project, inputs, count, target, sanitize, progress=progress_bar)
    m = result.first_mismatch
    if as_json:
        print_json({"target": result.target, "sanitize": sanitize, "total": result.total, "exact": result.exact,
                    "bit_exact": result.ok, "first_mismatch": asdict(m) if m else None,
                    **({"stream_steps": result.stream_total, "stream_exact": result.stream_exact,
                        "stream_first_mismatch": result.stream_first_mismatch} if result.stream_total else {})})
    else:
        click.echo(f"target {result.target}{' (ASan+UBSan)' if sanitize else ''}: "
                   f"bit-exact: {result.exact}/{result.total}")
        if result.stream_total:
            click.echo(f"streaming: NAME_step bit-exact on {result.stream_exact}/{result.stream_total} frames "
                       "(each against the simulator on its window or sequence)"
                       + (f"; first mismatch at step {result.stream_first_mismatch}"
                          if result.stream_first_mismatch is not None else ""))
        if m:
            click.echo(f"first mismatch: sample {m.sample}, output index {m.index}: C {m.c_value}, "
                       f"simulator {m.sim_value}", err=True)
    if not result.ok:
        sys.exit(1)


def parse_list(text: str, kind, option: str) -> list:
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        what = "whole numbers" if kind is int else "numbers"
        raise EdgeCompileError(f"{option} '{text}': expected a comma-separated list of {what}, e.g. "
                               f"{'8,6,4' if kind is int else '0.9,0.95'}") from None


@cli.command(epilog=example("edgecompile explore model.pt --calib calib.npy --val x.npy --labels y.npy "
                            "--bits 8,4 -o explore/"))
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--calib", type=click.Path(path_type=Path), required=True, help="Calibration inputs.")
@click.option("--val", "val_path", type=click.Path(path_type=Path), required=True, help="Validation inputs (.npy).")
@click.option("--labels", type=click.Path(path_type=Path), required=True, help="Validation labels (.npy of ints).")
@click.option("--ranks", default="2,4,8,16,32,64", show_default=True, help="Ranks to try for every dense layer.")
@click.option("--energies", default="0.5,0.7,0.8,0.9,0.95,0.99", show_default=True, help="beta values to try.")
@click.option("--bits", default="8", show_default=True, help="Weight bit widths to try, e.g. 8,6,4.")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=Path("explore"),
              show_default=True, help="Folder for the table, JSON and PNG plots.")
@json_option
@with_model_options
def explore(model, calib, val_path, labels, ranks, energies, bits, out_dir, as_json, input_shape, trust_pickle,
            imports):
    """Sweep ranks (and bits) of MODEL without retraining: table, Pareto front, plots, scree plots."""
    from dataclasses import asdict

    from .explore import explore as run_explore
    from .explore import table

    cfg_count = [0]

    def progress(items):
        items = list(items)
        cfg_count[0] = len(items)
        with click.progressbar(items, label=f"compiling and scoring {len(items)} configurations",
                               file=sys.stderr, show_pos=True) as bar:
            yield from bar

    result = run_explore(model, calib, val_path, labels, out_dir, parse_list(ranks, int, "--ranks"),
                         parse_list(energies, float, "--energies"), parse_list(bits, int, "--bits"),
                         parse_shape(input_shape), trust_pickle, tuple(imports), progress)
    if as_json:
        print_json({"baseline_weight_bytes": result.baseline_bytes, "points": [asdict(p) for p in result.points],
                    "files": [str(out_dir / f) for f in result.files]})
        return
    click.echo(f"baseline (dense, {parse_list(bits, int, '--bits')[0]}-bit): {result.baseline_bytes:,} weight bytes")
    click.echo(table(result.points).text())
    click.echo("* = on the Pareto front (no other configuration saves more memory at the same or better accuracy)")
    click.echo(f"wrote {out_dir}/: " + ", ".join(result.files))


@cli.command(epilog=example("edgecompile fit model.pt2 --board nucleo-g071rb --calib calib.npy --val x.npy "
                            "--labels y.npy -o out/"))
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Project folder to write (a normal export, plus fit.md, fit.json and fit_front.png).")
@click.option("--board", help="Take the budgets from this target's flash and RAM, minus the firmware's own needs "
              "(`edgecompile targets` lists them).")
@click.option("--flash", help="Flash for the weights, e.g. 12k.")
@click.option("--ram", help="RAM for the activation arena, e.g. 8k.")
@click.option("--calib", type=click.Path(path_type=Path), required=True, help="Calibration inputs.")
@click.option("--val", "val_path", type=click.Path(path_type=Path), required=True,
              help="Validation inputs (.npy), not the calibration samples.")
@click.option("--labels", type=click.Path(path_type=Path),
              help="Validation labels (.npy of ints): maximize accuracy; without them, output SQNR against float.")
@click.option("--jobs", type=int, help="Parallel compilations  [default: every core].")
@click.option("--finetune", type=int, default=0, show_default=True,
              help="Fine-tune the chosen configuration for this many epochs (quantization-aware: the C equals the "
              "trained model); needs --train and --train-labels.")
@click.option("--train", "train_x", type=click.Path(path_type=Path), help="Training inputs (.npy) for --finetune.")
@click.option("--train-labels", "train_y", type=click.Path(path_type=Path), help="Training labels (.npy of ints).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@json_option
@with_model_options
def fit(model, out_dir, board, flash, ram, calib, val_path, labels, jobs, finetune, train_x, train_y, quiet, as_json,
        input_shape, trust_pickle, imports):
    """Choose per-layer rank, weight bits and pruning so that MODEL fits a board, as accurately as possible."""
    from dataclasses import asdict

    from .fit import fit as run_fit
    from .fit import layers_table, parse_size, points_table
    from .report import fmt_db, fmt_int

    if (train_x is None) != (train_y is None):
        raise EdgeCompileError("--train and --train-labels go together (inputs and their class labels)")
    stages = Progress(quiet)
    result = run_fit(model, calib, val_path, labels, out_dir, board=board, flash=parse_size(flash, "--flash"),
                     ram=parse_size(ram, "--ram"), jobs=jobs, finetune=finetune,
                     train=(train_x, train_y) if train_x is not None else None, input_shape=parse_shape(input_shape),
                     trust_pickle=trust_pickle, imports=tuple(imports), log=stages,
                     progress=stages.bar)
    c = result.chosen
    if as_json:
        print_json({"budget": asdict(result.budget), "chosen": asdict(c), "layers": result.layers,
                    "points": [asdict(p) for p in result.points], "float_accuracy": result.float_accuracy,
                    "export_command": result.command, "finetune": result.finetune,
                    "files": [str(out_dir / f) for f in result.files]})
        return
    b = result.budget
    click.echo(f"budget: flash {fmt_int(b.flash) if b.flash is not None else 'any'} B for weights, "
               f"RAM {fmt_int(b.ram) if b.ram is not None else 'any'} B for the arena ({b.source})\n")
    click.echo(layers_table(result.layers).text())
    click.echo("")
    click.echo(points_table(result.points).text())
    click.echo("* first column: the chosen candidate; front: on the Pareto front (no other is smaller and as accurate)")
    acc = "" if c.accuracy is None else (f", accuracy {100 * c.accuracy:.2f} % "
                                         f"(float {100 * result.float_accuracy:.2f} %)")
    click.echo(f"\nchosen: {fmt_int(c.weight_bytes)} B of weights, {fmt_int(c.arena)} B arena, output SQNR "
               f"{fmt_db(c.sqnr_db)} dB{acc}")
    if result.finetune:
        f = result.finetune
        click.echo(f"fine-tuned {f['epochs']} epoch(s): "
                   + ("kept (the C equals the fine-tuned model; the command below gives the model before it)"
                      if f["kept"] else "not better than post-training quantization, not kept"))
    click.echo(f"reproduce with: {result.command}")
    click.echo(f"wrote {out_dir}/ (fit.md, fit.json, fit_front.png). Next: edgecompile verify {out_dir}")


@cli.command(epilog=example("edgecompile build out/ --target nucleo-f446re"))
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--target", required=True, help="A board (e.g. nucleo-f446re), a qemu-* target or host (`edgecompile targets` "
              "lists them).")
def build(project, target):
    """Build PROJECT for TARGET: .elf/.bin/.hex with flash and RAM use; refused if it does not fit."""
    from .bench import build as run_build
    from .report import fmt_int

    r = run_build(project, target)
    for f in r.files:
        click.echo(f"built {f}")
    s = r.sizes
    flash = f" of {fmt_int(r.flash_limit)}" if r.flash_limit else ""
    ram = f" of {fmt_int(r.ram_limit)}" if r.ram_limit else ""
    click.echo(f"{target}: flash {fmt_int(s['flash'])}{flash} B (text {fmt_int(s['text'])}, rodata "
               f"{fmt_int(s['rodata'])}, data {fmt_int(s['data'])}); RAM {fmt_int(s['ram'])}{ram} B "
               f"(data {fmt_int(s['data'])}, bss {fmt_int(s['bss'])}, stack reserve {fmt_int(s['stack'])})")


@cli.command(epilog=example("edgecompile bench out/ --target qemu-m7 --samples 8"))
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--target", default="qemu-m4", show_default=True,
              help="A qemu-* target (`edgecompile targets` lists them).")
@click.option("--samples", type=int, default=None, help="Inferences to count  [default: 4, or fewer if the "
                                                          "project has fewer test vectors].")
@click.option("--save", "save_path", type=click.Path(path_type=Path),
              help="Write the figures (JSON) here  [default: PROJECT/bench-TARGET.json].")
@json_option
def bench(project, target, samples, save_path, as_json):
    """Instructions per inference and per layer (exact, under QEMU), flash and RAM of PROJECT."""
    from .bench import bench as run_bench

    if samples is not None and samples < 1:
        raise EdgeCompileError("--samples must be at least 1")
    if save_path is not None and (save_path.is_dir() or not save_path.parent.is_dir()):
        raise EdgeCompileError(f"--save {save_path}: not a file in an existing folder")  # before the long run
    r = run_bench(project, target, samples, progress=progress_bar)
    path = save_path or Path(project) / f"bench-{target}.json"
    path.write_text(json.dumps(r.as_dict(), indent=1) + "\n")
    if as_json:
        print_json(r.as_dict())
    else:
        print_bench(r)
    click.echo(f"wrote {path}", err=as_json)
    if not (r.bit_exact and r.repeatable):
        sys.exit(1)


def print_bench(r) -> None:
    from .report import Table, fmt_int

    rows = [[c.name, c.op, fmt_int(c.macs), fmt_int(c.instructions),
             "-" if c.per_mac is None else f"{c.per_mac:.2f}"] for c in r.layers]
    rows.append(["total", "", fmt_int(r.macs), fmt_int(r.instructions), f"{r.instructions / max(r.macs, 1):.2f}"])
    click.echo(Table(["layer", "op", "MACs", "instructions", "instr/MAC"], rows, {2, 3, 4}).text())
    lo, hi = min(r.per_inference), max(r.per_inference)
    spread = "" if lo == hi else f" (range {fmt_int(lo)}..{fmt_int(hi)} over {r.samples} inputs)"
    click.echo(f"{r.target}: {fmt_int(r.instructions)} instructions per inference{spread}; counts are "
               f"instructions, not cycles; {'identical on a second run' if r.repeatable else 'NOT REPEATABLE'}; "
               f"outputs {'bit-exact' if r.bit_exact else 'DIFFER from the simulator'}")
    st = r.extra.get("streaming")
    if st:
        share = 100 * st["instructions_step_max"] / max(r.instructions, 1)
        click.echo(f"{r.target} streaming: {fmt_int(st['instructions_step_max'])} instructions per NAME_step call "
                   f"at most (median {fmt_int(st['instructions_step_median'])}, {st['frames']} frames), "
                   f"{share:.1f} % of an inference; {fmt_int(st['macs_per_frame'])} MACs per frame vs "
                   f"{fmt_int(st['macs_full_window'])} per window; outputs "
                   f"{'bit-exact' if st['bit_exact'] else 'DIFFER from the simulator'}")
    stack = fmt_int(r.stack_estimate) if r.stack_estimate is not None else "unknown"
    click.echo(f"flash: model+kernels {fmt_int(r.model_flash)} B, whole test image {fmt_int(r.image['flash'])} B; "
               f"RAM: arena {fmt_int(r.arena)} B, inference stack ~{stack} B, whole image "
               f"{fmt_int(r.image['data'] + r.image['bss'])} B + {fmt_int(r.image['stack'])} B stack reserve")


@cli.command(epilog=example("edgecompile inspect model.pt --rank 16"))
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--rank", help="Show the layers as factorized: N, or LAYER=N items.")
@click.option("--energy", type=float, help="Show the layers factorized to keep this share of variance.")
@click.option("--factorize-conv1x1", is_flag=True, help="Also factorize 1x1 convolutions.")
@json_option
@with_model_options
def inspect(model, rank, energy, factorize_conv1x1, as_json, input_shape, trust_pickle, imports):
    """Per-layer table of MODEL (after BatchNorm folding), without exporting."""
    from .compiler import CompileOptions, check_weights, optimize
    from .passes.factorize import RankSpec
    from .frontend import load_model
    from .report import Table, fmt_int, shape_text

    loaded = load_model(model, parse_shape(input_shape), trust_pickle, tuple(imports))
    graph = loaded.graph
    check_weights(graph, str(model))
    n_imported = len(graph.nodes)
    decisions = optimize(graph, CompileOptions(ranks=RankSpec.parse(rank, energy, factorize_conv1x1)))
    layers = []
    for node in graph.nodes:
        out = graph.tensors[node.outputs[0]]
        weights = int(sum(v.size for k, v in node.params.items() if k == "weight"))
        biases = int(sum(v.size for k, v in node.params.items() if k == "bias"))
        layers.append({"name": node.name, "op": node.op_type, "attrs": node.describe(), "output": list(out.shape),
                       "params": int(node.param_count()), "macs": int(node.macs(graph)),
                       "flash_bytes_int8": weights + 4 * biases,
                       "activation_bytes": None if node.is_alias else int(out.nbytes)})
    params = sum(n.param_count() for n in graph.nodes)
    macs = sum(n.macs(graph) for n in graph.nodes)
    if as_json:
        print_json({"model": str(model), "input": list(graph.input.shape), "imported_nodes": n_imported,
                    "layers": layers, "params": int(params), "macs": int(macs), "notes": list(graph.notes),
                    "factorization": [{"layer": d.layer, "rank": d.rank, "factorized": d.applied,
                                       "reason": d.reason} for d in decisions]})
        return
    rows = [[x["name"], x["op"], x["attrs"], shape_text(x["output"]), fmt_int(x["params"]), fmt_int(x["macs"]),
             fmt_int(x["flash_bytes_int8"]),
             "view" if x["activation_bytes"] is None else fmt_int(x["activation_bytes"])]
            for x in layers]
    table = Table(["layer", "op", "attrs", "output", "params", "MACs", "flash B (int8)", "act B"], rows,
                  {4, 5, 6, 7})
    click.echo(f"{model}: input {shape_text(graph.input.shape)}, {n_imported} imported nodes -> "
               f"{len(graph.nodes)} layers after folding/fusion")
    click.echo(table.text())
    click.echo(f"total: {fmt_int(params)} params, {fmt_int(macs)} MACs")
    for note in graph.notes:
        click.echo(f"note: {note}")
    for d in decisions:
        click.echo(f"rank {d.rank}: {d.layer} {'factorized, ' + d.reason if d.applied else 'kept whole: ' + d.reason}")


@cli.command(epilog=example("edgecompile targets --json"))
@json_option
def targets(as_json):
    """Every target (host, QEMU, boards) with its core, flash and RAM."""
    from .report import Table, fmt_size
    from .targets import list_targets, load_target

    rows = []
    for name in list_targets():
        t = load_target(name)
        code = next((r.length for r in t.memory if r.role == "code"), None)
        data = next((r.length for r in t.memory if r.role == "data"), None)
        rows.append({"name": t.name, "kind": t.kind, "core": t.core, "flash_bytes": code, "ram_bytes": data,
                     "description": t.description})
    if as_json:
        print_json(rows)
        return
    click.echo(Table(["target", "kind", "core", "flash", "RAM", "description"],
                     [[r["name"], r["kind"], r["core"] or "-", fmt_size(r["flash_bytes"]), fmt_size(r["ram_bytes"]),
                       r["description"]] for r in rows], {3, 4}).text())
    click.echo("host runs here; qemu targets run under emulation (verify, bench); boards are built for "
               "(build) and flashed by you")


def main() -> None:
    cli(prog_name="edgecompile")


if __name__ == "__main__":
    main()

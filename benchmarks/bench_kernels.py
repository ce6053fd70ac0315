"""Instructions per layer and per MAC of the reference kernels and the fast kernels, on QEMU Cortex-M cores.

For each core, one bare-metal program holds every layer below (random int8 data,
the fast kernels' weights packed as export writes them) and calls the
reference kernel, then the fast one, between profile marks; the QEMU plugin
counts the instructions exactly (instructions, not cycles; repeatable).  The
program also checks that both kernels wrote the same bytes.  It then compiles
each kernel file alone for each core to report its code bytes.

M0+ code runs on the qemu-m0plus-an385 target (QEMU's mps2-an385, a Cortex-M3
with 4 MiB of RAM, unaligned accesses trapping as on Armv6-M) instead of the
microbit's 16 KiB: the M0+ binary executes the same instructions there (Armv6-M
is a subset of Armv7-M), so the counts are the M0+ counts.

A core name ending in "/dsp" (qemu-m55/dsp) builds with -DEC_FAST_NO_MVE: the M55 running
the DSP path instead of its Helium (MVE) kernels, for comparison.

    python benchmarks/bench_kernels.py [--cores qemu-m4,...] [--opt -Os] [--json benchmarks/results/kernels.json]

Prints a table and writes JSON.  Never passes or fails.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edgecompile.ops.conv2d import conv_output_size  # noqa: E402
from edgecompile.ops.fast_kernels import (CONV_GROUP, LINEAR_GROUP, LINEAR_WORD_ORDER,  # noqa: E402
                                          conv_scratch_bytes, grouped_scratch_bytes, is_pointwise, pack_rows,
                                          pointwise_scratch_bytes)
from edgecompile.resources import resource_dir  # noqa: E402
from edgecompile.targets import count_instructions, elf_sizes, load_target, write_target_support  # noqa: E402

CORES = ["qemu-m0plus-an385", "qemu-m4", "qemu-m7", "qemu-m55/dsp", "qemu-m55"]
NO_MVE = "/dsp"  # core-name suffix: -DEC_FAST_NO_MVE
# (label, op, geometry): conv (in_c, in_h, in_w, out_c, k, stride, pad), linear (in, out),
# pools (channels, in_h, in_w, k, stride), depthwise "dw" (channels, in_h, in_w, multiplier, k, stride, pad)
LAYERS = [
    ("LeNet conv1 1->6 3x3 28x28", "conv", (1, 28, 28, 6, 3, 1, 0)),
    ("LeNet conv2 6->16 3x3 13x13", "conv", (6, 13, 13, 16, 3, 1, 0)),
    ("LeNet fc1 400->120", "linear", (400, 120)),
    ("LeNet fc2 120->84", "linear", (120, 84)),
    ("DS-CNN pointwise 64->64 1x1 25x5", "conv", (64, 25, 5, 64, 1, 1, 0)),
    ("MobileNetV2 expand 16->96 1x1 12x12", "conv", (16, 12, 12, 96, 1, 1, 0)),
    ("ResNet shortcut 16->32 1x1 s2 32x32", "conv", (16, 32, 32, 32, 1, 2, 0)),
    ("ResNet-8 16->16 3x3 32x32 p1", "conv", (16, 32, 32, 16, 3, 1, 1)),
    ("first layer 3->16 3x3 32x32 p1", "conv", (3, 32, 32, 16, 3, 1, 1)),
    ("FC 256->128", "linear", (256, 128)),
    ("low-rank U 16->120", "linear", (16, 120)),
    ("DS-CNN depthwise 64 3x3 25x5 p1", "dw", (64, 25, 5, 1, 3, 1, 1)),
    ("MobileNetV2 depthwise 96 3x3 s2 12x12 p1", "dw", (96, 12, 12, 1, 3, 2, 1)),
    ("MobileNet depthwise 32 3x3 32x32 p1", "dw", (32, 32, 32, 1, 3, 1, 1)),
    ("MobileNet depthwise 32 3x3 s2 48x48 p1", "dw", (32, 48, 48, 1, 3, 2, 1)),
    ("depthwise 16 5x5 16x16 p2", "dw", (16, 16, 16, 1, 5, 1, 2)),
    ("depthwise x2 8->16 3x3 12x12 p1", "dw", (8, 12, 12, 2, 3, 1, 1)),
    ("residual add 16x32x32", "add", (16 * 32 * 32,)),
    ("LeNet maxpool 2x2 6x26x26", "maxpool", (6, 26, 26, 2, 2)),
    ("LeNet maxpool 2x2 16x11x11", "maxpool", (16, 11, 11, 2, 2)),
    ("global avgpool 64x25x5", "avgpool", (64, 25, 5, (25, 5), (25, 5))),
    ("avgpool 2x2 16x32x32", "avgpool", (16, 32, 32, 2, 2)),
]
KERNEL_FILES = {"reference": ["ec_conv2d", "ec_conv2d_grouped", "ec_linear", "ec_pool2d", "ec_elementwise"],
                "fast": ["ec_conv2d_fast", "ec_conv2d_mve", "ec_depthwise_fast", "ec_depthwise_mve", "ec_linear_fast",
                         "ec_linear_mve", "ec_pool2d_fast", "ec_pool2d_mve", "ec_elementwise_mve", "ec_fast"]}


@dataclasses.dataclass
class Layer:
    label: str
    op: str
    macs: int
    decls: list[str]
    ref_call: str
    fast_call: str
    out_bytes: int
    scratch: int


def _array(name: str, ctype: str, values, align: bool = False) -> str:
    flat = ", ".join(str(int(v)) for v in np.asarray(values).reshape(-1))
    return f"static const {ctype} {name}[{np.size(values)}]{' EC_ALIGNED(4)' if align else ''} = {{{flat}}};"


def make_layer(i: int, label: str, op: str, g, rng) -> Layer:
    p = f"l{i}"
    if op == "dw":  # depthwise: ec_conv2d_grouped_s8 vs ec_conv2d_grouped_fast_s8 (logical weight order), what
        # export calls (the Helium kernel inside it on cores with MVE)
        c, in_h, in_w, mult, k, stride, pad = g
        oh, ow, out_c = conv_output_size(in_h, k, stride, pad, pad), conv_output_size(in_w, k, stride, pad, pad), c * mult
        x = rng.integers(-128, 128, size=c * in_h * in_w)
        w = rng.integers(-128, 128, size=(out_c, k * k))
        scratch = grouped_scratch_bytes(c, c, (out_c, oh, ow), (k, k), (stride, stride), (1, 1))
        args = (f"{p}_x, {c}, {in_h}, {in_w}, {p}_w, {p}_b, {p}_s, 1, {out_c}, {k}, {k}, {stride}, {stride}, {pad}, "
                f"{pad}, 0, 1, 1, {c}, OUT, {oh}, {ow}, 0, 127")
        decls = [_array(f"{p}_x", "int8_t", x, align=True), _array(f"{p}_w", "int8_t", w),
                 _array(f"{p}_b", "int32_t", rng.integers(-5000, 5000, size=out_c)),
                 _array(f"{p}_s", "int8_t", rng.integers(8, 12, size=out_c))]
        return Layer(label, op, out_c * oh * ow * k * k, decls, f"ec_conv2d_grouped_s8({args})",
                     f"ec_conv2d_grouped_fast_s8({args}, 1, ec_scratch.b)", out_c * oh * ow, scratch)
    if op in ("conv", "linear"):
        if op == "conv":
            in_c, in_h, in_w, out_c, k, stride, pad = g
            oh, ow = conv_output_size(in_h, k, stride, pad, pad), conv_output_size(in_w, k, stride, pad, pad)
            x = rng.integers(-128, 128, size=in_c * in_h * in_w)
            w = rng.integers(-128, 128, size=(out_c, in_c * k * k))
            packed = pack_rows(w, CONV_GROUP, paired_tails=True)
            scratch = conv_scratch_bytes((in_c, in_h, in_w), (out_c, oh, ow), (k, k), (stride, stride), (pad, pad))
            out_n = out_c * oh * ow
            macs = out_n * in_c * k * k
            geo = f"{in_c}, {in_h}, {in_w}"
            tail = f"{out_c}, {k}, {k}, {stride}, {stride}, {pad}, {pad}, 0, OUT, {oh}, {ow}, 0, 127"  # pads read 0
            ref = f"ec_conv2d_s8({p}_x, {geo}, {p}_w, {p}_b, {p}_s, 1, {tail})"
            fast = f"ec_conv2d_fast_s8({p}_x, {geo}, {p}_wp, {p}_b, {p}_s, 1, {tail}, 1, ec_scratch.b)"
            if is_pointwise((k, k), (pad, pad)):  # what export emits for a 1x1 conv without padding
                scratch = pointwise_scratch_bytes(in_c, out_c)
                fast = (f"ec_conv2d_1x1_fast_s8({p}_x, {geo}, {p}_wp, {p}_b, {p}_s, 1, {out_c}, {stride}, {stride}, "
                        f"OUT, {oh}, {ow}, 0, 127, 1, ec_scratch.b)")
        else:
            in_f, out_c = g
            x = rng.integers(-128, 128, size=in_f)
            w = rng.integers(-128, 128, size=(out_c, in_f))
            packed, scratch, out_n = pack_rows(w, LINEAR_GROUP, word_order=LINEAR_WORD_ORDER), 0, out_c
            macs = out_c * in_f
            ref = f"ec_linear_s8({p}_x, {in_f}, {p}_w, {p}_b, {p}_s, 1, {out_c}, OUT, 0, 127)"
            fast = f"ec_linear_fast_s8({p}_x, {in_f}, {p}_wp, {p}_b, {p}_s, 1, {out_c}, OUT, 0, 127, 1)"
        decls = [_array(f"{p}_x", "int8_t", x, align=True), _array(f"{p}_w", "int8_t", w),
                 _array(f"{p}_wp", "int8_t", packed, align=True),
                 _array(f"{p}_b", "int32_t", rng.integers(-5000, 5000, size=out_c)),
                 _array(f"{p}_s", "int8_t", rng.integers(8, 12, size=out_c))]  # per-channel, as export does by default
        return Layer(label, op, macs, decls, ref, fast, out_n, scratch)
    if op == "add":  # (elements,): two int8 operands, one multiplied by a 14-frac-bit constant, as export emits
        (n,) = g
        decls = [_array(f"{p}_a", "int8_t", rng.integers(-128, 128, size=n)),
                 _array(f"{p}_b", "int8_t", rng.integers(-128, 128, size=n))]
        args = f"{p}_a, {p}_b, OUT, {n}, 1, 3, 0, 11585, -11, 0, 1, 0, 0, 127"  # signed codes: zero points 0
        return Layer(label, op, n, decls, f"ec_add_s8({args})", f"ec_add_mve_s8({args})", n, 0)
    c, h, w_, k, stride = g
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    oh, ow = conv_output_size(h, kh, sh, 0, 0), conv_output_size(w_, kw, sw, 0, 0)
    x = rng.integers(-128, 128, size=c * h * w_)
    args = f"{p}_x, {c}, {h}, {w_}, {kh}, {kw}, {sh}, {sw}, 0, 0, OUT, {oh}, {ow}"
    extra = ", 1, 2, 0" if op == "avgpool" else ""
    name = "ec_maxpool2d" if op == "maxpool" else "ec_avgpool2d"
    return Layer(label, op, c * oh * ow * kh * kw, [_array(f"{p}_x", "int8_t", x)],
                 f"{name}_s8({args}{extra})", f"{name}_fast_s8({args}{extra})", c * oh * ow, 0)


def program(layers: list[Layer]) -> str:
    out_max = max(layer.out_bytes for layer in layers)
    scratch_max = max(max(layer.scratch for layer in layers), 4)
    lines = ['#include "ec_platform.h"'] + [f'#include "{f}.h"' for fs in KERNEL_FILES.values() for f in fs
                                             if f != "ec_fast"]
    lines += [f"static union {{ int32_t a; int8_t b[{out_max}]; }} ec_ref, ec_out;",
              f"static union {{ int32_t a; int8_t b[{scratch_max}]; }} ec_scratch;"]
    for layer in layers:
        lines += layer.decls
    lines += ["static int ec_same(int n)", "{", "    int i;", "    for (i = 0; i < n; ++i) {",
              "        if (ec_ref.b[i] != ec_out.b[i]) {", "            return 0;", "        }", "    }",
              "    return 1;", "}", "int main(void)", "{", "    int bad = 0;", "    (void)ec_scratch;",
              "    ec_platform_init();"]
    for layer in layers:
        lines += ["    ec_profile_mark();", f"    {layer.ref_call.replace('OUT', 'ec_ref.b')};",
                  "    ec_profile_mark();", f"    {layer.fast_call.replace('OUT', 'ec_out.b')};",
                  "    ec_profile_mark();", f"    bad += !ec_same({layer.out_bytes});"]
    lines += ['    ec_platform_puts(bad ? "MISMATCH" : "same");', "    ec_platform_exit(bad);", "    return 0;",
              "}"]
    return "\n".join(lines) + "\n"


def build(target, work: Path, source: str, opt: str, defines: tuple[str, ...] = ()) -> Path:
    runtime = resource_dir("runtime_c")
    common = work / "targets" / "common"
    (work / "bench.c").write_text(source)
    ld = work / "link.ld"
    from edgecompile.targets import render_linker_script
    ld.write_text(render_linker_script(target))
    srcs = [work / "bench.c"] + [runtime / f"{f}.c" for fs in KERNEL_FILES.values() for f in fs]
    srcs += [common / s for s in target.platform_sources("semihost")]
    elf = work / f"{target.name}.elf"
    cmd = [target.compiler, *target.machine_flags, opt, *defines, "-std=c99", "-Wall", "-Wextra", "-Werror",
           "-ffunction-sections", "-fdata-sections", f"-I{runtime}", f"-I{common}", *map(str, srcs),
           "-T", str(ld), "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", "-lm", "-o", str(elf)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return elf


def code_bytes(target, opt: str, defines: tuple[str, ...] = ()) -> dict[str, int]:
    """Text + rodata bytes of each kernel file compiled alone for the core."""
    runtime = resource_dir("runtime_c")
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in (f for fs in KERNEL_FILES.values() for f in fs):
            obj = Path(tmp) / f"{f}.o"
            subprocess.run([target.compiler, *target.machine_flags, opt, *defines, "-std=c99", f"-I{runtime}", "-c",
                            str(runtime / f"{f}.c"), "-o", str(obj)], check=True)
            s = elf_sizes(obj)
            sizes[f] = s["text"] + s["rodata"]
    return sizes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", default=",".join(CORES))
    ap.add_argument("--opt", default="-Os", help="optimisation (the QEMU targets' default is -Os)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "kernels.json"))
    ap.add_argument("--only", default="", help="comma-separated substrings of layer labels")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    chosen = [entry for entry in LAYERS if not args.only or any(s in entry[0] for s in args.only.split(","))]
    layers = [make_layer(i, *entry, rng) for i, entry in enumerate(chosen)]
    source = program(layers)
    results = {"unit": "instructions (not cycles)", "opt": args.opt, "cores": {}}
    for core in args.cores.split(","):
        target = load_target(core.removesuffix(NO_MVE))
        defines = ("-DEC_FAST_NO_MVE",) if core.endswith(NO_MVE) else ()
        with tempfile.TemporaryDirectory(prefix="ec-kbench-") as tmp:
            work = Path(tmp)
            write_target_support(work, [])
            shutil.rmtree(work / "targets" / "common" / "cortex_m" / "__pycache__", ignore_errors=True)
            elf = build(target, work, source, args.opt, defines)
            run = count_instructions(target, elf, work, timeout=300)
        marks = run.marks
        if run.exit_code != 0 or len(marks) != 3 * len(layers):
            print(f"{core}: run failed (exit {run.exit_code}): {run.output[-500:]}")
            continue
        rows = []
        for j, layer in enumerate(layers):
            ref, fast = marks[3 * j + 1] - marks[3 * j], marks[3 * j + 2] - marks[3 * j + 1]
            rows.append({"layer": layer.label, "op": layer.op, "macs": layer.macs, "reference": ref, "fast": fast,
                         "reference_per_mac": round(ref / layer.macs, 3), "fast_per_mac": round(fast / layer.macs, 3),
                         "speedup": round(ref / fast, 2)})
        results["cores"][core] = {"layers": rows, "code_bytes": code_bytes(target, args.opt, defines)}
    print_table(results)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def print_table(results: dict) -> None:
    cores = list(results["cores"])
    print(f"instructions per MAC (per window element for pooling, per element for add), reference -> fast, "
          f"{results['opt']}")
    head = f"{'layer':36s} {'MACs':>9s}" + "".join(f" {c.replace('qemu-', ''):>17s}" for c in cores)
    print(head)
    print("-" * len(head))
    for j, row in enumerate(results["cores"][cores[0]]["layers"] if cores else []):
        cells = []
        for c in cores:
            r = results["cores"][c]["layers"][j]
            cells.append(f" {r['reference_per_mac']:6.2f} -> {r['fast_per_mac']:5.2f}  ")
        print(f"{row['layer']:36s} {row['macs']:9d}" + "".join(cells))
    print("\ncode bytes (text + rodata) of each kernel file, compiled alone")
    files = [f for fs in KERNEL_FILES.values() for f in fs]
    print(f"{'file':18s}" + "".join(f" {c.replace('qemu-', ''):>8s}" for c in cores))
    for f in files:
        print(f"{f:18s}" + "".join(f" {results['cores'][c]['code_bytes'][f]:8d}" for c in cores))


if __name__ == "__main__":
    sys.exit(main())

"""Recurrent gates whose W and U are stored sparse or packed (ec_dual_linear_sparse_s8,
ec_gated_linear_sparse_s8 in runtime_c/ec_sparse.c) against the simulator, byte for byte.

Kernel level: the gate cases of tests/kernels/gen_vectors.py (lengths and rows not multiples of
4 or 8, every rounding case, output shifts of each sign, and the edge cases whose sums sit at the
proven int32 bound and saturate at both ends) with their weights cut to 8, 4 or 2 bits by an
arithmetic shift (-128 becomes the field minimum, -8 or -2; no |w| grows, so the cases' bounds
still hold), the random ones given small biases and an output shift that leaves most outputs
unsaturated (so that a wrong product shows), each matrix in a storage its width allows.  A
generated C harness holds the cases and the simulator's outputs and checks every output byte on
the host under ASan/UBSan and on qemu-m4 and qemu-m55 (the DSP path of 4-bit rows).  Model level:
LSTM, GRU and FastGRNN exported with --bits 4 and 2, and pruned, are bit-exact over many
sequences, store less, and say so in the layer table; a packed GRU streams.
"""
from __future__ import annotations

import itertools
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_run, require_tool
from edgecompile import ops, packing, sparse_format
from edgecompile.export import ExportSettings, export
from edgecompile.frontend import load_module
from edgecompile.ops.sparse import DESCRIPTOR_WORDS
from edgecompile.resources import resource_dir
from edgecompile.targets import write_target_support
from edgecompile.verify import verify

KERNELS_DIR = Path(__file__).resolve().parent / "kernels"
sys.path.insert(0, str(KERNELS_DIR))
import gen_vectors  # noqa: E402

STORAGES = {8: ("dense", "bitmap", "delta"), 4: ("packed", "bitmap", "delta", "dense"),
            2: ("packed", "bitmap", "delta", "dense")}
SANITIZE = "-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all"

MAKEFILE = """TARGET ?= host
include targets/$(TARGET)/target.mk
BUILD ?= build/$(TARGET)
PROG := $(BUILD)/$(EC_EXE)
EC_PROG = $(abspath $(PROG))
SRCS := gates.c runtime/ec_sparse.c
CFLAGS_EC := -std=c99 -Wall -Wextra -Wpedantic -Werror -Iruntime -Itargets/common
EXTRA_CFLAGS ?=
.PHONY: run
$(PROG): $(SRCS) $(EC_PLATFORM_SRCS)
\t@mkdir -p $(BUILD)
\t$(EC_CC) $(EC_CFLAGS) $(CFLAGS_EC) $(EXTRA_CFLAGS) -o $@ $(SRCS) $(EC_PLATFORM_SRCS) $(EC_LDFLAGS) $(EC_LDLIBS)
run: $(PROG)
\t$(EC_RUN)
"""

HARNESS_MAIN = r"""
static char *ec_decimal(char *p, long v)
{
    char digits[12];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0) {
        *p++ = digits[--n];
    }
    return p;
}

int main(void)
{
    char line[64] = "gates: ";
    char *p;
    long passed = 0, failed = 0;
    int i;
    ec_platform_init();
    for (i = 0; i < (int)(sizeof(ec_cases) / sizeof(ec_cases[0])); ++i) {
        int8_t out[EC_MAX_OUT + 16];
        int j, same = 1;
        for (j = 0; j < EC_MAX_OUT + 16; ++j) {
            out[j] = 0x5a;
        }
        ec_cases[i](out);
        for (j = 0; j < ec_outs[i]; ++j) {
            same &= out[j] == ec_expected[i][j];
        }
        for (j = ec_outs[i]; j < EC_MAX_OUT + 16; ++j) {
            same &= out[j] == 0x5a; /* nothing written past the output */
        }
        if (same) {
            ++passed;
        } else {
            ++failed;
        }
    }
    p = ec_decimal(line + 7, passed);
    memcpy(p, " passed, ", 9);
    p = ec_decimal(p + 9, failed);
    memcpy(p, " failed", 8);
    ec_platform_puts(line);
    ec_platform_exit(failed != 0);
    return 0;
}
"""


def _c_array(ctype: str, name: str, values) -> str:
    values = np.asarray(values).reshape(-1).tolist() or [0]  # C has no empty arrays
    return f"static const {ctype} {name}[{len(values)}] = {{{', '.join(str(int(v)) for v in values)}}};"


def _descriptor(lines: list[str], name: str, w: np.ndarray, storage: str, bits: int) -> str:
    """Writes matrix w in `storage` and its ec_weights_s8; returns the descriptor's name."""
    fields = [f"EC_{storage.upper()}"] + ["0"] * 7
    if storage == "dense":
        lines.append(_c_array("int8_t", f"{name}_dense", w))
        fields[1] = f"{name}_dense"
    elif storage == "packed":
        lines.append(_c_array("uint8_t", f"{name}_packed", packing.pack(w, bits)))  # exactly its bytes (ASan)
        fields[6], fields[7] = f"{name}_packed", str(packing.field_bits(bits))
    else:
        enc = sparse_format.encode_bitmap(w) if storage == "bitmap" else sparse_format.encode_delta(w)
        types = {np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t", np.dtype(np.int8): "int8_t"}
        for key, arr in enc.arrays.items():
            lines.append(_c_array(types[arr.dtype], f"{name}_{key}", arr))
            fields[{"mask": 2, "counts": 3, "gaps": 4, "values": 5}[key]] = f"{name}_{key}"
    lines.append(f"static const ec_weights_s8 {name} = {{{', '.join(fields)}}};")
    return name


def _cut(case: dict, bits: int) -> dict:
    """The case with its weights shifted down to `bits` bits (|w| never grows: the bounds still hold)
    and no table (the compressed kernels write the gate's value), its expected output re-simulated."""
    w = np.asarray(case["weight"], np.int64) >> (8 - bits)
    case = dict(case, weight=w.astype(np.int8), groups=0)
    simulate = gen_vectors.simulate_dual if case["op"] == "dual" else gen_vectors.simulate_gated
    return dict(case, output=simulate(case))


def _unsaturated(case: dict, rng) -> dict:
    """The case with small biases and the smallest output shift that saturates few outputs, so that
    its outputs show every product (the gen_vectors cases often sit at a clamp)."""
    bias = np.asarray(case["bias"], np.int64)
    case = dict(case, bias=np.sign(bias) * (np.abs(bias) % 1024), act_min=-128, act_max=127)
    simulate = gen_vectors.simulate_dual if case["op"] == "dual" else gen_vectors.simulate_gated
    for shift in range(0, 31):
        trial = dict(case, scale_shift=shift)
        y = simulate(trial)
        if np.mean(np.abs(y) >= 127) <= 0.2:
            break
    return dict(trial, output=y)


def gate_cases(count: int = 400) -> list[tuple[dict, int, str, str]]:
    """(case, bits, storage of W, storage of U): the edge gates (sums at the bound, saturating) and
    random ones (mostly unsaturated) at each width, half of the sub-8-bit matrices packed."""
    rng = np.random.default_rng(23)
    raw = gen_vectors.dual_edge_cases() + gen_vectors.gated_edge_cases()
    edges = len(raw)
    while len(raw) < count:
        make = gen_vectors.dual_case if rng.random() < 0.5 else gen_vectors.gated_case
        case = make(rng, 600)
        if case is not None:
            raw.append(case)
    cases = []
    for i, case in enumerate(raw):
        bits = (8, 4, 2)[i % 3]
        storages = STORAGES[bits]
        storage_a, storage_b = (storages[0] if rng.random() < 0.5 else str(rng.choice(storages)) for _ in "ab")
        cut = _cut(case, bits)
        cases.append((cut if i < edges else _unsaturated(cut, rng), bits, storage_a, storage_b))
    return cases


def write_harness(path: Path, cases) -> None:
    lines = ['#include <string.h>', '#include "ec_platform.h"', '#include "ec_sparse.h"', ""]
    max_out = max(c["out_c"] for c, *_ in cases)
    for i, (c, bits, sa, sb) in enumerate(cases):
        na, nb, out = c["in_c"], c["in_h"], c["out_c"]
        w = np.asarray(c["weight"], np.int8)
        wa = _descriptor(lines, f"c{i}_wa", w[:out * na].reshape(out, na), sa, bits)
        wb = _descriptor(lines, f"c{i}_wb", w[out * na:].reshape(out, nb), sb, bits)
        x = np.asarray(c["input"], np.int8)
        lines += [_c_array("int8_t", f"c{i}_a", x[:na]), _c_array("int8_t", f"c{i}_b", x[na:na + nb]),
                  _c_array("int32_t", f"c{i}_bias", c["bias"]),
                  _c_array("int8_t", f"c{i}_expected", c["output"])]
        lo, hi, s = c["act_min"], c["act_max"], c["scale_shift"]
        if c["op"] == "dual":
            call = (f"ec_dual_linear_sparse_s8(c{i}_a, {na}, &{wa}, {c['stride_h']}, c{i}_b, {nb}, &{wb}, "
                    f"{c['stride_w']}, c{i}_bias, {out}, {s}, out, {lo}, {hi});")
        else:
            lines.append(_c_array("int8_t", f"c{i}_g", x[na + nb:]))
            call = (f"ec_gated_linear_sparse_s8(c{i}_a, {na}, &{wa}, {c['stride_h']}, c{i}_bias, c{i}_b, {nb}, "
                    f"&{wb}, c{i}_bias + {out}, {c['pad_top']}, c{i}_g, {c['stride_w']}, {out}, {s}, out, "
                    f"{lo}, {hi});")
        lines.append(f"static void c{i}(int8_t *out) {{ {call} }}")
    n = len(cases)
    lines += [f"#define EC_MAX_OUT {max_out}",
              f"static void (*const ec_cases[{n}])(int8_t *) = {{{', '.join(f'c{i}' for i in range(n))}}};",
              f"static const int ec_outs[{n}] = {{{', '.join(str(c['out_c']) for c, *_ in cases)}}};",
              f"static const int8_t *const ec_expected[{n}] = {{{', '.join(f'c{i}_expected' for i in range(n))}}};",
              HARNESS_MAIN]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def gate_project(tmp_path_factory):
    cases = gate_cases()
    project = tmp_path_factory.mktemp("gate-storage")
    shutil.copytree(resource_dir("runtime_c"), project / "runtime")
    (project / "Makefile").write_text(MAKEFILE)
    write_harness(project / "gates.c", cases)
    write_target_support(project, ["host", "qemu-m4", "qemu-m55"])
    return project, cases


def _run(project: Path, target: str, extra: str = "") -> str:
    return make_run(project, target, target, extra)


def test_gate_cases_cover_the_packing_boundaries_and_field_minimums():
    cases = gate_cases()
    packed = [(c, bits) for c, bits, sa, sb in cases if "packed" in (sa, sb)]
    assert {bits for _, bits in packed} == {4, 2}
    assert any(c["in_c"] % 2 or c["in_h"] % 2 for c, bits in packed if bits == 4)  # a half-filled last byte
    assert any(c["in_c"] % 4 or c["in_h"] % 4 for c, bits in packed if bits == 2)
    weights = {bits: np.concatenate([c["weight"] for c, b, *_ in cases if b == bits]) for bits in (4, 2)}
    assert weights[4].min() == -8 and weights[4].max() == 7 and weights[2].min() == -2 and weights[2].max() == 1
    both_ends = [c for c, *_ in cases if {-128, 127} <= set(np.asarray(c["output"]).tolist())]
    assert both_ends  # outputs saturated at both ends
    assert {(sa, sb) for c, b, sa, sb in cases if c["op"] == "gated" and b == 4} >= {("packed", "packed")}
    assert {sa for c, b, sa, sb in cases if c["op"] == "gated"} >= {"bitmap", "delta", "packed", "dense"}


@pytest.mark.slow
def test_compressed_gate_kernels_match_the_simulator_under_sanitizers(gate_project):
    require_tool("gcc", "make")
    project, cases = gate_project
    assert f"gates: {len(cases)} passed, 0 failed" in _run(project, "host", SANITIZE)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("target", ["qemu-m4", "qemu-m55"])
def test_compressed_gate_kernels_match_the_simulator_on_cortex_m(target, gate_project):
    """The DSP path of 4-bit packed rows (8 weights a word) runs on both; the M0+'s is the host's."""
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    project, cases = gate_project
    assert f"gates: {len(cases)} passed, 0 failed" in _run(project, target)


# --------------------------------------------------------------------------- models


def _seq_model(kind: str, prune: float = 0.0):
    from test_recurrent import SeqModel
    torch.manual_seed(0)
    model = SeqModel(kind).eval()
    if prune:  # zero the smallest weights of W and U, as pruning leaves them
        with torch.no_grad():
            for name, p in model.rnn.named_parameters():
                if p.dim() == 2:
                    p[p.abs() < p.abs().flatten().quantile(prune)] = 0
    return model


def export_cell(kind: str, out: Path, bits: str = "8", prune: float = 0.0, vectors: int = 256, sparse: str = "auto"):
    calib = np.random.default_rng(0).standard_normal((64, 8, 8)).astype(np.float32)
    return export(ExportSettings(out / "m.pt", out / f"{kind}_{bits}_{prune}_{sparse}", calib, bits=bits,
                                 sparse=sparse, loaded=load_module(_seq_model(kind, prune), (8, 8), kind.lower()),
                                 vectors=vectors))


def _cell(result):
    rec = next(n for n in result.compiled.graph.nodes if isinstance(n, ops.Recurrent))
    gates = [n for n in rec.body.nodes if "weight_a" in n.qparams]
    return rec, gates


def _flash_one_weight_per_byte(rec, gates) -> int:
    """Recurrent.weight_bytes with the gates' arrays one int8 weight per byte, as cells stored them
    before packing (each distinct array of 64 bytes or more once, as there)."""
    seen, total = set(), 0
    for node in rec.body.nodes:
        for value in (ops.Op.stored_arrays(node) if node in gates else node.stored_arrays()):
            key = (value.dtype.str, value.shape, value.tobytes()) if value.nbytes >= 64 else object()
            if key not in seen:
                seen.add(key)
                total += value.nbytes
    return total


@pytest.mark.slow
@pytest.mark.parametrize("kind,bits", [("LSTM", 4), ("LSTM", 2), ("GRU", 4), ("GRU", 3), ("GRU", 2), ("FastGRNN", 4)])
def test_packed_cells_bit_exact_under_sanitizers_and_smaller(kind, bits, tmp_path):
    require_tool("gcc", "make")
    result = export_cell(kind, tmp_path, str(bits))
    rec, gates = _cell(result)
    assert gates and all(type(g) in (ops.SparseDualLinear, ops.SparseGatedDualLinear) for g in gates)
    assert any(isinstance(g, ops.GatedDualLinear) for g in gates) == (kind == "GRU")  # the n gate packed too
    for g in gates:
        assert {g.attrs["format_a"], g.attrs["format_b"]} == {"packed"}
        stored_weights = [a for a in g.stored_arrays() if a.dtype == np.uint8]  # W then U, packed
        for key, stored in zip(("weight_a", "weight_b"), stored_weights):
            rows, cols = g.qparams[key].shape
            assert stored.dtype == np.uint8 and stored.size == rows * packing.row_bytes(cols, bits)
    saved = sum(g.qparams[k].size - g.qparams[k].shape[0] * packing.row_bytes(g.qparams[k].shape[1], bits)
                for g in gates for k in ("weight_a", "weight_b"))
    unpacked = _flash_one_weight_per_byte(rec, gates)
    if kind == "FastGRNN":
        saved //= 2  # its two gates share W and U, stored once
    descriptors = 2 * 4 * DESCRIPTOR_WORDS * len(gates)  # an ec_weights_s8 per matrix
    # the flash the layer table and the summary report: down by exactly the packing, up by the descriptors
    assert rec.weight_bytes() == unpacked - saved + descriptors and saved >= unpacked // 5
    text = (result.out_dir / "src" / f"{result.name}.c").read_text()
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4}
    emitted = sum(sizes[t] * int(n) for t, n in re.findall(r"static const (\w+) \w+\[(\d+)\]", text))
    emitted += 4 * DESCRIPTOR_WORDS * len(re.findall(r"static const ec_weights_s8 \w+ =", text))
    assert emitted == result.summary["weight_bytes"]  # the summary counts what the C stores
    assert "EC_PACKED" in text and ("ec_gated_linear_sparse_s8" in text) == (kind == "GRU")
    assert "W/U packed" in (result.out_dir / "report.md").read_text()  # the layer table says how they are stored
    v = verify(result.out_dir, sanitize=True)
    assert v.total == 256 and v.ok, v.first_mismatch


@pytest.mark.slow
@pytest.mark.parametrize("kind,bits", [("LSTM", "8"), ("GRU", "8"), ("GRU", "4")])
def test_pruned_cells_store_sparse_gates_bit_exact(kind, bits, tmp_path):
    require_tool("gcc", "make")
    result = export_cell(kind, tmp_path, bits, prune=0.85)
    rec, gates = _cell(result)
    storages = {g.attrs.get(k, "dense") for g in gates for k in ("format_a", "format_b")}
    assert storages & {"bitmap", "delta"}, storages
    if kind == "GRU":  # the n gate is compressed too
        n = next(g for g in gates if isinstance(g, ops.GatedDualLinear))
        assert isinstance(n, ops.SparseGatedDualLinear) and {n.attrs["format_a"], n.attrs["format_b"]} & {"bitmap",
                                                                                                       "delta"}
    dense = export_cell(kind, tmp_path, bits, prune=0.85, vectors=4, sparse="off")
    assert _cell(dense)[0].weight_bytes() > rec.weight_bytes()
    assert dense.summary["weight_bytes"] > result.summary["weight_bytes"]
    v = verify(result.out_dir, sanitize=True)
    assert v.total == 256 and v.ok, v.first_mismatch


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("kind,bits,prune", [("GRU", "4", 0.0), ("LSTM", "2", 0.0), ("GRU", "8", 0.85)])
def test_compressed_cells_bit_exact_on_cortex_m4(kind, bits, prune, tmp_path):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    result = export_cell(kind, tmp_path, bits, prune=prune, vectors=64)
    assert any(type(g) is not ops.DualLinear and type(g) is not ops.GatedDualLinear for g in _cell(result)[1])
    v = verify(result.out_dir, target="qemu-m4")
    assert v.total == 64 and v.ok, v.first_mismatch

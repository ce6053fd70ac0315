"""Zero points (value = (q - z) * 2^-f, numerics.py): the format rules, and every op that writes or
reads a tensor with one, bit-exact in C: concatenations, channel shuffles, tables, average pools."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from edgecompile import numerics, ops
from edgecompile.formats import TensorRange, format_for
from edgecompile.verify import verify
from test_ops import compile_and_check, const, conv_w, save_model


@pytest.mark.parametrize("lo,hi,f", [(0.0, 1.0, 7), (-1.0, 0.0, 7), (-0.375, 3.0, 6), (-1.0, 1.0, 6), (-3.0, 0.5, 6),
                                     (0.0, 0.0, 7), (-2.0 ** -9, 2.0 ** -9, 15)])
def test_span_format_holds_the_interval_and_zero(lo, hi, f):
    """The span rule: the largest f whose codes (with z placed by zero_point_for_interval) hold
    [lo, hi] and 0; one-sided intervals start or end at the extreme code."""
    assert numerics.frac_bits_for_span(lo, hi, 8) == f
    z = numerics.zero_point_for_interval(lo, hi, f, 8)
    assert -128 <= z <= 127
    for v in (lo, hi, 0.0):
        q = int(numerics.quantize_float(v, f, -(1 << 40), 1 << 40)) + z
        assert -128 <= q <= 127, (v, q)
    if lo == 0.0:
        assert z == -128
    elif hi == 0.0:
        assert z == 127
    # one bit finer does not fit: some end clips for every zero point
    lo_code = min(int(numerics.quantize_float(lo, f + 1, -(1 << 40), 1 << 40)), 0)
    hi_code = max(int(numerics.quantize_float(hi, f + 1, -(1 << 40), 1 << 40)), 0)
    assert hi_code - lo_code > 255 or (lo == hi == 0.0)


def test_span_format_of_a_relu_range_is_the_unsigned_code():
    """A never-negative range gets what an unsigned code gets: the 9-bit signed f, z = -128."""
    for hi in (0.3, 1.0, 5.9, 6.0, 6.1, 200.0):
        assert numerics.frac_bits_for_span(0.0, hi, 8) == numerics.frac_bits_for_interval(0.0, hi, 9)


@pytest.mark.parametrize("z,k,expected", [(-128, 7, -128), (-100, 2, -100), (-99, 1, -98), (-99, 2, -100),
                                          (127, 1, 126), (126, 2, 124), (5, 8, 0), (-3, 0, -3), (100, 7, 0)])
def test_nearest_multiple_code(z, k, expected):
    """A conv whose output shift is a left shift by k folds z * 2^-k into its bias: z moves to a
    multiple of 2^k within int8 (ties up, -128 and 0 always are)."""
    assert numerics.nearest_multiple_code(z, k, 8) == expected


def test_zero_point_formats_by_method():
    rng = np.random.default_rng(0)
    skewed = TensorRange.of(np.concatenate([rng.exponential(1.0, 4000) - 0.375, [-0.375]]))
    for method in ("minmax", "mse", "sigma", "percentile"):
        f_sym, z_sym = format_for(skewed, 8, method)
        f, z = format_for(skewed, 8, method, zero_point=True)
        assert z_sym == 0 and f >= f_sym and -128 <= z < 0, (method, f, z, f_sym)  # the short tail: below 0
    f, z = format_for(skewed, 8, "minmax", zero_point=True)
    q = numerics.quantize_float(skewed.sample, f, -128 - z, 127 - z) + z
    assert np.allclose(numerics.dequantize(q, f, z), skewed.sample, atol=2.0 ** -(f + 1))  # minmax: no clipping


def _zero_pointed(graph, names):
    return {t: graph.tensors[t].zero_point for t in names}


def test_concat_of_relu_branches_is_unsigned_and_branches_of_any_zero_point_join(tmp_path, rng):
    """Fire-module concatenations: ReLU branches join as unsigned codes with no rescale; signed
    branches with their own zero points and formats join into one zero point, with saturation."""
    nodes = [helper.make_node("Conv", ["x", "Wa", "Ba"], ["a"]), helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Conv", ["x", "Wb", "Bb"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["b"], ["rb"]),
             helper.make_node("Concat", ["ra", "rb"], ["u"], axis=1),
             helper.make_node("Conv", ["u", "Wc", "Bc"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["u", "Wd", "Bd"], ["d"]),
             helper.make_node("Concat", ["c", "d"], ["s"], axis=1),
             helper.make_node("Conv", ["s", "We"], ["y"])]
    inits = [const("Wa", conv_w(rng, 3, 2, 1)), const("Ba", rng.standard_normal(3)),
             const("Wb", conv_w(rng, 4, 2, 3)), const("Bb", rng.standard_normal(4)),
             const("Wc", conv_w(rng, 3, 7, 3)), const("Bc", 1.5 + rng.random(3)),
             const("Wd", conv_w(rng, 2, 7, 1) * 0.1), const("Bd", -0.3 - rng.random(2) * 0.1),
             const("We", conv_w(rng, 4, 5, 1))]
    path = save_model(tmp_path, "fire", nodes, [1, 2, 5, 6], inits)
    result = compile_and_check(tmp_path, path, (2, 5, 6), rng, min_sqnr=30.0)
    g = result.compiled.graph
    first, second = (n for n in g.nodes if isinstance(n, ops.Concat))
    assert set(_zero_pointed(g, first.inputs + first.outputs).values()) == {-128}
    assert first.qattrs["zeros"] == [-128, -128] and first.qattrs["zero_y"] == -128
    zeros = second.qattrs["zeros"] + [second.qattrs["zero_y"]]
    assert all(zeros) and len(set(zeros)) >= 2, zeros  # different zero points meet
    assert max(second.qattrs["shifts"]) > 0  # and a branch is rescaled
    wild = (rng.standard_normal((32, 2, 5, 6)) * 5).astype(np.float32)  # values beyond calibration saturate
    np.save(tmp_path / "wild.npy", wild)
    assert verify(result.out_dir, inputs=tmp_path / "wild.npy").ok


def test_channel_shuffle_keeps_unsigned_codes(tmp_path, rng):
    """Reshape - transpose - reshape moves codes: a ReLU output shuffled into a padded conv stays unsigned."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], group=2), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "s5"], ["v"]),
             helper.make_node("Transpose", ["v"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "s4"], ["w"]),
             helper.make_node("Conv", ["w", "Wd"], ["y"], group=6, pads=[1, 1, 1, 1])]
    inits = [const("W", conv_w(rng, 6, 2, 1)), const("s5", [1, 2, 3, 4, 5], np.int64),
             const("s4", [1, 6, 4, 5], np.int64), const("Wd", conv_w(rng, 6, 1, 3))]
    path = save_model(tmp_path, "shuffle", nodes, [1, 4, 4, 5], inits)
    result = compile_and_check(tmp_path, path, (4, 4, 5), rng)
    g = result.compiled.graph
    shuffle = [n.outputs[0] for n in g.nodes if n.keeps_codes]
    assert len(shuffle) == 3 and set(_zero_pointed(g, shuffle).values()) == {-128}


@pytest.mark.slow
def test_hardswish_table_writes_and_reads_zero_points(tmp_path, rng):
    """An h-swish output (never below -0.375) gets a zero point that gives most codes to the positive
    side; the next table indexes codes with it; the C equals the simulator."""
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["c"], ["h"]),
             helper.make_node("Conv", ["h", "Wd"], ["d"], group=4, pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["d"], ["e"]), helper.make_node("Sigmoid", ["e"], ["s"]),
             helper.make_node("Conv", ["s", "Wy"], ["y"])]
    inits = [const("W", conv_w(rng, 4, 3, 3) * 3), const("B", rng.standard_normal(4)),
             const("Wd", conv_w(rng, 4, 1, 3)), const("Wy", conv_w(rng, 3, 4, 1))]
    path = save_model(tmp_path, "hswish", nodes, [1, 3, 6, 6], inits)
    result = compile_and_check(tmp_path, path, (3, 6, 6), rng)
    g = result.compiled.graph
    luts = [n for n in g.nodes if isinstance(n, ops.Lut)]
    assert len(luts) == 3
    h = g.tensors[luts[0].outputs[0]]
    assert -128 < h.zero_point < -64, h.zero_point  # z of -0.375 * 2^f above the bottom code
    assert g.tensors[luts[1].inputs[0]].zero_point != 0  # the depthwise conv's output, read by a table


@pytest.mark.parametrize("output", ["unsigned", "signed", "int16"])
@pytest.mark.slow
def test_average_pool_of_unsigned_codes_as_the_model_output_does_not_clip(output, tmp_path, rng, monkeypatch):
    """A ReLU conv read by the final average pool: an int8 output is unsigned too (a range of one
    sign); kept signed, it takes one frac bit fewer than its input, since unsigned codes span
    0..255 (it used to clip at half the input's range: k = -1, offset 64); an int16 output
    (--output-bits auto) is signed and finer.  The C is bit-exact."""
    import torch
    from models import save_program

    from edgecompile import simulate
    from edgecompile.export import ExportSettings, export
    from edgecompile.verify import verify

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                                torch.nn.Flatten()).eval()
    with torch.no_grad():
        model[0].bias.fill_(2.0)
    x = (rng.standard_normal((64, 1, 6, 6)) * 0.1).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)
    path = save_program(model, (1, 6, 6), tmp_path / "pool.pt2")
    if output == "signed":
        from edgecompile.passes import quantize
        monkeypatch.setattr(quantize, "output_gains", lambda *args: False)
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64,
                                   output_bits=16 if output == "int16" else 8))
    g = result.compiled.graph
    pool = next(n for n in g.nodes if isinstance(n, ops.AvgPool2d))
    assert g.tensors[pool.inputs[0]].zero_point == -128
    if output == "unsigned":
        assert g.tensors[pool.outputs[0]].zero_point == -128 and pool.qattrs["scale_shift"] >= 0
    elif output == "signed":
        assert g.tensors[pool.outputs[0]].zero_point == 0
        assert pool.qattrs["scale_shift"] == -1 and pool.qattrs["offset"] == 64  # 0 - (-128) * 2^-1
    else:
        assert g.tensors[pool.outputs[0]].zero_point == 0 and g.tensors[pool.outputs[0]].bits == 16
        assert pool.qattrs["scale_shift"] >= 7  # 15 bits for the range 8 bits held in 8 (unsigned)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    step = 2.0 ** -g.tensors[pool.outputs[0] if output != "int16" else pool.inputs[0]].frac_bits  # the coarser
    assert np.max(np.abs(simulate.run_dequantized(g, x) - reference)) <= step
    v = verify(result.out_dir)
    assert v.ok and v.total == 64


@pytest.mark.slow
def test_an_output_of_one_sign_gets_a_zero_point_in_the_c_api(tmp_path, rng):
    """All-negative outputs (a conv with a negative bias, then the global average pool): the output
    takes a zero point and one frac bit more than a signed code, without clipping what calibration
    saw; NAME.h says so, the float helper uses it, and the C is bit-exact.  A symmetric output
    keeps zero point 0."""
    import torch
    from models import save_program

    from edgecompile import simulate
    from edgecompile.export import ExportSettings, export

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(3, 4, 1),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    with torch.no_grad():
        model[2].weight.mul_(0.2)
        model[2].bias.fill_(-2.0)
    x = rng.standard_normal((64, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)
    path = save_program(model, (2, 6, 6), tmp_path / "neg.pt2")
    result = export(ExportSettings(path, tmp_path / "out", tmp_path / "calib.npy", vectors=64, name="neg",
                                   output_bits=8))  # an int16 output needs no zero point
    g = result.compiled.graph
    out = g.tensors[g.outputs[0]]
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    assert reference.max() < 0 and out.zero_point > 0
    assert out.frac_bits == numerics.frac_bits_for_interval(reference.min(), 0.0, 8) + 1
    y = simulate.run_dequantized(g, x)
    assert np.max(np.abs(y - reference)) <= 2.0 ** -out.frac_bits  # no clipping, a fine step
    header = (result.out_dir / "src" / "neg.h").read_text()
    assert f"#define NEG_OUTPUT_ZERO_POINT {out.zero_point}\n" in header
    assert "NEG_OUTPUT_ZERO_POINT" in (result.out_dir / "src" / "neg_io.c").read_text()
    v = verify(result.out_dir)
    assert v.ok and v.total == 64
    symmetric = export(ExportSettings(path, tmp_path / "sym", tmp_path / "calib.npy", vectors=8, name="sym",
                                      asymmetric=False))
    sg = symmetric.compiled.graph
    assert sg.tensors[sg.outputs[0]].zero_point == 0
    assert "#define SYM_OUTPUT_ZERO_POINT 0\n" in (symmetric.out_dir / "src" / "sym.h").read_text()

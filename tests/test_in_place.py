"""Layers that write their output over the input they replace (--memory-plan in-place, also part of
auto): the access-order rule, the plans built with it, and the C that runs those plans bit-exactly
on every kind of kernel (portable, DSP, Helium)."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from edgecompile import access_order
from edgecompile.passes import plan_memory as planner
from edgecompile.verify import verify
from conftest import export_example, random_example, require_tool


# -- the rule, against literal byte-level runs of the kernels' step orders ------------------------
# Each run keeps the input and output in one byte array, the output `gap` bytes below the input,
# and does exactly what the kernel does per step: read what the step needs, then write.

def _windows(shape_in, shape_out, kernel, stride, pads):
    (_, ih, iw), (_, oh, ow) = shape_in, shape_out
    out = []
    for oy in range(oh):
        for ox in range(ow):
            taps = [(oy * stride - pads + ky, ox * stride - pads + kx) for ky in range(kernel) for kx in range(kernel)]
            out.append([(iy, ix) for iy, ix in taps if 0 <= iy < ih and 0 <= ix < iw])
    return out


def _run_conv(memory, gap, shape_in, shape_out, kernel, stride, pads, weights):
    """ec_conv2d_fast_s8's order: a pair of pixels per step, all channels gathered, then written."""
    (c, ih, iw), (oc, oh, ow) = shape_in, shape_out
    x0, windows = gap, _windows(shape_in, shape_out, kernel, stride, pads)
    for p0 in range(0, oh * ow, 2):
        pixels = [p for p in (p0, p0 + 1) if p < oh * ow]
        gathered = {p: [[int(memory[x0 + ch * ih * iw + iy * iw + ix]) for iy, ix in windows[p]] for ch in range(c)]
                    for p in pixels}
        for p in pixels:
            for k in range(oc):
                value = sum(weights[k, ch] * sum(v) for ch, v in enumerate(gathered[p][:c]))
                memory[k * oh * ow + p] = value % 256


def _run_depthwise_planes(memory, gap, shape_in, shape_out, kernel, stride, pads, weights):
    """ec_conv2d_grouped_fast_s8 (portable, DSP): a plane copied per step, then its output written."""
    (c, ih, iw), (_, oh, ow) = shape_in, shape_out
    windows = _windows(shape_in, shape_out, kernel, stride, pads)
    for ch in range(c):
        plane = memory[gap + ch * ih * iw: gap + (ch + 1) * ih * iw].copy()
        for p in range(oh * ow):
            memory[ch * oh * ow + p] = weights[ch] * sum(int(plane[iy * iw + ix]) for iy, ix in windows[p]) % 256


def _run_depthwise_groups(memory, gap, shape_in, shape_out, kernel, stride, pads, weights, group=4):
    """ec_depthwise_mve_s8 (Helium): four channels' windows read per output pixel, then written;
    with a group of one channel, the pooling kernels."""
    (c, ih, iw), (_, oh, ow) = shape_in, shape_out
    windows = _windows(shape_in, shape_out, kernel, stride, pads)
    for c0 in range(0, c, group):
        for p in range(oh * ow):
            sums = [sum(int(memory[gap + ch * ih * iw + iy * iw + ix]) for iy, ix in windows[p])
                    for ch in range(c0, min(c0 + group, c))]
            for ch, s in zip(range(c0, c), sums):
                memory[ch * oh * ow + p] = weights[ch] * s % 256


def _out_shape(shape_in, out_c, kernel, stride, pads):
    _, ih, iw = shape_in
    return (out_c, (ih + 2 * pads - kernel) // stride + 1, (iw + 2 * pads - kernel) // stride + 1)


CASES = [  # (kind, in shape, out channels, kernel, stride, pads)
    ("conv", (3, 7, 6), 5, 3, 1, 1), ("conv", (4, 8, 8), 4, 3, 2, 1), ("conv", (2, 5, 9), 6, 1, 1, 0),
    ("conv", (6, 6, 5), 2, 1, 1, 0), ("conv", (4, 9, 9), 4, 1, 2, 0), ("conv", (3, 6, 6), 3, 3, 1, 0),
    ("planes", (5, 7, 7), 5, 3, 1, 1), ("planes", (6, 8, 7), 6, 3, 2, 1),
    ("groups", (5, 7, 7), 5, 3, 1, 1), ("groups", (8, 8, 6), 8, 3, 2, 1), ("groups", (4, 6, 6), 4, 5, 1, 2),
    ("pool", (3, 8, 8), 3, 2, 2, 0), ("pool", (4, 7, 7), 4, 3, 1, 1), ("pool", (5, 6, 6), 5, 6, 1, 0),
]


def _order(kind, shape_in, shape_out, kernel, stride, pads):
    geometry = ((kernel, kernel), (stride, stride), (pads, pads, pads, pads))
    if kind == "conv":
        return access_order.pixel_pair_order(shape_in, shape_out, *geometry)
    if kind == "planes":
        return access_order.plane_order(shape_in, shape_out)
    if kind == "pool":
        return access_order.channel_group_order(shape_in, shape_out, *geometry, group=1, widen=0)
    return access_order.channel_group_order(shape_in, shape_out, *geometry)


def _overlapped_run(kind, shape_in, shape_out, kernel, stride, pads, gap, x, weights):
    run = {"conv": _run_conv, "planes": _run_depthwise_planes, "groups": _run_depthwise_groups,
           "pool": lambda *a: _run_depthwise_groups(*a, group=1)}[kind]
    memory = np.zeros(max(gap + x.size, int(np.prod(shape_out))), dtype=np.int64)
    memory[gap:gap + x.size] = x
    run(memory, gap, shape_in, shape_out, kernel, stride, pads, weights)
    return memory[:int(np.prod(shape_out))].copy()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'x'.join(map(str, c[1]))}-k{c[3]}s{c[4]}")
def test_the_smallest_safe_gap_keeps_every_output_and_an_unsafe_one_breaks_them(case):
    kind, shape_in, out_c, kernel, stride, pads = case
    shape_out = _out_shape(shape_in, out_c, kernel, stride, pads)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=int(np.prod(shape_in)))
    weights = rng.integers(1, 7, size=(out_c, shape_in[0])) if kind == "conv" else rng.integers(1, 7, size=out_c)
    size_out = int(np.prod(shape_out))
    apart = _overlapped_run(kind, shape_in, shape_out, kernel, stride, pads, size_out, x, weights)
    order = _order(kind, shape_in, shape_out, kernel, stride, pads)
    gap = access_order.smallest_gap([order])
    assert access_order.is_safe(order, gap) and gap < size_out  # each case shares some bytes
    assert np.array_equal(_overlapped_run(kind, shape_in, shape_out, kernel, stride, pads, gap, x, weights), apart)
    unsafe = [g for g in range(gap) if not access_order.is_safe(order, g)]
    # The rule's refusals are real: those placements corrupt some output.  (The Helium order also
    # counts the bytes beside each window row that the kernel loads with a zero weight, so there
    # the largest refused gaps may be harmless; the smallest is not.)
    for g in (unsafe[:1] if kind == "groups" else unsafe[-3:]):
        got = _overlapped_run(kind, shape_in, shape_out, kernel, stride, pads, g, x, weights)
        assert not np.array_equal(got, apart), (case, g)


def test_a_pointwise_output_fits_exactly_over_its_input_but_not_one_byte_lower():
    order = access_order.pixel_pair_order((8, 5, 5), (16, 5, 5), (1, 1), (1, 1), (0, 0, 0, 0))
    assert access_order.smallest_gap([order]) == 0
    assert not access_order.is_safe(order, 1)  # so the plan puts it exactly at the gap


def test_the_gap_is_safe_for_every_kernel_variant_at_once():
    shape = (8, 6, 6)
    geometry = ((3, 3), (1, 1), (1, 1, 1, 1))
    planes = access_order.plane_order(shape, shape)
    groups = access_order.channel_group_order(shape, shape, *geometry)
    assert access_order.smallest_gap([planes]) == 0 < access_order.smallest_gap([groups])
    both = access_order.smallest_gap([planes, groups])
    assert access_order.is_safe(planes, both) and access_order.is_safe(groups, both)


# -- plans ---------------------------------------------------------------------------------------

class SeparableNet(nn.Module):
    """Every kind of layer that may write over its input: full 3x3 convs (stride 1 and 2),
    depthwise 3x3 (stride 1 and 2), pointwise layers that widen and narrow, max and average
    pooling; then a global average and a head."""

    def __init__(self):
        super().__init__()

        def block(cin, cout, k, s, groups=1):
            return [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, 8, 3, 2), *block(8, 8, 3, 1, groups=8), *block(8, 16, 1, 1), *block(16, 16, 3, 2, groups=16),
            *block(16, 8, 1, 1), nn.MaxPool2d(3, 1, 1), *block(8, 8, 3, 1), nn.AvgPool2d(2, 2), *block(8, 12, 3, 1))
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    return random_example(SeparableNet, (3, 30, 30), tmp_path_factory.mktemp("in_place"))


@pytest.mark.slow
def test_in_place_plan_goes_below_the_layer_by_layer_bound_and_places_outputs_at_their_gaps(separable):
    auto = export_example(separable, "auto", memory_plan="in-place")
    layer = export_example(separable, "layer", memory_plan="layer")
    a, lay = auto.compiled.plan, layer.compiled.plan
    assert lay.mode == "layer" and not lay.overlapping and lay.arena_size == lay.lower_bound == lay.layer_bound
    assert a.mode == "in-place" and a.layer_bound == lay.layer_bound
    assert a.lower_bound <= a.arena_size < lay.arena_size
    candidates = [b for b in a.buffers if b.writes_over is not None]
    assert len(candidates) == 9  # every layer after the first conv, the global average pooling included
    assert a.overlapping  # the plan uses those that lower the peak
    for b in a.buffers:
        if b.writes_over is not None and b.offset < b.writes_over.offset + b.writes_over.size \
                and b.writes_over.offset < b.offset + b.size:
            assert b.offset + b.gap == b.writes_over.offset
    s = auto.summary
    assert s["arena_layer_bound"] == lay.arena_size and s["memory_plan"] == "in-place"
    assert s["layers_over_input"] == a.overlapping
    report = (auto.out_dir / "report.md").read_text()
    assert "layer-by-layer bound" in report and "written over their input" in report
    # the C's arena is the plan's
    assert f"{a.arena_size}" in (auto.out_dir / f"src/{auto.name}.h").read_text()


@pytest.mark.slow
def test_in_place_plan_runs_bit_exact_on_the_host_and_clean_under_sanitizers(separable):
    require_tool("gcc", "make")
    out = export_example(separable, "auto_host", memory_plan="in-place").out_dir
    v = verify(out)
    assert v.total == 64 and v.ok, v.first_mismatch
    v = verify(out, sanitize=True, count=8)
    assert v.ok, v.first_mismatch


@pytest.mark.slow
def test_a_plan_that_ignores_the_kernels_order_is_caught_by_verify(separable, monkeypatch):
    """Without the rule (every output exactly over its input) the full 3x3 convs overwrite rows that
    later windows still read: the host run disagrees with the simulator."""
    require_tool("gcc", "make")
    monkeypatch.setattr(planner, "smallest_gap", lambda orders: 0)
    result = export_example(separable, "no_rule", memory_plan="in-place")
    assert result.compiled.plan.overlapping
    assert not verify(result.out_dir).ok


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["qemu-m55", "qemu-m4", "qemu-m0plus-an385"])
def test_in_place_plan_runs_bit_exact_on_helium_dsp_and_portable_kernels(separable, target):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    out = separable["root"] / "auto_host"
    if not out.exists():
        out = export_example(separable, "auto_host", memory_plan="in-place").out_dir
    v = verify(out, target=target)
    assert v.total == 64 and v.ok, (target, v.first_mismatch)

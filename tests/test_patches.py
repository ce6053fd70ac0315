"""Patch-based execution of the first layers (--memory-plan auto): the tiled integer run equals the
whole-tensor one on every tile, the plan goes below the in-place one, and the tiled C is
bit-exact on the host and on Helium, DSP and portable cores."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from edgecompile import simulate, tiling
from edgecompile.bench import bench
from edgecompile.ops.conv2d import conv_output_size
from edgecompile.passes import patches as P
from edgecompile.passes.plan_memory import plan_memory
from edgecompile.verify import verify
from conftest import export_example, random_example, require_tool


@pytest.mark.parametrize("size,kernel,stride,pad", [(17, 3, 1, 1), (17, 3, 2, 1), (16, 5, 2, 2), (9, 2, 2, 0),
                                                    (12, 1, 1, 0), (11, 3, 3, 0)])
def test_a_window_layer_on_a_region_gives_exactly_that_region(size, kernel, stride, pad):
    out = conv_output_size(size, kernel, stride, pad, pad)
    for rows in (1, 2, 3):
        for y0, y1 in tiling.split(out, rows):
            need, pads = tiling.window_need((y0, y1, 0, out), (size, size), (kernel, kernel), (stride, stride),
                                            [pad] * 4)
            assert 0 <= need[0] < need[1] <= size and all(0 <= p <= pad for p in pads)
            assert conv_output_size(need[1] - need[0], kernel, stride, pads[0], pads[2]) == y1 - y0
            assert pads[0] == (pad if y0 == 0 else 0) or kernel <= stride


class Stage(nn.Module):
    """What patches run: strided and padded convs, depthwise, pointwise, a residual add beside a 3x3
    halo (a copy of the smaller region), max pooling; then the rest of the model."""

    def __init__(self):
        super().__init__()

        def cbr(cin, cout, k, s, groups=1):
            return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU())

        self.stem = cbr(3, 8, 3, 2)
        self.dw = cbr(8, 8, 3, 1, groups=8)
        self.pw = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.expand = cbr(8, 24, 1, 1)
        self.down = cbr(24, 24, 3, 2, groups=24)
        self.pool = nn.MaxPool2d(2, 2)
        self.head = nn.Sequential(cbr(24, 16, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))

    def forward(self, x):
        s = self.stem(x)
        return self.head(self.pool(self.down(self.expand(s + self.pw(self.dw(s))))))


@pytest.fixture(scope="module")
def stage_net(tmp_path_factory):
    return random_example(Stage, (3, 48, 40), tmp_path_factory.mktemp("patches"), seed=1)


@pytest.fixture(scope="module")
def patched(stage_net):
    return export_example(stage_net, "auto", patch_budget=0.5)


@pytest.mark.slow
def test_every_tile_of_the_tiled_run_equals_the_whole_tensor_run(patched):
    graph, plan = patched.compiled.graph, patched.compiled.plan
    patches = plan.patches
    assert patches is not None and len(patches.tiles) >= 2
    assert any(n.op_type == "Slice" for t in patches.tiles for n in t.graph.nodes)  # the residual's smaller region
    x = simulate.quantize_input(graph, np.random.default_rng(5).standard_normal((6,) + graph.sample_shape))
    whole = simulate.run_integer(graph, x, keep_all=True)[patches.y]
    covered = np.zeros(whole.shape[1:], dtype=bool)
    for tile in patches.tiles:
        y0, y1, x0, x1 = tile.x_region
        out = tile.graph.evaluate_int({patches.x: x[..., y0:y1, x0:x1]})[patches.y]
        p0, p1, q0, q1 = tile.y_region
        assert np.array_equal(out, whole[..., p0:p1, q0:q1]), tile.y_region
        covered[..., p0:p1, q0:q1] = True
    assert covered.all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.slow
def test_random_stages_and_grids_tile_exactly(patched, seed):
    """Any stage length and grid, not only the chosen one."""
    graph = patched.compiled.graph
    rng = np.random.default_rng(seed)
    ends = P.stage_ends(graph)
    k = int(rng.choice(ends))
    grid = (int(rng.integers(1, 5)), int(rng.integers(1, 4)))
    if not P.tile_grid_fits(graph, k, grid) or grid == (1, 1):
        grid = (1, 2)
    patches = P.build(graph, k, grid)
    x = simulate.quantize_input(graph, rng.standard_normal((3,) + graph.sample_shape))
    whole = simulate.run_integer(graph, x, keep_all=True)[patches.y]
    for tile in patches.tiles:
        y0, y1, x0, x1 = tile.x_region
        out = tile.graph.evaluate_int({patches.x: x[..., y0:y1, x0:x1]})[patches.y]
        p0, p1, q0, q1 = tile.y_region
        assert np.array_equal(out, whole[..., p0:p1, q0:q1]), (k, grid, tile.y_region)


@pytest.mark.slow
def test_patches_go_below_the_in_place_plan_within_the_budget(patched, stage_net):
    plan = patched.compiled.plan
    graph = patched.compiled.graph
    in_place = plan_memory(graph, "in-place")
    assert in_place.patches is None and plan.mode == "auto"
    assert plan.arena_size < in_place.arena_size <= in_place.layer_bound == plan.layer_bound
    total = sum(n.macs(graph) for n in graph.nodes)
    assert plan.patches.cost <= 0.5 * total
    s = patched.summary["patches"]
    assert s["layers"] == plan.patches.nodes and s["grid"] == list(plan.patches.grid)
    assert "patches" in (patched.out_dir / "report.md").read_text()
    assert plan_memory(graph, "auto", patch_budget=0).patches is None  # --patch-budget 0: none


@pytest.mark.slow
def test_patched_c_is_bit_exact_on_the_host_and_clean_under_sanitizers(patched):
    require_tool("gcc", "make")
    assert "ec_paste_s8" in (patched.out_dir / f"src/{patched.name}.c").read_text()
    v = verify(patched.out_dir)
    assert v.total == 64 and v.ok, v.first_mismatch
    assert verify(patched.out_dir, sanitize=True, count=8).ok


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["qemu-m55", "qemu-m4", "qemu-m0plus-an385"])
def test_patched_c_is_bit_exact_on_helium_dsp_and_portable_cores(patched, target):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    v = verify(patched.out_dir, target=target)
    assert v.total == 64 and v.ok, (target, v.first_mismatch)


@pytest.mark.qemu
def test_bench_counts_the_patches_as_one_step_that_adds_up(patched):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    r = bench(patched.out_dir, "qemu-m4", samples=2)
    assert r.bit_exact and r.repeatable
    first = r.layers[0]
    patches = patched.compiled.plan.patches
    assert first.name == f"{patches.nodes[0]}..{patches.nodes[-1]}" and first.op == "Patches"
    assert first.macs == patches.macs + patches.extra_macs
    assert sum(c.instructions for c in r.layers) == r.per_inference[0]


@pytest.mark.slow
def test_the_command_line_chooses_the_plan(stage_net):
    import json

    from click.testing import CliRunner

    from edgecompile.cli import cli

    def arena(*options):
        out = stage_net["root"] / f"cli{len(options)}{'_'.join(o.strip('-') for o in options)}"
        r = CliRunner().invoke(cli, ["export", str(stage_net["model"]), "--calib", str(stage_net["calib"]), "-o",
                                     str(out), "--vectors", "4", "--json", "-q", *options])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    layer, in_place = arena("--memory-plan", "layer"), arena("--memory-plan", "in-place")
    auto = arena("--patch-budget", "50")
    assert layer["patches"] is None and in_place["patches"] is None and auto["patches"]["layers"]
    assert auto["arena_bytes"] < in_place["arena_bytes"] < layer["arena_bytes"] == layer["arena_layer_bound"]
    assert arena("--patch-budget", "0")["patches"] is None
    r = CliRunner().invoke(cli, ["export", str(stage_net["model"]), "-o", str(stage_net["root"] / "bad"),
                                 "--patch-budget", "150"])
    assert r.exit_code != 0 and "--patch-budget" in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_crop_takes_its_window_in_float_and_integer_alike(patched):
    crop = next(n for t in patched.compiled.plan.patches.tiles for n in t.graph.nodes if n.op_type == "Slice")
    tile = next(t.graph for t in patched.compiled.plan.patches.tiles if crop in t.graph.nodes)
    x = np.arange(np.prod(tile.shape(crop.inputs[0]))).reshape((1,) + tile.shape(crop.inputs[0]))
    (_, y0, x0), (_, h, w) = crop.attrs["starts"], crop.attrs["out_shape"]
    assert crop.is_window(tile)  # the C copies it with ec_crop_s8
    assert crop.infer_shape(tile) == tile.shape(crop.outputs[0]) == (x.shape[1], h, w)
    assert np.array_equal(crop.run_int(tile, x), x[:, :, y0:y0 + h, x0:x0 + w])
    assert np.array_equal(crop.run_float(x), x[:, :, y0:y0 + h, x0:x0 + w])


class _PaddingOnlyRows(nn.Module):
    """A 1x1 conv with stride 2 after two rows of zero padding: its first output row reads padding alone."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 9, 2, padding=1), nn.ReLU(), nn.ZeroPad2d((2, 1, 2, 2)),
                                  nn.Conv2d(9, 9, 1, stride=2), nn.Hardswish(), nn.Conv2d(9, 6, 3, padding=1),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 1))

    def forward(self, x):
        return self.body(x)


def test_no_band_of_padding_alone(tmp_path):
    """Found by fuzzing: such a row made a band of -1 input rows (a negative memcpy in ec_crop_s8, garbage
    outputs, a fault on Cortex-M); bands whose tiles would be empty are not chosen."""
    require_tool("gcc", "make")
    example = random_example(_PaddingOnlyRows, (3, 4, 20), tmp_path)
    result = export_example(example, "out", vectors=16, bits="3", memory_plan="auto", format_search=False,
                            snap_ranges=False, equalize="off", weight_rounding="nearest")
    g = result.compiled.graph
    stage = P.build(g, P.stage_ends(g)[-1], (5, 1))
    assert P.has_empty_tile(stage)  # the banding the planner used to pick
    chosen = result.compiled.plan.patches
    assert chosen is None or not P.has_empty_tile(chosen)
    v = verify(result.out_dir, sanitize=True)
    assert v.ok, v.first_mismatch

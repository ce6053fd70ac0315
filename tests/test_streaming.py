"""export --streaming: NAME_reset and NAME_step, one new frame per call, bit for bit.

Each step's output is compared with the integer simulator on the full input it stands for: the
window of the last H frames (frames before the reset are zeros) for a conv net, the sequence of
the frames since the reset for a recurrent net.  More frames than a window go through, so the
histories wrap and the states run past the model's T.  Refused models give an error that names
the layer and says why."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from click.testing import CliRunner

from edgecompile import nn as enn
from edgecompile import simulate
from edgecompile.cli import cli
from edgecompile.errors import EdgeCompileError
from edgecompile.export import ExportSettings, export
from edgecompile.frontend import load_module
from edgecompile.manifest import read_manifest
from edgecompile.streaming import plan_streaming, reference_outputs
from edgecompile.verify import run_stream, verify
from conftest import randomize_batchnorm, require_tool, save_torchscript
from streaming_models import FlattenKWS, LSTMKeyword, StreamingDSCNN


def export_streaming(model: nn.Module, shape, out, name: str = "kws", **options):
    torch.manual_seed(0)
    model = model.eval()
    randomize_batchnorm(model)
    calib = np.random.default_rng(0).standard_normal((32,) + tuple(shape)).astype(np.float32)
    return export(ExportSettings(out / f"{name}.pt", out / name, calib, vectors=4, streaming=True,
                                 loaded=load_module(model, tuple(shape), name), **options))


def frames_for(stream, count: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (count,) + tuple(stream.frame_shape)).astype(np.int8)


def check_steps(result, count_past_window: int = 20, target: str = "host", sanitize: bool = True) -> dict:
    """N = window + count_past_window frames through the compiled C, each step against the simulator."""
    graph, doc = read_manifest(result.out_dir)
    stream = plan_streaming(graph, doc["summary"]["memory_plan"])
    frames = frames_for(stream, stream.window + count_past_window)
    got = run_stream(result.out_dir, graph, frames, target, sanitize=sanitize)
    expected = reference_outputs(graph, stream, frames)
    bad = [k for k in range(len(frames)) if not np.array_equal(got[k], expected[k])]
    assert not bad, f"steps {bad[:10]} differ from the simulator"
    return {"graph": graph, "stream": stream, "frames": frames, "expected": expected}


@pytest.mark.slow
@pytest.mark.parametrize("arena", ["static", "extern"])
def test_dscnn_steps_equal_the_window_ending_at_each_frame(arena, tmp_path):
    require_tool("gcc", "make")
    result = export_streaming(StreamingDSCNN(width=16, blocks=2), (1, 49, 10), tmp_path, arena=arena)
    checked = check_steps(result)
    graph, stream, frames, expected = checked["graph"], checked["stream"], checked["frames"], checked["expected"]
    # the definition, independently of reference_outputs: step k (k >= 48) is NAME_run on frames k-48..k
    for k in (48, 60, len(frames) - 1):
        window = frames[k - 48:k + 1].transpose(1, 0, 2)[None]  # (1, C, H, W)
        np.testing.assert_array_equal(simulate.run_integer(graph, window).reshape(-1), expected[k])
    s = result.summary["streaming"]
    assert s["macs_per_frame"] * 10 < s["macs_full_window"]
    # every byte of static RAM streaming adds: the histories and where NAME_reset's warm-up writes its outputs
    assert s["state_bytes"] == sum((h.nbytes + 3) // 4 * 4 for h in stream.histories) + 12 * 2
    assert s["reset_output_bytes"] == 24
    header = (result.out_dir / "src" / "kws.h").read_text()
    extern = ", void *arena" if arena == "extern" else ""
    assert f"void kws_step(const int8_t *frame, int16_t *output{extern});" in header
    assert f"#define KWS_STREAM_STATE_SIZE {s['state_bytes']} " in header
    assert f"#define KWS_ARENA_SIZE {max(s['step_arena_bytes'], result.summary['run_arena_bytes'])} " in header
    assert f"#define KWS_STREAM_FRAME_SIZE 10 " in header
    report = (result.out_dir / "report.md").read_text()
    assert f"{s['macs_per_frame']:,} MACs per frame vs {s['macs_full_window']:,}" in report
    v = verify(result.out_dir)  # verify checks NAME_step as well, on the first two vectors' 98 frames
    assert v.ok and v.total == 4 and (v.stream_total, v.stream_exact) == (98, 98)


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"act_bits": 16}, {"bits": 4, "memory_plan": "layer"}])
def test_flatten_linear_over_the_window_and_dilation_along_time(options, tmp_path):
    """Also with 16-bit activations (histories of int16 rows) and packed 4-bit weights."""
    require_tool("gcc", "make")
    result = export_streaming(FlattenKWS(), (1, 20, 10), tmp_path, **options)
    check_steps(result, 15)
    make = subprocess.run(["make", "-C", str(result.out_dir), "test-stream"], capture_output=True, text=True)
    assert make.returncode == 0 and "bit-exact: every step's outputs" in make.stdout, make.stdout + make.stderr
    rows = {h["rows"] for h in result.summary["streaming"]["histories"]}
    assert rows == {5, 12}  # conv1's 5 rows and conv2's 5 (3 taps dilated by 2), the Flatten's 12


class FastKWS(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.rnn = enn.RNN(getattr(enn, f"{kind}Cell")(10, 16, w_rank=4))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.rnn(x))


@pytest.mark.slow
@pytest.mark.parametrize("kind,layers,arena", [("LSTM", 1, "static"), ("LSTM", 1, "extern"), ("GRU", 2, "static"),
                                              ("FastGRNN", 1, "static"), ("FastRNN", 1, "static")])
def test_recurrent_steps_equal_the_sequence_since_reset(kind, layers, arena, tmp_path):
    require_tool("gcc", "make")
    model = FastKWS(kind) if kind.startswith("Fast") else LSTMKeyword(16, 5, layers, kind)
    result = export_streaming(model, (12, 10), tmp_path, name=kind.lower(), arena=arena)
    checked = check_steps(result, 9)  # 21 frames through a model of T = 12
    graph, frames, expected = checked["graph"], checked["frames"], checked["expected"]
    np.testing.assert_array_equal(simulate.run_integer(graph, frames[None, :12]).reshape(-1), expected[11])
    assert result.summary["streaming"]["reset_frames"] == 0
    head = sum(n.macs(graph) for n in graph.nodes if n.op_type != "Recurrent")  # once per call, either way
    assert result.summary["streaming"]["macs_per_frame"] * 12 == result.summary["streaming"]["macs_full_window"] \
        + head * 11
    # the step's cells keep their states in the static block: their scratch in the step's arena has no
    # room for them, exactly (the full run's cells hold every state in theirs)
    stream = checked["stream"]
    for cell in (n for n in stream.graph.nodes if n.op_type == "Recurrent"):
        full = result.compiled.graph.node(cell.name)  # (planned by the export)
        states = sum(-(-size // 4) * 4 for _, _, size in full.state_pairs())
        assert cell.ram_parts()["states"] == full.ram_parts()["states"] - states
        assert cell.scratch_bytes(stream.graph) == full.scratch_bytes(result.compiled.graph) - states > 0


@pytest.mark.slow
def test_packed_gru_steps_equal_the_sequence_since_reset(tmp_path):
    """NAME_step runs the cell's gates with W and U packed 4 bits (the compressed gate kernels)."""
    require_tool("gcc", "make")
    result = export_streaming(LSTMKeyword(16, 5, 1, "GRU"), (12, 10), tmp_path, name="gru4", bits="4")
    rec = next(n for n in result.compiled.graph.nodes if n.op_type == "Recurrent")
    assert "W/U packed" in rec.describe()
    assert "ec_gated_linear_sparse_s8" in (result.out_dir / "src" / f"{result.name}.c").read_text()
    check_steps(result, 9)


@pytest.mark.qemu
@pytest.mark.slow
def test_dscnn_steps_bit_exact_on_qemu_m4_and_cheaper_than_the_window(tmp_path):
    require_tool("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from edgecompile.bench import bench

    result = export_streaming(StreamingDSCNN(width=16, blocks=2), (1, 49, 10), tmp_path)
    check_steps(result, 20, target="qemu-m4", sanitize=False)
    r = bench(result.out_dir, "qemu-m4", samples=2)
    st = r.extra["streaming"]
    assert r.bit_exact and st["bit_exact"] and st["frames"] == 98
    assert st["instructions_step_max"] * 4 <= r.instructions


class Strided(nn.Module):
    def __init__(self, stride=(2, 1), pad=(0, 1), out_pool=True):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride, pad)
        self.fc = nn.Linear(4, 3)
        self.out_pool = out_pool

    def forward(self, x):
        y = F.relu(self.conv1(x))
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1)) if self.out_pool else y


class TwoWay(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(10, 8, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


@pytest.mark.parametrize("model,shape,fragments", [
    (Strided((2, 1)), (1, 12, 6), ["layer 'conv1'", "stride 2 along time", "stride 1 and no padding"]),
    (Strided((1, 1), (1, 1)), (1, 12, 6), ["layer 'conv1'", "padding 1,1 along time"]),
    (Strided((1, 1), (0, 1), out_pool=False), (1, 12, 6), ["still has a time axis"]),
    (TwoWay(), (12, 10), ["backwards", "forward layers only"]),
])
def test_refusals_name_the_layer_and_say_why(model, shape, fragments, tmp_path):
    with pytest.raises(EdgeCompileError) as info:
        export_streaming(model, shape, tmp_path)
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))


def test_cli_streaming_flag_and_refusal(tmp_path):
    torch.manual_seed(0)
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((16, 1, 12, 6)).astype(np.float32))
    good = save_torchscript(Strided((1, 1), (0, 1)), tmp_path / "good.pt")
    bad = save_torchscript(Strided((2, 1)), tmp_path / "bad.pt")
    r = CliRunner().invoke(cli, ["export", str(good), "--calib", str(tmp_path / "calib.npy"), "-o",
                                 str(tmp_path / "good"), "--streaming", "-q", "--vectors", "4"])
    assert r.exit_code == 0, r.output
    assert re.search(r"streaming: good_step [\d,]+ MACs per frame vs [\d,]+ per 12-frame window", r.output), r.output
    header = (tmp_path / "good" / "src" / "good.h").read_text()
    assert "void good_reset(void);" in header and "void good_step(const int8_t *frame, int16_t *output);" in header
    r = CliRunner().invoke(cli, ["export", str(bad), "--calib", str(tmp_path / "calib.npy"), "-o",
                                 str(tmp_path / "bad"), "--streaming", "-q", "--vectors", "4"])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "error: --streaming: layer 'conv1' (Conv2d): stride 2 along time" in r.output, r.output
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["conv", "recurrent"])
def test_reset_mid_stream_starts_over(which, tmp_path):
    """NAME_reset after some frames: the following steps are those of a fresh start (histories refilled
    with zero frames, states zeroed), whatever came before."""
    require_tool("gcc", "make")
    if which == "conv":
        result = export_streaming(FlattenKWS(), (1, 20, 10), tmp_path)
    else:
        result = export_streaming(LSTMKeyword(16, 5, 2, "GRU"), (12, 10), tmp_path, name="gru")
    graph, doc = read_manifest(result.out_dir)
    stream = plan_streaming(graph, doc["summary"]["memory_plan"])
    frames = frames_for(stream, 50, seed=9)
    got = run_stream(result.out_dir, graph, frames, sanitize=True, reset_every=23)
    expected = np.concatenate([reference_outputs(graph, stream, frames[i:i + 23]) for i in range(0, 50, 23)])
    np.testing.assert_array_equal(got, expected)

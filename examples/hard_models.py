"""Models that are hard to quantize with power-of-two scales, to measure quantization on.

Random weights make no model easy: what makes these hard is what trained models have and
random initializations lack:
- BatchNorm that is far from the identity: each channel's gamma spread over x0.5..x2, beta
  comparable to the activations, running variances spread over x0.25..x4 around the true
  ones (so folding gives every output channel its own scale and offset);
- classifier heads whose weights are tens of times larger than the rest (confident trained
  classifiers have them: large logits that a clipped output format flattens into ties);
- depth: MobileNetV2 at 96x96 with ten inverted residual blocks, ResNet-8 with 1x1 shortcuts.

Each model is saved as a torch.export program with 64 calibration inputs and 256 held-out
test inputs (separate draws, never the calibration samples):

    python examples/hard_models.py -o build/hard            # all of them
    python examples/hard_models.py -o build/hard lenet5_head
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnn_zoo
from models import save_program

HEAD_GAIN = 30.0  # the classifier head's weights, relative to the default initialization


class LeNet5(nn.Module):
    """LeNet-5 on 1x32x32 with BatchNorm after each conv and a large-weight classifier head."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, classes)
        self.head = self.fc3

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


class ConvNet8(nn.Module):
    """Eight weighted layers on 3x32x32: six conv-BN-ReLU (three with stride 2), then 64 -> 32 -> 10."""

    def __init__(self, classes: int = 10):
        super().__init__()
        widths = [(3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 2)]
        self.features = nn.Sequential(*[cnn_zoo.conv_bn(i, o, 3, s, act=nn.ReLU()) for i, o, s in widths])
        self.fc1, self.head = nn.Linear(64, 32), nn.Linear(32, classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.head(F.relu(self.fc1(x)))


def _with_head(cls, attr: str):
    def build():
        model = cls()
        model.head = getattr(model, attr)
        return model
    return build


MODELS = {  # name -> (builder, input shape without batch)
    "lenet5_head": (LeNet5, (1, 32, 32)),
    "convnet8_head": (ConvNet8, (3, 32, 32)),
    "resnet8_bn": (_with_head(cnn_zoo.ResNet8, "fc"), (3, 32, 32)),
    "mobilenetv2_bn": (_with_head(cnn_zoo.MobileNetV2, "classifier"), (3, 96, 96)),
    "dscnn_bn": (_with_head(cnn_zoo.DSCNN, "fc"), (1, 49, 10)),
}
BIG_HEAD = {"lenet5_head", "convnet8_head"}  # the models whose head is scaled by HEAD_GAIN


def log_uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.exp(torch.empty(n).uniform_(np.log(lo), np.log(hi), generator=g))


@torch.no_grad()
def hard_batchnorm(model: nn.Module, x: torch.Tensor, seed: int = 0) -> None:
    """BatchNorm statistics measured on `x`, then perturbed as described in the module docstring.

    One pass in training mode with momentum 1 sets every running mean and variance to the
    batch's (each layer seeing the normalized outputs of the layers before it); then gamma,
    beta and the variances are spread."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = 1.0
    model.train()
    model(x)
    model.eval()
    for m in bns:
        n = m.num_features
        m.momentum = 0.1
        m.running_var.mul_(log_uniform(n, 0.25, 4.0, g))
        m.weight.copy_(log_uniform(n, 0.5, 2.0, g))
        m.bias.copy_(torch.randn(n, generator=g) * 0.5)


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    builder, shape = MODELS[name]
    torch.manual_seed(seed)
    model = builder().eval()
    x = torch.from_numpy(np.random.default_rng(seed + 1000).standard_normal((256,) + shape).astype(np.float32))
    hard_batchnorm(model, x, seed)
    if name in BIG_HEAD:
        with torch.no_grad():
            model.head.weight.mul_(HEAD_GAIN)
    return model, shape


def save(name: str, out: Path, calib_samples: int = 64, test_samples: int = 256, seed: int = 0) -> dict:
    """The model (.pt2), its calibration inputs and held-out test inputs; returns their paths."""
    model, shape = build(name, seed)
    out.mkdir(parents=True, exist_ok=True)
    path = save_program(model, shape, out / f"{name}.pt2")
    rng = np.random.default_rng(seed)
    files = {"model": path, "shape": shape, "calib": out / f"{name}_calib.npy", "test": out / f"{name}_test.npy"}
    np.save(files["calib"], rng.standard_normal((calib_samples,) + shape).astype(np.float32))
    np.save(files["test"], rng.standard_normal((test_samples,) + shape).astype(np.float32))
    return files


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", default=list(MODELS), help=f"models (default all): {', '.join(MODELS)}")
    p.add_argument("-o", "--out", type=Path, default=Path("build/hard"))
    args = p.parse_args(argv)
    for name in args.names:
        files = save(name, args.out)
        print(f"{name}: {files['model']} (input {files['shape']}), calibration {files['calib']}, "
              f"held-out test inputs {files['test']}")


if __name__ == "__main__":
    main()

"""The efficient CNNs people deploy on microcontrollers (MLPerf Tiny and the MobileNet family), small:
DS-CNN (keyword spotting), ResNet-8 (CIFAR-10 shape), MobileNetV2 (inverted residuals,
ReLU6, linear bottlenecks), a SqueezeNet-style net (fire modules), a ShuffleNet-style
net (group convs, channel shuffle) and a MobileNetV3-style block (h-swish, squeeze-excite).

Each builds with random weights and BatchNorm statistics that are not trivial (so that
folding matters), and is saved as TorchScript with random calibration inputs:

    python examples/cnn_zoo.py -o build/zoo            # all of them
    python examples/cnn_zoo.py -o build/zoo resnet8    # some
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import save_program


def conv_bn(cin, cout, k, stride=1, groups=1, act: nn.Module | None = None):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act if act is not None else nn.Identity())


class DSCNN(nn.Module):
    """MLPerf Tiny keyword spotting: 1x49x10 MFCCs, a 10x4 conv, 4 depthwise-separable blocks."""

    def __init__(self, width=64, classes=12):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, (10, 4), (2, 2), (5, 1), bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(*[nn.Sequential(conv_bn(width, width, 3, groups=width, act=nn.ReLU()),
                                                    conv_bn(width, width, 1, act=nn.ReLU())) for _ in range(4)])
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, act=nn.ReLU())
        self.conv2 = conv_bn(cout, cout, 3)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet8(nn.Module):
    """MLPerf Tiny image classification: 3x32x32, three residual stages 16-32-64, 1x1 shortcuts."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, act=nn.ReLU())
        self.stages = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1, act=nn.ReLU6())]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6()),
                   conv_bn(hidden, cout, 1)]  # linear bottleneck: no activation
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 at width 0.25 on 3x96x96 (the visual-wake-words shape)."""

    def __init__(self, classes=2):
        super().__init__()
        cfg = [(1, 8, 1, 1), (6, 8, 2, 2), (6, 8, 2, 2), (6, 16, 2, 2), (6, 24, 1, 1), (6, 40, 1, 2), (6, 80, 1, 1)]
        layers = [conv_bn(3, 8, 3, 2, act=nn.ReLU6())]
        cin = 8
        for t, c, n, s in cfg:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 160, 1, act=nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(160, classes)

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = conv_bn(cin, squeeze, 1, act=nn.ReLU())
        self.expand1 = conv_bn(squeeze, expand, 1, act=nn.ReLU())
        self.expand3 = conv_bn(squeeze, expand, 3, act=nn.ReLU())

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.expand1(x), self.expand3(x)], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet-style: fire modules (squeeze 1x1, expand 1x1 and 3x3, concatenated) on 3x32x32."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2, act=nn.ReLU())
        self.fire1 = Fire(32, 8, 16)
        self.fire2 = Fire(32, 8, 16)
        self.fire3 = Fire(32, 16, 32)
        self.head = nn.Conv2d(64, classes, 1)

    def forward(self, x):
        x = F.max_pool2d(self.fire2(self.fire1(self.stem(x))), 2)
        return F.adaptive_avg_pool2d(self.head(self.fire3(x)), 1).flatten(1)


def channel_shuffle(x, groups: int):
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.groups = groups
        self.gconv1 = conv_bn(channels, channels, 1, groups=groups, act=nn.ReLU())
        self.dwconv = conv_bn(channels, channels, 3, groups=channels)
        self.gconv2 = conv_bn(channels, channels, 1, groups=groups)

    def forward(self, x):
        y = channel_shuffle(self.gconv1(x), self.groups)
        return F.relu(x + self.gconv2(self.dwconv(y)))


class ShuffleNet(nn.Module):
    """ShuffleNet-style: group 1x1 convs, channel shuffle, depthwise 3x3, residual, on 3x32x32."""

    def __init__(self, classes=10, groups=4):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2, act=nn.ReLU())
        self.units = nn.Sequential(ShuffleUnit(32, groups), ShuffleUnit(32, groups))
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.units(self.stem(x)), 1).flatten(1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels, reduced):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        g = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(g))))


class MobileNetV3Block(nn.Module):
    """A MobileNetV3 bottleneck: 1x1 expand + h-swish, depthwise 5x5 + h-swish, squeeze-excite,
    1x1 project, residual; with a stem and a classifier around it (3x32x32)."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 2, act=nn.Hardswish())
        self.expand = conv_bn(16, 64, 1, act=nn.Hardswish())
        self.dw = conv_bn(64, 64, 5, groups=64, act=nn.Hardswish())
        self.se = SqueezeExcite(64, 16)
        self.project = conv_bn(64, 16, 1)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.se(self.dw(self.expand(x))))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


ZOO = {  # name -> (class, input shape without batch)
    "dscnn": (DSCNN, (1, 49, 10)),
    "resnet8": (ResNet8, (3, 32, 32)),
    "mobilenetv2": (MobileNetV2, (3, 96, 96)),
    "squeezenet": (SqueezeNet, (3, 32, 32)),
    "shufflenet": (ShuffleNet, (3, 32, 32)),
    "mobilenetv3_block": (MobileNetV3Block, (3, 32, 32)),
}


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, as a trained model has, so that folding matters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 0.8 + 0.6)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    cls, shape = ZOO[name]
    torch.manual_seed(seed)
    model = cls().eval()
    randomize_batchnorm(model, seed)
    return model, shape


def save(name: str, out: Path, samples: int = 64, seed: int = 0) -> dict:
    """The model as a torch.export program (.pt2) + calibration inputs; returns their paths."""
    model, shape = build(name, seed)
    out.mkdir(parents=True, exist_ok=True)
    path = save_program(model, shape, out / f"{name}.pt2")
    calib = np.random.default_rng(seed).standard_normal((samples,) + shape).astype(np.float32)
    np.save(out / f"{name}_calib.npy", calib)
    return {"model": path, "calib": out / f"{name}_calib.npy", "shape": shape}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", default=sorted(ZOO), help=f"models (default all): {', '.join(ZOO)}")
    p.add_argument("-o", "--out", type=Path, default=Path("build/zoo"))
    args = p.parse_args(argv)
    for name in args.names:
        files = save(name, args.out)
        print(f"{name}: {files['model']} (input {files['shape']}), calibration {files['calib']}")


if __name__ == "__main__":
    main()

"""Model definitions of the examples, and how the examples save and load them."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def save_program(model: nn.Module, input_shape: tuple[int, ...], path: Path) -> Path:
    """Save `model` the way PyTorch recommends: a torch.export program (.pt2) for inputs of
    `input_shape` (no batch axis) and any batch size. It loads without unpickling any code."""
    example = torch.zeros((2,) + tuple(input_shape))  # batch 2: a batch of 1 would be fixed at 1
    program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(path))
    return Path(path)


def load_float_model(path: Path) -> nn.Module:
    """The float model saved in `path`: a torch.export program (.pt2) or TorchScript (.pt)."""
    if Path(path).suffix == ".pt2":
        return torch.export.load(str(path)).module()
    return torch.jit.load(str(path)).eval()


class LeNet(nn.Module):
    """LeNet: 1x28x28 -> conv3x3(6) -> pool -> conv3x3(16) -> pool -> 120 -> 84 -> 10."""

    def __init__(self, num_classes: int = 10, batchnorm: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.bn1 = nn.BatchNorm2d(6) if batchnorm else nn.Identity()
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.bn2 = nn.BatchNorm2d(16) if batchnorm else nn.Identity()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = x.reshape(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MLP(nn.Module):
    """The fully connected MNIST network (784 -> 256 -> 128 -> 10, dropout in training)."""

    def __init__(self, in_features: int = 784, hidden=(256, 128), num_classes: int = 10):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)

    def forward(self, x):
        x = self.flatten(x)
        x = self.drop(F.relu(self.fc1(x)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class TinyMobileNet(nn.Module):
    """A digits-sized MobileNetV2-style net (depthwise separable, inverted residual, ReLU6,
    squeeze-excite gate, global pooling) for 1x28x28 inputs: the efficient-CNN operator set
    on a classifier trained on real data."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(16, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(48, 48, 3, 1, 1, groups=48, bias=False), nn.BatchNorm2d(48), nn.ReLU6())
        self.se_reduce = nn.Conv2d(48, 12, 1)
        self.se_expand = nn.Conv2d(12, 48, 1)
        self.project = nn.Sequential(nn.Conv2d(48, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.down = nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1, groups=16, bias=False), nn.BatchNorm2d(16),
                                  nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.Hardswish())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(self.expand(x))
        gate = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(F.adaptive_avg_pool2d(y, 1)))))
        x = x + self.project(y * gate)
        x = self.down(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

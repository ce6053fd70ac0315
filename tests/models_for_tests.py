"""Small random-weight PyTorch models of several shapes for the tests."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBNNet(nn.Module):
    """Conv+BN+ReLU blocks with stride and padding, a pointwise (1x1) conv, avg and max pooling, BN1d after
    a linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 12, 5, stride=2, padding=2)
        self.bn2 = nn.BatchNorm2d(12)
        self.pointwise = nn.Conv2d(12, 14, 1)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(14 * 3 * 3, 20)
        self.bn3 = nn.BatchNorm1d(20)
        self.out = nn.Linear(20, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2, ceil_mode=True)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.pointwise(x))
        x = self.pool(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.bn3(self.fc(x)))
        return self.out(x)


class OddConvNet(nn.Module):
    """Odd sizes: asymmetric kernel and stride, no bias, a standalone ReLU after pooling."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 5, (3, 2), stride=(2, 1), padding=(1, 0), bias=False)
        self.conv2 = nn.Conv2d(5, 7, 1)
        self.fc = nn.Linear(7 * 6 * 4, 3)

    def forward(self, x):
        x = self.conv1(x)
        x = F.max_pool2d(x, (2, 3), stride=(2, 2), padding=(1, 1))
        x = F.relu(x)
        x = self.conv2(x)
        x = F.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)
        return self.fc(x.reshape(x.size(0), -1))


class WideMLP(nn.Module):
    def __init__(self, sizes=(64, 200, 150, 30)):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class BNFirst(nn.Module):
    """BatchNorm straight on the input: nothing to fold it into."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.conv(self.bn(x))


class WithUnsupported(nn.Module):
    """Rounds down: ONNX Floor, an op edgecompile does not compile."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return torch.floor(self.fc(x))


class ResidualNet(nn.Module):
    """A residual block whose ReLU outputs can all be unsigned codes: the stem's ReLU output feeds an
    unpadded conv and the skip Add; the Add's fused ReLU output feeds a 1x1 conv and a global average
    pool (then Linear); the conv's ReLU output is pooled too; the model output is an Add of two Linears."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 8, 1)
        self.head = nn.Conv2d(8, 6, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc_skip = nn.Linear(8, 5)
        self.fc_head = nn.Linear(6, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        s = F.relu(x + self.conv(x))
        h = F.relu(self.head(s))
        return self.fc_skip(torch.flatten(self.pool(s), 1)) + self.fc_head(torch.flatten(self.pool(h), 1))


INPUT_SHAPES = {ConvBNNet: (3, 24, 24), OddConvNet: (2, 15, 6), WideMLP: (64,), BNFirst: (1, 8, 8),
                WithUnsupported: (8,), ResidualNet: (3, 10, 9)}

"""Keyword-spotting models that stream (`edgecompile export --streaming`): one new MFCC frame per call.

StreamingDSCNN is the MLPerf Tiny DS-CNN (1x49x10 MFCCs: 49 frames along H, 10 coefficients
along W) made streamable: every layer has stride 1 and no padding along time (it pads only
along W), so the stem's 10x4 kernel leaves 40 rows and each 3x3 depthwise layer two fewer; a
global average pool over the 32 rows left and a Linear classify.  LSTMKeyword reads the same 49
frames as a sequence (49 steps of 10 features) and classifies the last state.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


def conv_bn_valid_time(cin: int, cout: int, k: tuple[int, int], stride_w: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (stride 1 and no padding along time, 'same' padding along W) + BatchNorm + ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, (1, stride_w), (0, k[1] // 2 if k[1] > 1 else 0), groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class StreamingDSCNN(nn.Module):
    """1x49x10 -> 10x4 stem (stride 2 along W only) -> 4 depthwise-separable blocks -> global pool -> Linear."""

    def __init__(self, width: int = 64, classes: int = 12, blocks: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, (10, 4), (1, 2), (0, 1), bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.blocks = nn.Sequential(*[nn.Sequential(conv_bn_valid_time(width, width, (3, 3), groups=width),
                                                    conv_bn_valid_time(width, width, (1, 1)))
                                      for _ in range(blocks)])
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


class FlattenKWS(nn.Module):
    """1x20x10 -> 5x3 conv -> 3x3 conv dilated 2 along time -> Flatten -> Linear over the whole window."""

    def __init__(self, width: int = 8, classes: int = 6):
        super().__init__()
        self.conv1 = conv_bn_valid_time(1, width, (5, 3))
        self.conv2 = nn.Sequential(nn.Conv2d(width, width, 3, 1, (0, 1), dilation=(2, 1)), nn.ReLU())
        self.fc = nn.Linear(width * 12 * 10, classes)

    def forward(self, x):
        return self.fc(self.conv2(self.conv1(x)).flatten(1))


class LSTMKeyword(nn.Module):
    """49 frames of 10 MFCCs as a sequence -> LSTM (stacked) -> Linear on the last state."""

    def __init__(self, hidden: int = 64, classes: int = 12, layers: int = 1, kind: str = "LSTM"):
        super().__init__()
        self.rnn = getattr(nn, kind)(10, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])

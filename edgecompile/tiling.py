"""Rectangular regions of (C, H, W) tensors, for running layers on spatial tiles (passes/patches.py).

A region is (y0, y1, x0, x1): rows y0 .. y1 - 1 and columns x0 .. x1 - 1 of every channel.
"""
from __future__ import annotations

Region = tuple[int, int, int, int]


def window_need(region: Region, in_hw, kernel, stride, pads, dilation=(1, 1)) -> tuple[Region, list[int]]:
    """The input region a sliding-window layer reads for the output `region`, clipped to the
    input, and the padding [top, left, bottom, right] the layer then needs around that region:
    non-zero only where the region meets the input's own border (elsewhere the tile reads the
    real values next to it).  The layer's output on that region with that padding is `region`
    exactly: (need + padding - window) / stride + 1 = the region's size."""
    y0, y1, x0, x1 = region
    (h, w), (kh, kw), (sh, sw), (dh, dw) = in_hw, kernel, stride, dilation
    top, left = pads[0], pads[1]
    a, b = y0 * sh - top, (y1 - 1) * sh - top + (kh - 1) * dh + 1
    c, d = x0 * sw - left, (x1 - 1) * sw - left + (kw - 1) * dw + 1
    need = (max(a, 0), min(b, h), max(c, 0), min(d, w))
    return need, [need[0] - a, need[2] - c, b - need[1], d - need[3]]


def union(a: Region | None, b: Region) -> Region:
    """The smallest region holding both."""
    if a is None:
        return b
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def extent(region: Region) -> tuple[int, int]:
    """(rows, columns) of a region."""
    return region[1] - region[0], region[3] - region[2]


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` consecutive ranges covering 0 .. n - 1, as equal as integers allow."""
    edges = [n * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def grid(h: int, w: int, rows: int, cols: int) -> list[Region]:
    """The tiles of an h x w plane cut into rows x cols, in raster order."""
    return [(y0, y1, x0, x1) for y0, y1 in split(h, rows) for x0, x1 in split(w, cols)]

"""Kernel calls a person can read: each literal argument of a runtime kernel call is named
after the kernel's own prototype, `ec_conv2d_fast_s8(x, /*in_c=*/1, /*in_h=*/28, ...)`.

The names come from the declarations in runtime_c/*.h, so they cannot drift from the
kernels; they are comments, so the compiled code (speed and flash) is exactly the same.
"""
from __future__ import annotations

import functools
import re

from .resources import resource_dir

_PROTOTYPE = re.compile(r"\b(ec_\w+)\s*\(([^;{}()]*)\)\s*;")
_LITERAL = re.compile(r"-?(?:0x[0-9a-fA-F]+|\d+)[uUlL]*")


@functools.lru_cache(maxsize=1)
def kernel_parameters() -> dict[str, tuple[str, ...]]:
    """Parameter names of every function the runtime headers declare, by function name."""
    out = {}
    for header in sorted(resource_dir("runtime_c").glob("*.h")):
        text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", header.read_text(), flags=re.S)
        for name, params in _PROTOTYPE.findall(text):
            names = tuple(re.sub(r"\[[^\]]*\]", "", p).split()[-1].lstrip("*")
                          for p in params.split(",") if p.strip() and p.strip() != "void")
            out[name] = names
    return out


def split_arguments(text: str) -> list[str]:
    """Top-level comma-separated arguments (commas inside (), [] do not split)."""
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return args + [last] if last or args else args


def name_arguments(call: str) -> str:
    """`f(a, 1, 2)` -> `f(a, /*n=*/1, /*m=*/2)` for a runtime kernel f; anything else unchanged."""
    m = re.fullmatch(r"\s*(ec_\w+)\((.*)\)\s*", call, flags=re.S)
    if not m:
        return call
    names = kernel_parameters().get(m.group(1))
    args = split_arguments(m.group(2))
    if names is None or len(names) != len(args):
        return call
    named = [f"/*{n}=*/{a}" if _LITERAL.fullmatch(a) else a for n, a in zip(names, args)]
    return f"{m.group(1)}({', '.join(named)})"

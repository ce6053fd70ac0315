"""The arena's alignment: every buffer of a memory plan starts on a 4-byte boundary (sizes are
rounded up to 4), so word-wide loads are legal on every core.  The memory plans
(passes/plan_memory.py, passes/patches.py), the C API and a recurrent cell's own layout of
its states (ops/recurrent.py) all place buffers by it."""
from __future__ import annotations

ALIGN = 4


def round_up(n: int, a: int = ALIGN) -> int:
    """n rounded up to a multiple of a."""
    return (n + a - 1) // a * a

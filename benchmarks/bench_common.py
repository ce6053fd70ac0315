"""What the instruction-count benchmarks share: number formats, the goals list, the JSON file."""
from __future__ import annotations

import json
from pathlib import Path


def count(x) -> str:
    """An instruction or MAC count with thousands separators, or '-' when there is none."""
    return "-" if x is None else f"{x:,}"


def per_mac(x, macs: int = 1) -> str:
    """Instructions per MAC (2 decimals), or '-'."""
    return f"{x / macs:.2f}" if x is not None and macs else "-"


def print_goals(goal_rows: list[dict], title: str, width: int) -> None:
    """Each goal, its limit, the measured value and whether it is met ('-' when not measured)."""
    print(f"\n{title}")
    for g in goal_rows:
        met = "-" if g["met"] is None else ("met" if g["met"] else "not met")
        print(f"  {g['goal']:{width}s} <= {g['limit']:>12,}  {count(g['value']):>12s}  {met}")


def write_json(path: Path, doc: dict) -> int:
    """Write the figures as JSON (the results folder is made if need be); the exit status, 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {path}")
    return 0

"""Progress of long steps, shown by whatever bar the caller passes.

The library never draws anything itself: a step asks its `progress` argument for
a bar, ``progress(length, label)``, a context manager whose value has
``update(n)``.  The CLI passes click.progressbar on stderr; the default shows
nothing.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Callable, ContextManager, Protocol


class Bar(Protocol):
    def update(self, n_steps: int) -> None: ...


ProgressFactory = Callable[[int, str], ContextManager[Bar]]


class _Silent:
    def update(self, n_steps: int) -> None:
        pass


def no_progress(length: int, label: str) -> ContextManager[Bar]:
    return contextlib.nullcontext(_Silent())


@contextlib.contextmanager
def watch_records(path: Path, record_bytes: int, bar: Bar, period: float = 0.25):
    """Advance `bar` by one for every `record_bytes` a program appends to `path` while the block
    runs (the test runner writes one output record per inference, so this counts inferences)."""
    done = threading.Event()
    shown = 0

    def poll() -> None:
        nonlocal shown
        try:
            records = path.stat().st_size // max(record_bytes, 1)
        except OSError:  # not created yet
            return
        if records > shown:
            bar.update(records - shown)
            shown = records

    def loop() -> None:
        while not done.wait(period):
            poll()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        poll()  # the last records, written after the final tick

"""Locate the C assets (templates/, runtime_c/, targets/) in a checkout or an install.

In a source checkout (and an editable install) they sit at the repository's top
level, next to this package; a built wheel carries copies in edgecompile/_data/
(see setup.py).
"""
from __future__ import annotations

from pathlib import Path

from .errors import EdgeCompileError

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise EdgeCompileError(f"edgecompile's '{name}' folder is missing from the installation "
                           f"(looked in {_PACKAGE / '_data'} and {_PACKAGE.parent}); reinstall edgecompile")

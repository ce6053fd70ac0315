"""User-facing errors.

An EdgeCompileError is something the user can fix: its message names the file,
the node or layer, and what to do.  The CLI prints it without a traceback and
exits non-zero; anything else escaping is a bug in edgecompile.
"""


class EdgeCompileError(Exception):
    """A problem with the user's input or environment, explained for the user."""


class UnsupportedOpError(EdgeCompileError):
    """The model uses an operator edgecompile cannot compile (yet)."""


class InputShapeError(EdgeCompileError):
    """The model does not run on an input of the shape it was given (or that was inferred)."""

"""User-facing errors of the library. Messages say what failed, why, and how to fix it; the node adapters
prefix them with the node's name ("ATOP Part Mask Render: part 'door' not found; parts are: body, lid")."""
from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a missing or corrupt file, an unknown name, an out-of-range value."""


class ModelFileError(InputError):
    """A model file or folder that is missing, of the wrong format or of the wrong architecture."""


class DivergenceError(RuntimeError):
    """An optimisation produced NaN/Inf; the message says what was kept and what to change."""

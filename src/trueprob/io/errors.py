"""Errors of the file readers."""

from __future__ import annotations

import importlib
from types import ModuleType


class FileFormatError(ValueError):
    """A file that cannot be read as model outputs: corrupt, truncated, of an unsupported
    type, missing a named field, with fields of different lengths, non-numeric, or holding a
    pickle. The message names the file and the problem.

    Examples
    --------
    >>> from trueprob.io import FileFormatError
    >>> issubclass(FileFormatError, ValueError)
    True
    """


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or raise ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional dependency {module.split('.')[0]!r}, which is not "
            f"installed; install it with: pip install 'trueprob[{extra}]'"
        ) from exc

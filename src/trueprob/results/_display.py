"""Notebook display of the result records, without the records knowing how to draw.

The records sit below the rendering layer, so they cannot import it. Instead the rendering
functions are registered here by name (``"html"``, ``"markdown"``) and the records' Jupyter
hooks (``_repr_html_``, ``_repr_markdown_``) look them up: `trueprob/__init__.py` (the facade,
above the rendering layer) registers :func:`trueprob.report.notebook.to_html` and
:func:`~trueprob.report.notebook.to_markdown`, imported only when a record is displayed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_RENDERERS: dict[str, Callable[[Any], str]] = {}


def register(kind: str, render: Callable[[Any], str]) -> None:
    """Use ``render(record) -> str`` for ``kind`` (``"html"`` or ``"markdown"``)."""
    if kind not in ("html", "markdown"):
        raise ValueError(f"kind must be 'html' or 'markdown'; got {kind!r}")
    _RENDERERS[kind] = render


class NotebookDisplay:
    """Mixin: a record shows itself in Jupyter through the registered renderers (``None``, so
    the plain ``repr``, when none is registered)."""

    __slots__ = ()

    def _repr_html_(self) -> str | None:
        render = _RENDERERS.get("html")
        return None if render is None else render(self)

    def _repr_markdown_(self) -> str | None:
        render = _RENDERERS.get("markdown")
        return None if render is None else render(self)

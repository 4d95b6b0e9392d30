"""Rendering hooks of the records, without the records knowing how to render.

The records (and the analyses) sit below the rendering layer, so they cannot import it.
Instead rendering functions are registered here by name and looked up when needed:
`trueprob/__init__.py` (the facade, above the rendering layer) registers ``"html"`` and
``"markdown"`` (:func:`trueprob.report.notebook.to_html` / ``to_markdown``, for the Jupyter
hooks ``_repr_html_`` / ``_repr_markdown_``) and the verdict functions behind the deprecated
``.verdict()`` methods of the analyses; each imports the rendering layer only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_RENDERERS: dict[str, Callable[[Any], Any]] = {}


def register(kind: str, render: Callable[[Any], Any]) -> None:
    """Use ``render(record)`` for ``kind`` (``"html"``, ``"markdown"``, or a verdict's name)."""
    _RENDERERS[kind] = render


def renderer(kind: str) -> Callable[[Any], Any]:
    """The function registered for ``kind`` (a LookupError naming it when there is none)."""
    try:
        return _RENDERERS[kind]
    except KeyError:
        raise LookupError(f"no renderer registered for {kind!r} (import trueprob first)") \
            from None


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

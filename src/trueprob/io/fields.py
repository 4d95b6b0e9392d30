"""Which arrays or columns of a file hold which input: explicit names, globs, auto-detection.

A *field* is one input of :func:`trueprob.evaluate` (``logits``, ``probs``, ``labels``,
``targets``, ``counts``, ``sample_weight``, ``confidences``, ``predictions``). A *name* is what
the file calls an array (npz, npy, pt) or a column (csv, parquet). Only names decide which field
is which: values are never looked at to guess logits from probabilities.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from trueprob.io.errors import FileFormatError

#: every field, in the order of ``trueprob.evaluate``'s arguments
FIELDS = ("logits", "probs", "labels", "targets", "counts", "sample_weight", "confidences",
          "predictions")
#: fields that may span several columns (one per class)
MULTI_COLUMN = frozenset({"logits", "probs", "targets", "counts"})
#: the CLI option of each field (for messages)
CLI_OPTION = {name: f"--{name}" for name in FIELDS} | {"sample_weight": "--weights"}

_SCORE_GROUP = ("logits", "probs", "confidences", "predictions")
_TARGET_GROUP = ("labels", "targets", "counts")
#: column-name prefixes auto-detected in tables (csv, parquet): one column per class
_TABLE_PREFIX = {"logits": "logit_", "probs": "prob_", "targets": "target_", "counts": "count_"}
#: names auto-detected for the top-label pair (``confidences`` with ``predictions``): the
#: plural field names and the singular / short forms that published files use (for example
#: ``confidence`` and ``preds``); exactly one of each must be present
_CONFIDENCE_NAMES = ("confidences", "confidence")
_PREDICTION_NAMES = ("predictions", "prediction", "preds", "pred")
_GLOB_CHARS = re.compile(r"[*?\[]")
_MAX_LISTED = 20

Spec = str | Sequence[str]


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by value: ``logit_2`` before ``logit_10``.

    Examples
    --------
    >>> sorted(["logit_10", "logit_2", "logit_1"], key=natural_key)
    ['logit_1', 'logit_2', 'logit_10']
    """
    parts = re.split(r"(\d+)", name)
    key: list[tuple[int, int | str]] = []
    for i, part in enumerate(parts):
        key.append((1, int(part)) if i % 2 else (0, part))
    # equal values written differently ("1" vs "01") still sort in a fixed order
    key.append((0, name))
    return tuple(key)


def listing(names: Sequence[str]) -> str:
    """The names of a file, for an error message (at most 20 shown)."""
    if not names:
        return "(none)"
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f", ... ({more} more)" if more > 0 else "")


def option_hint(field: str) -> str:
    """``"logits= (CLI: --logits)"``: how to name a field from Python and from the CLI."""
    return f"{field}= (CLI: {CLI_OPTION[field]})"


def resolve(label: str, field: str, spec: Spec, names: Sequence[str], kind: str,
            multi: bool | None = None) -> list[str]:
    """The names that ``spec`` selects for ``field``, in order.

    ``spec`` is a name, a glob (``'logit_*'``, matches in natural order), a comma-separated list
    of names or globs, or a sequence of them. A name that exists in the file verbatim is taken
    as is, even if it contains a comma or glob characters. ``multi`` says whether the field may
    span several arrays/columns (default: whether it is one of the per-class fields).
    """
    if multi is None:
        multi = field in MULTI_COLUMN
    if isinstance(spec, str):
        items = [spec] if spec in names else [s.strip() for s in spec.split(",")]
    elif isinstance(spec, Sequence) and all(isinstance(s, str) for s in spec):
        items = list(spec)
    else:
        raise TypeError(
            f"{field} must be a name, a glob or a comma-separated list of names (a string), "
            f"or a sequence of strings; got {spec!r}"
        )
    if not items or any(not s for s in items):
        raise ValueError(f"{field} must name at least one {kind}; got {spec!r}")
    chosen: list[str] = []
    for item in items:
        if item in names:
            matches = [item]
        elif _GLOB_CHARS.search(item):
            matches = sorted(fnmatch.filter(names, item), key=natural_key)
            if not matches:
                raise FileFormatError(
                    f"{label}: {field}: the pattern {item!r} matches no {kind}; "
                    f"{kind}s in the file: {listing(names)}"
                )
        else:
            raise FileFormatError(
                f"{label}: {field}: no {kind} named {item!r}; {kind}s in the file: "
                f"{listing(names)}"
            )
        for m in matches:
            if m in chosen:
                raise FileFormatError(f"{label}: {field}: {kind} {m!r} is named twice in {spec!r}")
            chosen.append(m)
    if not multi and len(chosen) > 1:
        raise FileFormatError(
            f"{label}: {field} is one {kind}, but {spec!r} selects {len(chosen)}: "
            f"{listing(chosen)}"
        )
    return chosen


def _canonical(field: str, names: Sequence[str], table: bool) -> list[str]:
    """The canonical name(s) of ``field`` present in the file, or []."""
    if field in names:
        return [field]
    prefix = _TABLE_PREFIX.get(field)
    if table and prefix is not None:
        return sorted((n for n in names if n.startswith(prefix)), key=natural_key)
    return []


def _top_label_pair(names: Sequence[str]) -> tuple[str, str] | None:
    """(confidence name, prediction name) when the file holds exactly one of each."""
    conf = [n for n in _CONFIDENCE_NAMES if n in names]
    pred = [n for n in _PREDICTION_NAMES if n in names]
    return (conf[0], pred[0]) if len(conf) == 1 and len(pred) == 1 else None


def plan(
    label: str, names: Sequence[str], specs: dict[str, Spec | None], *, table: bool
) -> dict[str, list[str]]:
    """Map each field to the names it reads: explicit ``specs`` first, then auto-detection.

    Fields are auto-detected by group, and only for a group of which no field was named:
    model outputs (``logits`` / ``probs`` / ``confidences`` + ``predictions``), targets
    (``labels`` / ``targets`` / ``counts``) and ``sample_weight``. Auto-detection accepts only
    the canonical names (and, in tables, the prefixes ``logit_``, ``prob_``, ``target_``,
    ``count_``); several candidates in one group are an error, never a guess.
    """
    kind = "column" if table else "array"
    unknown = set(specs) - set(FIELDS)
    if unknown:  # pragma: no cover - the public functions pass exactly FIELDS
        raise TypeError(f"unknown fields {sorted(unknown)}")
    out: dict[str, list[str]] = {}
    for field in FIELDS:
        spec = specs.get(field)
        if spec is not None:
            out[field] = resolve(label, field, spec, names, kind)

    if not any(specs.get(f) is not None for f in _SCORE_GROUP):
        found = {f: _canonical(f, names, table) for f in ("logits", "probs")}
        found = {f: v for f, v in found.items() if v}
        top_label = _top_label_pair(names)
        if top_label is not None:
            found["confidences"] = [top_label[0]]
        if len(found) > 1:
            what = "; ".join(f"{f}: {listing(v)}" for f, v in found.items())
            raise FileFormatError(
                f"{label}: found more than one kind of model output ({what}); trueprob never "
                f"guesses which is meant: pass " + " or ".join(option_hint(f) for f in found)
            )
        if not found:
            prefixes = " (or columns logit_* / prob_*)" if table else ""
            raise FileFormatError(
                f"{label}: no model outputs found: no {kind} named 'logits' or 'probs'"
                f"{prefixes}, nor 'confidences' (or 'confidence') with 'predictions' (or "
                f"'preds'); {kind}s in the file: {listing(names)}. Name them with "
                f"{option_hint('logits')}, {option_hint('probs')}, or, for top-label "
                f"outputs, {option_hint('confidences')} with {option_hint('predictions')}"
            )
        (field, chosen), = found.items()
        out[field] = chosen
        if field == "confidences":
            out["predictions"] = [_top_label_pair(names)[1]]  # type: ignore[index]

    if not any(specs.get(f) is not None for f in _TARGET_GROUP):
        found = {f: _canonical(f, names, table) for f in _TARGET_GROUP}
        found = {f: v for f, v in found.items() if v}
        if len(found) > 1:
            what = "; ".join(f"{f}: {listing(v)}" for f, v in found.items())
            raise FileFormatError(
                f"{label}: found more than one kind of target ({what}); pass one of "
                + ", ".join(option_hint(f) for f in found)
            )
        for field, chosen in found.items():
            out[field] = chosen

    if specs.get("sample_weight") is None and "sample_weight" in names:
        out["sample_weight"] = ["sample_weight"]
    return out

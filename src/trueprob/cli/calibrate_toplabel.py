"""`trueprob fit`, `apply`, `compare` on top-label outputs (``--confidences``, ``--predictions``).

LLM and API evaluations often publish only the predicted class and its confidence. The binary
methods fit on (confidence, correctness) through
:class:`~trueprob.calibrators.multiclass.TopLabel` and map confidences to confidences; the
vector methods (temperature, vector, matrix, Dirichlet) are refused with the reason. The
commands' own module (:mod:`trueprob.cli.calibrate_cmd`) reads the files and calls these when
a file holds top-label outputs; everything computed here is the library's.
"""

from __future__ import annotations

from typing import Any

import click

from trueprob.calibrators.by_name import (
    METHODS,
    TOP_LABEL_METHODS,
    make_top_label_calibrator,
    top_label_refusal,
)
from trueprob.calibrators.compare import Candidate, top_label_losses
from trueprob.cli._common import (
    DataError,
    about,
    echo_err,
    save_calibrator,
    split_methods,
    warnings_to_stderr,
    write_npz,
)

#: what a top-label file passes to fit and predict, besides the labels
_FIT_KEYS = ("confidences", "predictions", "targets", "counts", "sample_weight")
_PASSED_THROUGH = ("labels", "targets", "counts", "sample_weight")


def fit_top_label_file(file: str, method: str, output: str, force: bool,
                       arrays: dict[str, Any]) -> None:
    """Fit the top-label map ``method`` on a top-label file, save it, print the one line.

    The line gives the top-label NLL (the binary log loss of correctness, in bits) before
    and after; an infinite value (a wrong prediction at confidence 1) is printed as inf.
    """
    reason = top_label_refusal(method)
    if reason is not None:
        raise DataError(f"{file} holds top-label outputs (confidences and predictions): "
                        f"{reason}")
    calibrator = make_top_label_calibrator(method)
    inputs = {k: arrays[k] for k in _FIT_KEYS if k in arrays}
    with about(file), warnings_to_stderr():
        before, _ = top_label_losses(arrays, unit="bits")
        calibrator.fit(arrays.get("labels"), **inputs)
        calibrated = calibrator.predict_confidences(confidences=arrays["confidences"],
                                                    predictions=arrays["predictions"])
        after, _ = top_label_losses(arrays, calibrated, unit="bits")
    save_calibrator(calibrator, output, force=force)
    n = int(arrays["confidences"].shape[0])
    echo_err(f"trueprob: fit {method} (top-label) on {file} ({n} rows): top-label NLL "
             f"{before:.6f} -> {after:.6f} bits; saved {output}")


def apply_top_label_file(cal: Any, calibrator: str, file: str, output: str, force: bool,
                         arrays: dict[str, Any]) -> None:
    """Write ``confidences`` (calibrated) and ``predictions`` (unchanged), with the file's
    labels / targets / counts / sample_weight, to an ``.npz`` that ``trueprob evaluate``
    reads by those names."""
    import numpy as np

    from trueprob._array import to_numpy
    from trueprob.calibrators.multiclass import TopLabel

    if not isinstance(cal, TopLabel):
        raise DataError(
            f"{calibrator}: a {type(cal).__name__} maps whole vectors (logits or "
            f"probabilities, one per class), but {file} gives only top-label confidences and "
            f"predictions; a TopLabel calibrator applies to them (trueprob fit -m METHOD "
            f"--confidences C --predictions P, METHOD one of {', '.join(TOP_LABEL_METHODS)}; "
            f"or --multiclass top-label on vectors)")
    with about(file, calibrator), warnings_to_stderr():
        conf = to_numpy(cal.predict_confidences(confidences=arrays["confidences"],
                                                predictions=arrays["predictions"]))
    result: dict[str, Any] = {"confidences": np.asarray(conf),
                              "predictions": np.asarray(arrays["predictions"])}
    result.update({k: arrays[k] for k in _PASSED_THROUGH if k in arrays})
    write_npz(output, result, force=force)
    echo_err(f"trueprob: applied {type(cal).__name__} to the top-label outputs of {file} "
             f"({conf.shape[0]} rows); saved {output}")


def parse_top_label_methods(text: str) -> list[Candidate] | None:
    """``all`` (None: every binary method on the confidence) or a comma list of METHOD or
    METHOD/top-label; a vector method, or /one-vs-rest, is a usage error with the reason."""
    items = split_methods(text)
    if items is None:
        return None
    out: list[Candidate] = []
    for item, method, how in items:
        if method not in METHODS or how not in ("", "top-label"):
            known = ", ".join(TOP_LABEL_METHODS)
            raise click.BadParameter(
                f"{item!r} is not a top-label method; on top-label outputs choose from all, "
                f"{known} (or METHOD/top-label)", param_hint="--methods")
        reason = top_label_refusal(method)
        if reason is not None:
            raise click.BadParameter(reason, param_hint="--methods")
        out.append(Candidate(method, "top-label", label=item))
    return list({c.method: c for c in out}.values())

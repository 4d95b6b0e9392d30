"""Temperature scaling over a stream: the NLL and its derivatives summed, a pass a Halley step."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from trueprob._progress import ProgressBar
from trueprob.streaming.batches import (
    Batch,
    _stream,
)
from trueprob.streaming.driver import NO_ROWS, sum_fit_rows
from trueprob.streaming.files import (
    BATCH_ROWS,
    PathLike,
    Spec,
    _check_batch_rows,
)
from trueprob.streaming.fitrows import FitRows
from trueprob.streaming.progress import counted, pass_progress

#: first-pass sums: W, sum w f(1), sum w (mean_k zc - t.zc), rows with non-constant scores,
#: rows whose target is not all on the largest scores, sum w log(#largest scores)
N_FIRST = 6


def _shifted(rows: FitRows, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(zc = z - max_k z in ``dtype``, t . zc in float64, max_k z)."""
    z = rows.scores
    zmax = z.max(axis=1)
    zc64 = z.astype(np.float64) - zmax[:, None].astype(np.float64)
    if rows.labels is not None:
        tz = np.take_along_axis(zc64, rows.labels[:, None], axis=1)[:, 0]
    else:
        assert rows.targets is not None
        tz = np.einsum("ij,ij->i", rows.targets, zc64)
    zc = zc64 if dtype == np.float64 else (z - zmax[:, None]).astype(dtype)
    return zc, tz, zmax


def temperature_first_sums(rows: FitRows) -> np.ndarray:
    """The first pass of a temperature fit over some rows (add the results of all parts).

    With zc_i = z_i - max_k z_ik and t_i . zc_i: [W, sum_i w_i f_i(1), sum_i w_i
    (mean_k zc_ik - t_i . zc_i), #rows (w > 0) with non-constant scores, #rows (w > 0) with
    t_i . zc_i != 0, sum_{w_i > 0} w_i log m_i] (m_i: how many scores equal the maximum).
    """
    zc, tz, zmax = _shifted(rows, np.float64)
    w = rows.weights
    active = w > 0
    means = zc.mean(axis=1)
    f1 = np.log(np.exp(zc).sum(axis=1)) - tz
    n_max = (rows.scores == zmax[:, None]).sum(axis=1)
    return np.array([w.sum(), w @ f1, w @ (means - tz),
                     float(np.count_nonzero(active & (means != 0))),
                     float(np.count_nonzero(active & (tz != 0))),
                     w[active] @ np.log(n_max[active])])


def temperature_sums(rows: FitRows, beta: float) -> np.ndarray:
    """Weighted sums of f_i and its first three derivatives in beta = 1/T over some rows.

    f_i(beta) = logsumexp(beta z_i) - beta t_i . z_i; f_i' = E_q[z_i] - t_i . z_i,
    f_i'' = Var_q[z_i], f_i''' = E_q[(z_i - E_q z_i)^3] under q = softmax(beta z_i)
    (the formulas of :mod:`trueprob.calibrators.temperature`, in float64, on scores shifted
    by their row maximum so exp never overflows). Returns [sum w f, sum w f', sum w f'',
    sum w f''']; divide by W for the derivatives of the NLL.
    """
    from trueprob.calibrators._temperature_fit import derivative_sums

    zc, tz, _ = _shifted(rows, np.float64)
    e = np.exp(beta * zc)
    s0 = e.sum(axis=1)
    e *= zc
    s1 = e.sum(axis=1)
    e *= zc
    s2 = e.sum(axis=1)
    s3 = np.einsum("ij,ij->i", e, zc)
    return derivative_sums(s0, s1, s2, s3, tz, rows.weights, beta)


def fit_temperature_sums(
    first: np.ndarray,
    run_pass: Callable[[float], np.ndarray],
    *,
    kind: str,
    n_classes: int,
    max_iter: int = 50,
) -> Any:
    """A fitted :class:`~trueprob.calibrators.temperature.TemperatureScaling` from map-reduced
    sums: ``first`` (:func:`temperature_first_sums` added over all rows) and ``run_pass(beta)``
    (:func:`temperature_sums` added over all rows, one pass each).

    The fit is :meth:`TemperatureScaling.fit_passes
    <trueprob.calibrators.temperature.TemperatureScaling.fit_passes>`: the safeguarded Halley
    iteration of the in-memory fit with the same stopping rule, started at beta = 1; the
    degenerate cases give the same warnings and limits.
    """
    from trueprob.calibrators.temperature import TemperatureScaling

    return TemperatureScaling(max_iter=max_iter).fit_passes(first, run_pass, kind=kind,
                                                            n_classes=n_classes)


def fit_temperature_batches(passes: Callable[[], Iterable[Batch]], *,
                            max_iter: int = 50, bar: ProgressBar | None = None) -> Any:
    """Temperature scaling by maximum likelihood over a restartable stream of batches.

    ``bar`` (optional) counts the rows of every pass ("temperature: Halley pass 3").
    """
    seen: list[tuple[str, int]] = []

    def note(batch: Batch) -> None:
        seen[:] = [("logits" if batch.inputs.kind == "logits" else "probs",
                    batch.inputs.n_classes)]

    first = sum_fit_rows(counted(passes, bar, "temperature: first pass (T = 1)"), N_FIRST,
                         temperature_first_sums, on_batch=note)
    if not seen:
        raise ValueError(NO_ROWS)
    kind, k = seen[0]
    halley = 0

    def run_pass(beta: float) -> np.ndarray:
        nonlocal halley
        halley += 1
        return sum_fit_rows(counted(passes, bar, f"temperature: Halley pass {halley}"), 4,
                            lambda rows: temperature_sums(rows, beta))

    return fit_temperature_sums(first, run_pass, kind=kind, n_classes=k, max_iter=max_iter)


def fit_temperature_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    batch_rows: int = BATCH_ROWS,
    max_iter: int = 50,
    quiet: bool | None = None,
) -> Any:
    """Fit temperature scaling on a dataset by maximum likelihood, in passes over batches.

    Minimises f(beta) = (1/W) sum_i w_i [ logsumexp(beta z_i) - beta t_i . z_i ], beta = 1/T,
    with the exact gradient and Hessian (and third derivative) summed over all rows in each
    pass: a first pass for f(1) and the degenerate cases, then one pass per safeguarded
    Halley step from beta = 1 (usually four to six passes in all). Memory is one batch.
    The result equals ``TemperatureScaling().fit`` on all rows at once to machine precision
    (both stop at the same rule: a Halley step below 3e-6 beta leaves an error of order its
    cube). Unless ``quiet``, a bar over the rows of each pass is drawn on standard error
    when it is a terminal (as in :func:`evaluate_path`).

    Returns
    -------
    TemperatureScaling
        Fitted; ``n_iter_`` counts the passes over the data.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]]),
    ...          labels=np.array([0, 1, 1, 1]))
    >>> ts = fit_temperature_path(path, batch_rows=3)
    >>> round(ts.temperature_, 6)
    3.640957
    """
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": None,
             "predictions": None}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), None, None,
                     purpose="temperature scaling")
    with pass_progress(path, specs, "temperature", quiet=quiet) as bar:
        return fit_temperature_batches(passes, max_iter=max_iter, bar=bar)

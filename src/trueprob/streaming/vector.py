"""Vector scaling over a stream: the NLL, gradient and Hessian summed by passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from trueprob.streaming.batches import (
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


def vector_sums(rows: FitRows, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Weighted sums for vector scaling at (w, b) over some rows (add the results of parts).

    With s_i = w * x_i + b (x_i the scores), q_i = softmax(s_i) and r_i = q_i - t_i:
    f = sum_i w_i [logsumexp(s_i) - t_i . s_i]; gradient (sum_i w_i r_i x_i, sum_i w_i r_i);
    Hessian sum_i w_i J_i' (diag q_i - q_i q_i') J_i with J_i = [diag x_i, I]. Returned flat:
    [W, f, grad (2K), Hessian (2K x 2K)].
    """
    x = rows.scores.astype(np.float64)
    w = rows.weights
    s = x * coef + intercept
    m = s.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(s - m).sum(axis=1))
    q = np.exp(s - lse[:, None])
    r = q.copy()
    if rows.labels is not None:
        ts = np.take_along_axis(s, rows.labels[:, None], axis=1)[:, 0]
        r[np.arange(len(r)), rows.labels] -= 1.0
    else:
        assert rows.targets is not None
        ts = np.einsum("ij,ij->i", rows.targets, s)
        r -= rows.targets
    f = w @ (lse - ts)
    wr = r * w[:, None]
    grad = np.concatenate([(wr * x).sum(axis=0), wr.sum(axis=0)])
    qx = q * x
    wq, wqx = q * w[:, None], qx * w[:, None]
    h_ww = np.diag((wqx * x).sum(axis=0)) - wqx.T @ qx
    h_wb = np.diag(wqx.sum(axis=0)) - wqx.T @ q
    h_bb = np.diag(wq.sum(axis=0)) - wq.T @ q
    hess = np.block([[h_ww, h_wb], [h_wb.T, h_bb]])
    return np.concatenate([[w.sum(), f], grad, hess.ravel()])


def fit_vector_sums(
    run_pass: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    kind: str,
    n_classes: int,
    reg: str = "l2",
    reg_lambda: float = 0.0,
    reg_mu: float | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> Any:
    """A fitted :class:`~trueprob.calibrators.scaling.VectorScaling` from map-reduced sums:
    ``run_pass(w, b)`` returns :func:`vector_sums` added over all rows.

    Minimises F = f / W + penalty (the penalties of ``VectorScaling``: ``"l2"``,
    lambda / (2K) (||w - 1||^2 + ||b||^2); ``"odir"``, mu / K ||b||^2) with the solver of
    the in-memory fit (:meth:`~trueprob.calibrators.scaling.VectorScaling.fit_passes`:
    trust-region Newton on the exact gradient and Hessian of every pass, then Newton steps).
    The intercepts are centred when they are not penalised (softmax ignores a common shift).
    One pass per new point; ``n_iter_`` counts them.
    """
    from trueprob.calibrators.scaling import VectorScaling

    cal = VectorScaling(reg=reg, reg_lambda=reg_lambda, reg_mu=reg_mu, tol=tol,
                        max_iter=max_iter)
    return cal.fit_passes(run_pass, kind=kind, n_classes=n_classes)


def fit_vector_scaling_path(
    path: PathLike,
    /,
    *,
    logits: Spec = None,
    probs: Spec = None,
    labels: Spec = None,
    targets: Spec = None,
    counts: Spec = None,
    sample_weight: Spec = None,
    reg: str = "l2",
    reg_lambda: float = 0.0,
    reg_mu: float | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
    batch_rows: int = BATCH_ROWS,
    quiet: bool | None = None,
) -> Any:
    """Fit vector scaling (r_i = softmax(w * x_i + b)) on a dataset, in passes over batches.

    Penalised maximum likelihood as :class:`~trueprob.calibrators.scaling.VectorScaling`
    with a fixed ``reg_lambda`` (cross-validation needs the rows in memory), by the solver
    of the in-memory fit on the exact gradient and Hessian summed over all rows in each pass
    (:func:`fit_vector_sums`). Memory: one batch and a 2K x 2K matrix. Unless ``quiet``, a
    bar over the rows of each pass is drawn on standard error when it is a terminal.

    Examples
    --------
    >>> import tempfile, os
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 2
    >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    >>> path = os.path.join(tempfile.mkdtemp(), "val.npz")
    >>> np.savez(path, logits=3 * z, labels=y)      # logits made 3x too large
    >>> np.round(1 / fit_vector_scaling_path(path, batch_rows=512).coef_)
    array([3., 3., 3.])
    """
    specs = {"logits": logits, "probs": probs, "labels": labels, "targets": targets,
             "counts": counts, "sample_weight": sample_weight, "confidences": None,
             "predictions": None}
    passes = _stream(path, specs, _check_batch_rows(batch_rows), None, None,
                     purpose="vector scaling")
    kind, k = "logits", 0
    for batch in passes():
        kind = "logits" if batch.inputs.kind == "logits" else "probs"
        k = batch.inputs.n_classes
        break
    if k == 0:
        raise ValueError(NO_ROWS)

    newton = 0

    def run_pass(coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        nonlocal newton
        newton += 1
        return sum_fit_rows(counted(passes, bar, f"vector scaling: Newton pass {newton}"),
                            2 + 2 * k + 4 * k * k,
                            lambda rows: vector_sums(rows, coef, intercept),
                            purpose="vector scaling")

    with pass_progress(path, specs, "vector scaling", quiet=quiet) as bar:
        return fit_vector_sums(run_pass, kind=kind, n_classes=k, reg=reg,
                               reg_lambda=reg_lambda, reg_mu=reg_mu, tol=tol,
                               max_iter=max_iter)

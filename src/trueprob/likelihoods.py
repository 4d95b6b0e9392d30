"""The likelihood catalogue: which distribution a training loss is the negative log of.

A network trained by minimising a loss L is doing maximum likelihood exactly when L is, up to
terms that do not depend on the model, -log p(y | model) for some distribution p of the target.
Then its outputs are parameters of that distribution, and "are they really probabilities?"
becomes a calibration question for that distribution. :data:`CATALOGUE` lists, for each target
structure, the distribution, its negative log-likelihood, the loss name people use, and the
calibration notion that goes with it; ``docs/likelihoods.md`` is this table with the reasoning.

The functions compute each negative log-likelihood per row from the model's outputs, in the
namespace of the inputs (numpy, torch, ...), in nats. The tests check every equivalence
numerically against scipy.stats log-densities and torch's loss functions.

Label smoothing is listed because it is often mistaken for a likelihood: its loss is the
cross-entropy against a smoothed target, equal to (1 - eps) NLL + eps (H(u) + KL(u || q)); it is
not -log p(y) for any distribution of the observed label y (the values exp(-loss) over the K
possible labels do not sum to 1), and its expected value is minimised by (1 - eps) p + eps u,
not by the true distribution p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from trueprob._array import Array, as_array, is_array, is_torch, namespace
from trueprob.core.special import logsumexp
from trueprob.regression import core as regression_core


@dataclass(frozen=True)
class Likelihood:
    """One row of the catalogue.

    ``target``: the structure of the observed target; ``distribution``: the model's
    distribution of it; ``nll``: -log p(y) per row; ``loss``: the names the loss goes by;
    ``calibration``: what "the outputs are probabilities" means for it and where trueprob
    measures it; ``is_likelihood``: False when the loss is not -log p(y) of any distribution
    of the observed target; ``function``: the function of this module computing ``nll``.
    """

    name: str
    target: str
    distribution: str
    nll: str
    loss: str
    calibration: str
    is_likelihood: bool
    function: str


CATALOGUE: tuple[Likelihood, ...] = (
    Likelihood(
        "categorical", "one class label y in {0..K-1}", "Categorical(q), q = softmax(z)",
        "logsumexp(z) - z_y", "softmax cross-entropy (log loss, NLL)",
        "P(Y = k | q) = q_k: top-label, classwise and canonical calibration "
        "(trueprob.evaluate)", True, "categorical_nll"),
    Likelihood(
        "multinomial", "counts n_k of m annotations (sum_k n_k = m)",
        "Multinomial(m, q), q = softmax(z)",
        "m CE(n / m, q) - log(m! / prod_k n_k!)",
        "soft-label cross-entropy (times m, plus a constant)",
        "q against the annotators' vote shares: soft-label calibration, CE = H(p) + KL(p || q) "
        "(trueprob.evaluate(counts=...))", True, "multinomial_nll"),
    Likelihood(
        "bernoulli", "L independent 0/1 labels y_l (multi-label)",
        "prod_l Bernoulli(q_l), q_l = sigmoid(z_l)",
        "sum_l softplus(z_l) - y_l z_l", "binary cross-entropy (BCE with logits)",
        "P(Y_l = 1 | q_l) = q_l per label; micro and macro aggregates "
        "(trueprob.multilabel)", True, "bernoulli_nll"),
    Likelihood(
        "gaussian-fixed", "a real value y", "Normal(mu, sigma^2), sigma fixed",
        "(y - mu)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2",
        "mean squared error (scaled, plus a constant)",
        "only the mean is modelled: no spread to calibrate until sigma is fitted "
        "(VarianceScaling on Gaussian(mean, std=sigma))", True, "gaussian_nll"),
    Likelihood(
        "gaussian", "a real value y", "Normal(mu, sigma^2), sigma predicted",
        "(y - mu)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2",
        "Gaussian NLL (heteroscedastic regression)",
        "the PIT F(y) is uniform: PIT histogram, quantile calibration, interval coverage "
        "(trueprob.regression)", True, "gaussian_nll"),
    Likelihood(
        "laplace", "a real value y", "Laplace(mu, b)", "|y - mu| / b + log(2 b)",
        "L1 / mean absolute error (scaled, plus a constant; b fixed)",
        "the PIT F(y) is uniform; with b fixed, the median mu is what is calibrated "
        "(trueprob.regression with Laplace)", True, "laplace_nll"),
    Likelihood(
        "student-t", "a real value y", "mu + s T, T ~ Student-t(df)",
        "-log Gamma((df+1)/2) + log Gamma(df/2) + log(s sqrt(df pi)) "
        "+ (df+1)/2 log(1 + z^2/df)", "Student-t NLL (robust regression)",
        "the PIT F(y) is uniform (trueprob.regression with StudentT)", True,
        "student_t_nll"),
    Likelihood(
        "label-smoothing", "one class label y, trained against (1 - eps) e_y + eps u",
        "none: not a distribution of the observed label",
        "(1 - eps) (logsumexp(z) - z_y) + eps (H(u) + KL(u || q))",
        "label-smoothed cross-entropy",
        "the expected loss is minimised by (1 - eps) p + eps u, not p: smoothed outputs are "
        "calibrated to the smoothed target, so measure them against the real labels",
        False, "label_smoothing_loss"),
)


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (the table of ``docs/likelihoods.md``).

    >>> catalogue_markdown().splitlines()[0]
    '| target | distribution | negative log-likelihood | loss | calibration | likelihood? |'
    """
    def cell(text: str) -> str:
        return text.replace("|", "\\|")  # a literal | inside a table cell

    lines = ["| target | distribution | negative log-likelihood | loss | calibration | "
             "likelihood? |", "|---|---|---|---|---|---|"]
    for e in CATALOGUE:
        lines.append(f"| {cell(e.target)} | {cell(e.distribution)} | `{cell(e.nll)}` | "
                     f"{cell(e.loss)} | {cell(e.calibration)} | "
                     f"{'yes' if e.is_likelihood else 'no'} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- helpers
def _xp(*arrays: Any) -> Any:
    present = [a for a in arrays if is_array(a)]
    return namespace(*present) if present else np


def _f64(xp: Any, x: Any) -> Array:
    return xp.astype(as_array(x, xp), xp.float64)


def _lgamma(xp: Any, x: Array) -> Array:
    if is_torch(xp):
        import torch

        return torch.lgamma(x)
    return xp.asarray(special.gammaln(x))


# --------------------------------------------------------------------------- classification
def categorical_nll(labels: Any, /, *, logits: Any) -> Array:
    """-log Categorical(y_i | softmax(z_i)) = logsumexp(z_i) - z_{i, y_i} per row (nats).

    >>> import numpy as np
    >>> categorical_nll(np.array([0]), logits=np.log(np.array([[0.25, 0.75]]))).round(6)
    array([1.386294])
    """
    xp = _xp(labels, logits)
    z = _f64(xp, logits)
    y = xp.astype(as_array(labels, xp), xp.int64)
    return logsumexp(xp, z) - xp.take_along_axis(z, y[:, None], axis=1)[:, 0]


def soft_cross_entropy(targets: Any, /, *, logits: Any) -> Array:
    """CE(t_i, softmax(z_i)) = sum_k t_ik (logsumexp(z_i) - z_ik) per row (nats).

    >>> import numpy as np
    >>> soft_cross_entropy(np.array([[0.5, 0.5]]), logits=np.zeros((1, 2))).round(6)
    array([0.693147])
    """
    xp = _xp(targets, logits)
    z = _f64(xp, logits)
    t = _f64(xp, targets)
    return xp.sum(t * (logsumexp(xp, z)[:, None] - z), axis=1)


def multinomial_nll(counts: Any, /, *, logits: Any) -> Array:
    """-log Multinomial(n_i | n_i., softmax(z_i)) per row (nats), n_i. = sum_k n_ik:

        sum_k n_ik (logsumexp(z_i) - z_ik) - log(n_i.! / prod_k n_ik!)
        = n_i. CE(n_i / n_i., q_i) - log(n_i.! / prod_k n_ik!).

    >>> import numpy as np
    >>> multinomial_nll(np.array([[1, 1]]), logits=np.zeros((1, 2))).round(6)  # -log(2 / 4)
    array([0.693147])
    """
    xp = _xp(counts, logits)
    z = _f64(xp, logits)
    n = _f64(xp, counts)
    total = xp.sum(n, axis=1)
    log_coef = _lgamma(xp, total + 1.0) - xp.sum(_lgamma(xp, n + 1.0), axis=1)
    return xp.sum(n * (logsumexp(xp, z)[:, None] - z), axis=1) - log_coef


def bernoulli_nll(labels: Any, /, *, logits: Any) -> Array:
    """-log Bernoulli(y | sigmoid(z)) = softplus(z) - y z, elementwise (nats), any shape.

    softplus(z) = max(z, 0) + log1p(e^-|z|), so no overflow for large |z|.

    >>> import numpy as np
    >>> bernoulli_nll(np.array([1.0, 0.0]), logits=np.array([0.0, 0.0])).round(6)
    array([0.693147, 0.693147])
    """
    xp = _xp(labels, logits)
    z = _f64(xp, logits)
    y = _f64(xp, labels)
    softplus = xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))
    return softplus - y * z


def label_smoothing_loss(labels: Any, /, *, logits: Any, smoothing: float) -> Array:
    """The label-smoothed cross-entropy per row (nats): CE(t_i, softmax(z_i)) with the smoothed
    target t_i = (1 - eps) e_{y_i} + eps u, u uniform over the K classes. Equal to

        (1 - eps) (logsumexp(z_i) - z_{i, y_i}) + eps (H(u) + KL(u || q_i)),  H(u) = log K.

    Not a negative log-likelihood of y_i (see the module docstring).

    >>> import numpy as np
    >>> label_smoothing_loss(np.array([0]), logits=np.zeros((1, 2)), smoothing=0.1).round(6)
    array([0.693147])
    """
    if not (isinstance(smoothing, (int, float)) and 0.0 <= smoothing <= 1.0):
        raise ValueError(f"smoothing must be a number in [0, 1]; got {smoothing!r}")
    xp = _xp(labels, logits)
    z = _f64(xp, logits)
    nll = categorical_nll(labels, logits=z)
    uniform_ce = logsumexp(xp, z) - xp.mean(z, axis=1)  # CE(u, q) = log K + KL(u || q)
    return (1.0 - smoothing) * nll + smoothing * uniform_ce


# --------------------------------------------------------------------------- regression
def _location_scale_nll(family: str, observed: Any, loc: Any, scale: Any,
                        df: Any = None) -> Array:
    xp = _xp(observed, loc, scale, df)
    y, mu = _f64(xp, observed), _f64(xp, loc)
    s = _f64(xp, scale)
    nu = None if df is None else (float(df) if np.ndim(df) == 0 and not is_array(df)
                                  else _f64(xp, df))
    z = (y - mu) / s
    return xp.log(s) - regression_core.standard_logpdf(family, xp, z, nu)


def gaussian_nll(observed: Any, /, *, mean: Any, std: Any) -> Array:
    """-log Normal(y | mean, std^2) = (y - mean)^2 / (2 std^2) + log std + log(2 pi)/2 per row.

    With std fixed this is the squared error / (2 std^2) plus a constant: minimising the MSE
    is maximum likelihood for a Gaussian of fixed variance.

    >>> import numpy as np
    >>> gaussian_nll(np.array([1.0]), mean=np.array([0.0]), std=np.array([1.0])).round(6)
    array([1.418939])
    """
    return _location_scale_nll("gaussian", observed, mean, std)


def laplace_nll(observed: Any, /, *, loc: Any, scale: Any) -> Array:
    """-log Laplace(y | loc, b) = |y - loc| / b + log(2 b) per row (nats): the L1 loss / b
    plus a constant.

    >>> import numpy as np
    >>> laplace_nll(np.array([1.0]), loc=np.array([0.0]), scale=np.array([1.0])).round(6)
    array([1.693147])
    """
    return _location_scale_nll("laplace", observed, loc, scale)


def student_t_nll(observed: Any, /, *, loc: Any, scale: Any, df: Any) -> Array:
    """-log of the location-scale Student-t density per row (nats), z = (y - loc) / scale:

        -lgamma((df + 1)/2) + lgamma(df/2) + log(scale sqrt(df pi)) + (df + 1)/2 log(1 + z^2/df)

    >>> import numpy as np
    >>> student_t_nll(np.array([0.0]), loc=np.array([0.0]), scale=np.array([1.0]), df=1.0)
    array([1.14472989])
    """
    return _location_scale_nll("student_t", observed, loc, scale, df)


__all__ = [
    "CATALOGUE",
    "Likelihood",
    "bernoulli_nll",
    "catalogue_markdown",
    "categorical_nll",
    "gaussian_nll",
    "label_smoothing_loss",
    "laplace_nll",
    "multinomial_nll",
    "soft_cross_entropy",
    "student_t_nll",
]

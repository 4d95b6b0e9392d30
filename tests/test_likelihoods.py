"""The likelihood catalogue: each loss is the negative log-likelihood of its distribution.

Both sides of every equivalence are computed numerically: the distribution side with
scipy.stats (numpy) and torch.distributions (torch), the loss side with the loss formula
(numpy) and torch.nn.functional's loss (torch), and trueprob.likelihoods' function in both
namespaces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, special, stats

import trueprob
from trueprob import likelihoods as lk
from trueprob.multilabel import evaluate_multilabel
from trueprob.regression import Gaussian
from trueprob.regression import nll as regression_nll

DOC = Path(__file__).resolve().parents[1] / "docs" / "likelihoods.md"


def softmax(z):
    return special.softmax(z, axis=1)


@pytest.fixture
def cls(rng):
    z = rng.normal(size=(40, 5)) * 2
    y = rng.integers(0, 5, size=40)
    return z, y


@pytest.fixture
def reg(rng):
    y, mu = rng.normal(size=40) * 2, rng.normal(size=40)
    return y, mu, np.exp(rng.normal(size=40) * 0.5)


def _torch():
    return pytest.importorskip("torch")


# --------------------------------------------------------------------------- categorical
def test_categorical_numpy(cls):
    z, y = cls
    ours = lk.categorical_nll(y, logits=z)
    onehot = np.eye(5)[y]
    dist = [-stats.multinomial.logpmf(onehot[i], 1, softmax(z)[i]) for i in range(40)]
    loss = -np.log(softmax(z)[np.arange(40), y])  # softmax cross-entropy, from its definition
    np.testing.assert_allclose(ours, dist, rtol=1e-12)
    np.testing.assert_allclose(ours, loss, rtol=1e-12)
    assert float(ours.mean()) == pytest.approx(trueprob.evaluate(y, logits=z).nll, rel=1e-13)


@pytest.mark.torch
def test_categorical_torch(cls):
    torch = _torch()
    z, y = (torch.tensor(a) for a in cls)
    ours = lk.categorical_nll(y, logits=z)
    loss = torch.nn.functional.cross_entropy(z, y, reduction="none")
    dist = -torch.distributions.Categorical(logits=z).log_prob(y)
    assert isinstance(ours, torch.Tensor)
    torch.testing.assert_close(ours, loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, dist, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- multinomial
def _counts(rng, n=30, k=5):
    return rng.multinomial(20, np.full(k, 1 / k), size=n) + rng.integers(0, 3, size=(n, k))


def test_multinomial_counts_numpy(cls, rng):
    z = cls[0][:30]
    n = _counts(rng)
    total = n.sum(axis=1)
    ours = lk.multinomial_nll(n, logits=z)
    dist = [-stats.multinomial.logpmf(n[i], total[i], softmax(z)[i]) for i in range(30)]
    log_coef = special.gammaln(total + 1) - special.gammaln(n + 1).sum(axis=1)
    soft_ce = lk.soft_cross_entropy(n / total[:, None], logits=z)
    np.testing.assert_allclose(ours, dist, rtol=1e-11)
    np.testing.assert_allclose(ours, total * soft_ce - log_coef, rtol=1e-12)
    # trueprob.evaluate(counts=) reports the multinomial NLL per annotation: the soft-label CE
    per_annotation = (ours + log_coef) / total
    assert trueprob.evaluate(counts=n, logits=z).nll == pytest.approx(per_annotation.mean(),
                                                                      rel=1e-12)


@pytest.mark.torch
def test_multinomial_counts_torch(cls, rng):
    torch = _torch()
    z = torch.tensor(cls[0][:30])
    n = torch.tensor(_counts(rng), dtype=torch.float64)
    total = n.sum(dim=1)
    ours = lk.multinomial_nll(n, logits=z)
    dist = torch.stack([-torch.distributions.Multinomial(int(total[i]), logits=z[i])
                        .log_prob(n[i]) for i in range(30)])
    log_coef = torch.lgamma(total + 1) - torch.lgamma(n + 1).sum(dim=1)
    loss = torch.nn.functional.cross_entropy(z, n / total[:, None], reduction="none")
    torch.testing.assert_close(ours, dist, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(ours, total * loss - log_coef, rtol=1e-12, atol=1e-12)


@pytest.mark.data
def test_cifar10h_counts_are_a_multinomial_likelihood(shared_data):
    """Mukhoti et al.'s ResNet-110 CIFAR-10 logits scored against CIFAR-10H's ~51 annotations
    per image: the per-annotation multinomial NLL is the soft-label cross-entropy."""
    counts = np.load(shared_data / "cifar10h" / "cifar10h.npz")["counts"]
    z = np.load(shared_data / "mukhoti2020-cifar-logits" / "cifar10_resnet110_brier_test.npz"
                )["logits"].astype(np.float64)
    total = counts.sum(axis=1)
    log_coef = special.gammaln(total + 1) - special.gammaln(counts + 1).sum(axis=1)
    per_annotation = (lk.multinomial_nll(counts, logits=z) + log_coef) / total
    report = trueprob.evaluate(counts=counts, logits=z)
    assert report.nll == pytest.approx(per_annotation.mean(), rel=1e-12)
    assert report.nll == pytest.approx(report.entropy + report.kl, rel=1e-12)


# --------------------------------------------------------------------------- Bernoulli
def test_bernoulli_numpy(rng):
    z = rng.normal(size=(40, 3)) * 4
    y = rng.integers(0, 2, size=(40, 3))
    ours = lk.bernoulli_nll(y, logits=z)
    p = special.expit(z)
    # the reference sides go through p = sigmoid(z), which rounds (absolute error ~1e-16)
    np.testing.assert_allclose(ours, -stats.bernoulli.logpmf(y, p), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(ours, -(y * np.log(p) + (1 - y) * np.log1p(-p)), rtol=1e-11,
                               atol=1e-14)
    report = evaluate_multilabel(y, logits=z)
    assert report.micro.nll == pytest.approx(ours.mean(), rel=1e-13)


@pytest.mark.torch
def test_bernoulli_torch(rng):
    torch = _torch()
    z = torch.tensor(rng.normal(size=(40, 3)) * 4)
    y = torch.tensor(rng.integers(0, 2, size=(40, 3)), dtype=torch.float64)
    ours = lk.bernoulli_nll(y, logits=z)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    dist = -torch.distributions.Bernoulli(logits=z).log_prob(y)
    torch.testing.assert_close(ours, loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, dist, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- Gaussian
def test_gaussian_fixed_variance_is_mse_numpy(reg):
    y, mu, _ = reg
    sigma = 0.7
    ours = lk.gaussian_nll(y, mean=mu, std=np.full(40, sigma))
    np.testing.assert_allclose(ours, -stats.norm.logpdf(y, mu, sigma), rtol=1e-12)
    mse = np.mean((y - mu) ** 2)
    const = math.log(sigma) + 0.5 * math.log(2 * math.pi)
    assert ours.mean() == pytest.approx(mse / (2 * sigma**2) + const, rel=1e-13)


@pytest.mark.torch
def test_gaussian_fixed_variance_is_mse_torch(reg):
    """Same value and the same gradient in the mean (up to 1 / (2 sigma^2)): minimising the MSE
    is maximum likelihood for a Gaussian of fixed variance."""
    torch = _torch()
    y = torch.tensor(reg[0])
    sigma = 0.7
    mu1 = torch.tensor(reg[1], requires_grad=True)
    mu2 = torch.tensor(reg[1], requires_grad=True)
    nll = lk.gaussian_nll(y, mean=mu1, std=torch.full((40,), sigma, dtype=torch.float64)).mean()
    mse = torch.nn.functional.mse_loss(mu2, y)
    const = math.log(sigma) + 0.5 * math.log(2 * math.pi)
    expect = float(mse.detach()) / (2 * sigma**2) + const
    assert float(nll.detach()) == pytest.approx(expect, rel=1e-13)
    dist = -torch.distributions.Normal(mu1, sigma).log_prob(y).mean()
    assert float(nll.detach()) == pytest.approx(float(dist.detach()), rel=1e-13)
    nll.backward()
    mse.backward()
    torch.testing.assert_close(mu1.grad, mu2.grad / (2 * sigma**2), rtol=1e-12, atol=1e-14)


def test_gaussian_learned_variance_numpy(reg):
    y, mu, sd = reg
    ours = lk.gaussian_nll(y, mean=mu, std=sd)
    np.testing.assert_allclose(ours, -stats.norm.logpdf(y, mu, sd), rtol=1e-12)
    loss = 0.5 * (np.log(sd**2) + (y - mu) ** 2 / sd**2) + 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(ours, loss, rtol=1e-12)
    assert float(ours.mean()) == pytest.approx(regression_nll(y, Gaussian(mean=mu, std=sd)),
                                               rel=1e-13)


@pytest.mark.torch
def test_gaussian_learned_variance_torch(reg):
    torch = _torch()
    y, mu, sd = (torch.tensor(a) for a in reg)
    ours = lk.gaussian_nll(y, mean=mu, std=sd)
    loss = torch.nn.functional.gaussian_nll_loss(mu, y, sd**2, full=True, reduction="none")
    dist = -torch.distributions.Normal(mu, sd).log_prob(y)
    torch.testing.assert_close(ours, loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, dist, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- Laplace, t
def test_laplace_is_l1_numpy(reg):
    y, mu, b = reg
    ours = lk.laplace_nll(y, loc=mu, scale=b)
    np.testing.assert_allclose(ours, -stats.laplace.logpdf(y, mu, b), rtol=1e-12)
    np.testing.assert_allclose(ours, np.abs(y - mu) / b + np.log(2 * b), rtol=1e-12)


@pytest.mark.torch
def test_laplace_is_l1_torch(reg):
    torch = _torch()
    y, mu, _ = (torch.tensor(a) for a in reg)
    b = 1.3
    ours = lk.laplace_nll(y, loc=mu, scale=torch.full((40,), b, dtype=torch.float64))
    loss = torch.nn.functional.l1_loss(mu, y, reduction="none") / b + math.log(2 * b)
    dist = -torch.distributions.Laplace(mu, b).log_prob(y)
    torch.testing.assert_close(ours, loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, dist, rtol=1e-12, atol=1e-12)


def test_student_t_numpy_and_torch(reg):
    y, mu, s = reg
    ours = lk.student_t_nll(y, loc=mu, scale=s, df=3.5)
    np.testing.assert_allclose(ours, -stats.t.logpdf(y, 3.5, mu, s), rtol=1e-12)
    torch = pytest.importorskip("torch")
    t = [torch.tensor(a) for a in reg]
    dist = -torch.distributions.StudentT(3.5, t[1], t[2]).log_prob(t[0])
    torch.testing.assert_close(lk.student_t_nll(t[0], loc=t[1], scale=t[2], df=3.5), dist,
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- label smoothing
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_rewrites_numpy(cls, eps):
    z, y = cls
    k = z.shape[1]
    ours = lk.label_smoothing_loss(y, logits=z, smoothing=eps)
    target = (1 - eps) * np.eye(k)[y] + eps / k
    np.testing.assert_allclose(ours, lk.soft_cross_entropy(target, logits=z), rtol=1e-12)
    nll = lk.categorical_nll(y, logits=z)
    u = np.full(k, 1 / k)
    ce_uniform = -np.log(softmax(z)) @ u
    kl = np.array([stats.entropy(u, q) for q in softmax(z)])  # KL(u || q)
    np.testing.assert_allclose(ours, (1 - eps) * nll + eps * ce_uniform, rtol=1e-12)
    np.testing.assert_allclose(ours, (1 - eps) * nll + eps * (math.log(k) + kl), rtol=1e-12)


@pytest.mark.torch
def test_label_smoothing_torch(cls):
    torch = _torch()
    z, y = (torch.tensor(a) for a in cls)
    ours = lk.label_smoothing_loss(y, logits=z, smoothing=0.1)
    loss = torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1, reduction="none")
    torch.testing.assert_close(ours, loss, rtol=1e-12, atol=1e-12)


def test_label_smoothing_is_not_a_likelihood_of_the_label(cls):
    z = cls[0][:3]
    k = z.shape[1]
    every_label = np.arange(k)
    for row in z:
        rows = np.repeat(row[None, :], k, axis=0)
        # a likelihood of y sums to 1 over the K possible labels; the smoothed loss does not
        assert np.exp(-lk.categorical_nll(every_label, logits=rows)).sum() == pytest.approx(1.0)
        assert np.exp(-lk.label_smoothing_loss(every_label, logits=rows,
                                               smoothing=0.2)).sum() < 0.99
    # its expected value under the true p is minimised by (1 - eps) p + eps u, not by p
    p = np.array([0.7, 0.2, 0.05, 0.03, 0.02])
    eps = 0.2

    def expected(logits):
        rows = np.repeat(logits[None, :], k, axis=0)
        return float(p @ lk.label_smoothing_loss(every_label, logits=rows, smoothing=eps))

    best = optimize.minimize(expected, np.zeros(k), method="BFGS", options={"gtol": 1e-10})
    q = special.softmax(best.x)
    np.testing.assert_allclose(q, (1 - eps) * p + eps / k, atol=1e-6)
    assert np.abs(q - p).max() > 0.1


# --------------------------------------------------------------------------- catalogue
def test_catalogue_and_docs_agree():
    names = {e.name for e in lk.CATALOGUE}
    assert {"categorical", "multinomial", "bernoulli", "gaussian-fixed", "gaussian", "laplace",
            "label-smoothing"} <= names
    for entry in lk.CATALOGUE:
        assert callable(getattr(lk, entry.function)), entry.function
    assert [e.name for e in lk.CATALOGUE if not e.is_likelihood] == ["label-smoothing"]
    text = DOC.read_text()
    assert lk.catalogue_markdown() in text, "docs/likelihoods.md must hold catalogue_markdown()"


def test_bad_smoothing():
    with pytest.raises(ValueError, match=r"smoothing must be a number in \[0, 1\]; got 1.5"):
        lk.label_smoothing_loss(np.array([0]), logits=np.zeros((1, 2)), smoothing=1.5)

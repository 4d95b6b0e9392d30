"""The four questions answered on real models: writes docs/answers.md and docs/answers/*.png.

Does training with cross-entropy (maximum likelihood) make a network's outputs probabilities?
Q1 all entries or only the label's? Q2 is CE = MLE limited to one-hot labels? Q3 is the
confidence the probability that the prediction is right? Q4 what do entropy and coding add?
Every number is recomputed here from the real model outputs in ../shared/data (or
$TRUEPROB_DATA) with trueprob's public API, plus a small network trained on scikit-learn's
bundled digits.

    python examples/answers.py                # the whole document (a few minutes)
    python examples/answers.py --subset --out /tmp/answers   # two models, 10 epochs

Every per-model row depends only on that model's files and a seed derived from its name, and
the training run is seeded and single-threaded, so the rows of a ``--subset`` run equal the
rows of the full run (tests/test_answers.py checks the committed document that way).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

import trueprob
from trueprob import coding
from trueprob.calibrators import IsotonicCalibration, TemperatureScaling
from trueprob.likelihoods import (
    bernoulli_nll,
    categorical_nll,
    gaussian_nll,
    label_smoothing_loss,
    multinomial_nll,
)
from trueprob.metrics.skce import skce

REPO = Path(__file__).resolve().parents[1]
SUBSET = ("cifar10_densenet121_brier", "netcal_lenet-5-cifar-10")
#: the model whose logits illustrate Q2's likelihood identities (in the subset)
Q2_MODEL = "cifar10_densenet121_brier"
N_BINS = 15
CONSISTENCY_RESAMPLES = 500
BOOTSTRAP_REPLICATES = 200
SKCE_BLOCK = 256
LEARNING_RATE = 3e-3
EPOCHS = 100
LN2 = float(np.log(2.0))


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


# ------------------------------------------------------------------------------- data
@dataclass
class Model:
    """One model's held-out rows: ``fit_*`` to fit a recalibration map, ``test_*`` to measure.

    ``logp`` are float64 log-probabilities (log_softmax of the logits, or log of the published
    probabilities); ``human`` the CIFAR-10H vote counts of the test rows (CIFAR-10 only).
    """

    name: str
    source: str
    n_classes: int
    fit_logp: np.ndarray
    fit_labels: np.ndarray
    test_logp: np.ndarray
    test_labels: np.ndarray
    split: str
    human: np.ndarray | None = None


@dataclass
class TopLabelModel:
    name: str
    n_classes: int
    fit: dict[str, np.ndarray]
    test: dict[str, np.ndarray]


def _halves(n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed_of(name)).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def load_models(data: Path, subset: bool) -> tuple[list[Model], list[TopLabelModel]]:
    human = np.load(data / "cifar10h" / "cifar10h.npz")["counts"]
    full: list[Model] = []
    for f in sorted((data / "mukhoti2020-cifar-logits").glob("*_test.npz")):
        name = f.stem.removesuffix("_test")
        if subset and name not in SUBSET:
            continue
        te, va = np.load(f), np.load(f.with_name(name + "_val.npz"))
        k = te["logits"].shape[1]
        full.append(Model(name, "Mukhoti et al. 2020", k,
                          log_softmax(va["logits"].astype(np.float64), axis=1), va["labels"],
                          log_softmax(te["logits"].astype(np.float64), axis=1), te["labels"],
                          "val 5000 / test 10000",
                          human if name.startswith("cifar10_") else None))
    probs_files = [("netcal_" + f.stem.removesuffix("_test"), f, "netcal")
                   for f in sorted((data / "netcal-cifar-probs").glob("*_test.npz"))]
    probs_files.append(("kumar2019_vgg16", data / "kumar2019-cifar10-vgg16" /
                        "cifar10_vgg16_test.npz", "Kumar et al. 2019"))
    for name, f, source in probs_files:
        if subset and name not in SUBSET:
            continue
        d = np.load(f)
        q, y = d["probs"].astype(np.float64), d["labels"]
        logp = np.log(q / q.sum(axis=1, keepdims=True))
        a, b = _halves(len(y), name)
        cifar10 = q.shape[1] == 10
        full.append(Model(name, source, q.shape[1], logp[a], y[a], logp[b], y[b],
                          "test halves 5000 / 5000 (seeded)",
                          human[b] if cifar10 else None))
    top: list[TopLabelModel] = []
    if not subset:
        for f in sorted((data / "hollance-confidences").glob("*.npz")):
            d = np.load(f)
            y, pred, conf = d["labels"], d["preds"], d["confidence"]
            k = {"c10": 10, "c100": 100, "birds": 200}.get(f.stem.split("_")[-2], 0)
            k = k or (1000 if f.stem.startswith("ImageNet") else 20)
            a, b = _halves(len(y), f.stem)
            cols = {"labels": y, "preds": pred, "conf": conf}
            top.append(TopLabelModel(f.stem, k, {c: v[a] for c, v in cols.items()},
                                     {c: v[b] for c, v in cols.items()}))
    return full, top


# --------------------------------------------------------------------------- helpers
def bin_index(p: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """SPEC.md's right-closed equal-width bins: clip(ceil(B p) - 1, 0, B - 1)."""
    return np.clip(np.ceil(n_bins * p) - 1, 0, n_bins - 1).astype(np.int64)


def binned_reliability(p: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS
                       ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """ECE = sum_b (n_b/n) |mean outcome_b - mean p_b|, and per-bin counts / means."""
    idx = bin_index(p, n_bins)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sp = np.bincount(idx, weights=p, minlength=n_bins)
    so = np.bincount(idx, weights=outcome.astype(np.float64), minlength=n_bins)
    ece = float(np.abs(so - sp).sum() / max(p.size, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return ece, count, sp / count, so / count


def ranked_entries(logp: np.ndarray, labels: np.ndarray, rank: int | str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The k-th largest probability of every row and whether the label is that class
    (``rank="rest"``: every entry ranked 4th or lower, pooled)."""
    order = np.argsort(-logp, axis=1, kind="stable")
    rows = np.arange(labels.size)[:, None]
    cols = order[:, 3:] if rank == "rest" else order[:, [int(rank) - 1]]
    q = np.exp(logp[rows, cols])
    hit = cols == labels[:, None]
    return q.ravel(), hit.ravel()


def bits(x: float) -> str:
    return f"{x:.4f}"


def pval(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def table(name: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
          per_model: bool = True) -> str:
    """A markdown table; per-model tables are marked so the test can compare their rows."""
    kind = "per-model" if per_model else "pooled"
    lines = [f"<!-- table: {name} ({kind}) -->", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------- analysis
@dataclass
class Analysis:
    """Everything measured on one full-vector model (before / after temperature scaling)."""

    model: Model
    temperature: float = 0.0
    after_logp: np.ndarray = field(default_factory=lambda: np.empty(0))
    q1: dict[str, Any] = field(default_factory=dict)
    q3: dict[str, Any] = field(default_factory=dict)
    q4: dict[str, Any] = field(default_factory=dict)


def analyse(m: Model) -> Analysis:
    seed = seed_of(m.name)
    out = Analysis(m)
    ts = TemperatureScaling().fit(m.fit_labels, logits=m.fit_logp)
    out.temperature = float(ts.temperature_)
    after = np.asarray(ts.predict_logproba(logits=m.test_logp), dtype=np.float64)
    out.after_logp = after
    y, before = m.test_labels, m.test_logp

    # Q1: every ranked entry, every class, the whole vector
    rep = trueprob.evaluate(y, logits=before, unit="bits")
    rep_after = trueprob.evaluate(y, logits=after, unit="bits")
    ranked = {}
    for rank in (1, 2, 3, "rest"):
        if (rank != "rest" and int(rank) > m.n_classes) or (rank == "rest" and m.n_classes < 4):
            continue
        q, hit = ranked_entries(before, y, rank)
        ranked[rank] = binned_reliability(q, hit)
    out.q1 = {
        "accuracy": rep.accuracy, "ranked": ranked,
        "classwise": rep.classwise_ece, "classwise_after": rep_after.classwise_ece,
        "skce": skce(y, logits=before, estimator="block", block_size=SKCE_BLOCK),
        "skce_after": skce(y, logits=after, estimator="block", block_size=SKCE_BLOCK),
        "classwise_test": trueprob.consistency_test(
            y, logits=before, statistic="classwise_ece", n_resamples=CONSISTENCY_RESAMPLES,
            random_state=seed, quiet=True),
    }
    if m.human is not None:
        order = np.argsort(-before, axis=1, kind="stable")
        second = order[:, 1]
        rows = np.arange(y.size)
        q2 = np.exp(before[rows, second])
        share = m.human[rows, second] / m.human.sum(axis=1)
        out.q1["human"] = {
            "q2": float(q2.mean()), "human": float(share.mean()),
            "hard": float((y == second).mean()),
            "ece_human": binned_reliability(q2, share)[0],
            "ece_hard": binned_reliability(q2, (y == second).astype(float))[0],
            "reliability": binned_reliability(q2, share),
        }

    # Q3: the top-label confidence, with intervals and the consistency test
    boots = [trueprob.bootstrap(y, logits=lp, n_replicates=BOOTSTRAP_REPLICATES,
                                random_state=seed, quiet=True) for lp in (before, after)]
    tests = [trueprob.consistency_test(y, logits=lp, n_resamples=CONSISTENCY_RESAMPLES,
                                       random_state=seed, quiet=True) for lp in (before, after)]
    out.q3 = {"reports": (rep, rep_after), "boots": boots, "tests": tests,
              "conf": [np.exp(lp.max(axis=1)) for lp in (before, after)],
              "correct": [(lp.argmax(axis=1) == y).astype(float) for lp in (before, after)]}

    # Q4: the labels as a code
    q4: dict[str, Any] = {"n": y.size}
    for tag, lp in (("before", before), ("after", after)):
        data = coding.encode(y, logits=lp)
        ideal = float(-lp[np.arange(y.size), y].sum() / LN2)
        q4[tag] = {"bytes": len(data), "ideal": ideal,
                   "exact": bool(np.array_equal(coding.decode(data, logits=lp), y))}
    prior = np.bincount(y, minlength=m.n_classes) / y.size
    prior_code = coding.encode(y, probs=np.broadcast_to(prior, (y.size, m.n_classes)))
    q4["prior_bytes"] = len(prior_code)
    dec = trueprob.decompose(y, logits=before, estimator="temperature", unit="bits",
                             random_state=seed)
    q4["unc"], q4["dsc"], q4["mcb"] = dec.unc, dec.dsc, dec.mcb
    out.q4 = q4
    return out


def analyse_top_label(m: TopLabelModel) -> dict[str, Any]:
    """Top-label models (confidence and prediction only): isotonic recalibration of the
    confidence against correctness, fitted on one half, measured on the other."""
    seed = seed_of(m.name)
    fit_correct = (m.fit["preds"] == m.fit["labels"]).astype(np.int64)
    iso = IsotonicCalibration().fit(fit_correct, probs=m.fit["conf"])
    after_conf = np.asarray(iso.predict_proba(probs=m.test["conf"]))[:, 1]
    out = {}
    for tag, conf in (("before", m.test["conf"]), ("after", after_conf)):
        b = trueprob.bootstrap(m.test["labels"], confidences=conf, predictions=m.test["preds"],
                               n_classes=m.n_classes, n_replicates=BOOTSTRAP_REPLICATES,
                               random_state=seed, quiet=True)
        out[tag] = b
    return out


# ---------------------------------------------------------------------------- Q2
def q2_identities(a: Analysis) -> dict[str, float]:
    """Each likelihood reading of a training loss, one computed number each."""
    m = a.model
    assert m.human is not None
    z, n = m.test_logp, m.human.astype(np.float64)
    res: dict[str, float] = {}
    # counts: the multinomial likelihood = sum_k n_ik CE-terms - log multinomial coefficient
    res["T_ce_weighted"] = float(TemperatureScaling().fit(
        counts=m.human, logits=z, sample_weight=n.sum(axis=1)).temperature_)
    res["T_ce_rows"] = float(TemperatureScaling().fit(counts=m.human, logits=z).temperature_)

    def multinomial(log_t: float) -> float:
        return float(multinomial_nll(m.human, logits=z / np.exp(log_t)).sum())

    opt = minimize_scalar(multinomial, bounds=(-3.0, 3.0), method="bounded",
                          options={"xatol": 1e-10})
    res["T_multinomial"] = float(np.exp(opt.x))
    ce_sum = float((n * -log_softmax(z, axis=1)).sum())
    res["log_coef"] = ce_sum - multinomial(0.0)
    from scipy.special import gammaln

    res["log_coef_direct"] = float((gammaln(n.sum(axis=1) + 1) - gammaln(n + 1).sum(1)).sum())
    # multi-label: BCE with logits is the Bernoulli likelihood. Labels: "some annotator chose
    # class k"; logits: the model's per-class logit read one-vs-rest.
    import torch
    from scipy.stats import bernoulli

    multi = (n > 0).astype(np.float64)
    bce = float(torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(z), torch.from_numpy(multi)))  # the training loss, mean over entries
    q = 1.0 / (1.0 + np.exp(-z))
    bern = float(np.mean(-bernoulli.logpmf(multi, q)))  # -log Bernoulli pmf
    res["bce_minus_bernoulli"] = bce - bern
    res["bernoulli_nll_minus_pmf"] = float(np.mean(bernoulli_nll(multi, logits=z))) - bern
    # squared error = Gaussian likelihood with fixed variance: same argmin over temperature
    p = n / n.sum(axis=1, keepdims=True)

    def sq(log_t: float) -> float:
        return float(((np.exp(log_softmax(z / np.exp(log_t), axis=1)) - p) ** 2).sum())

    def gauss(log_t: float) -> float:
        mean = np.exp(log_softmax(z / np.exp(log_t), axis=1))
        return float(np.sum(gaussian_nll(p, mean=mean, std=np.full_like(p, 0.3))))

    res["T_squared"] = float(np.exp(minimize_scalar(
        sq, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-10}).x))
    res["T_gaussian"] = float(np.exp(minimize_scalar(
        gauss, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-10}).x))
    # label smoothing: exp(-loss) summed over the K possible labels is not 1
    k = z.shape[1]
    for tag, loss in (("ls", lambda yy: label_smoothing_loss(yy, logits=z, smoothing=0.1)),
                      ("ce", lambda yy: categorical_nll(yy, logits=z))):
        total = sum(np.exp(-np.asarray(loss(np.full(z.shape[0], c)))) for c in range(k))
        res[f"{tag}_norm_mean"] = float(np.mean(total))
        res[f"{tag}_norm_min"] = float(np.min(total))
        res[f"{tag}_norm_max"] = float(np.max(total))
    return res


# ----------------------------------------------------------------------- training
def train_digits(epochs: int, seed: int = 0) -> list[dict[str, float]]:
    """A 64-256-256-10 ReLU MLP on sklearn's digits, cross-entropy, Adam, seeded, CPU, one
    thread; CalibrationAccumulator on the train and held-out test rows after every epoch."""
    import torch
    from sklearn.datasets import load_digits

    from trueprob.torch import CalibrationAccumulator

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    x_all, y_all = load_digits(return_X_y=True)
    x_all = (x_all / 16.0).astype(np.float32)
    perm = np.random.default_rng(seed).permutation(len(y_all))
    parts = {"train": perm[:1000], "cal": perm[1000:1400], "test": perm[1400:]}
    x = {k: torch.from_numpy(x_all[v]) for k, v in parts.items()}
    y = {k: torch.from_numpy(y_all[v].astype(np.int64)) for k, v in parts.items()}
    net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(1, epochs + 1):
        net.train()
        for batch in torch.randperm(1000, generator=gen).split(50):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x["train"][batch]), y["train"][batch]).backward()
            opt.step()
        net.eval()
        reports = {}
        logits = {}
        with torch.no_grad():
            for part in ("train", "test", "cal"):
                zb = net(x[part])
                logits[part] = zb.double().numpy()
                if part != "cal":
                    # one update per split: each update costs O(the accumulator's fixed-size
                    # state) on top of O(rows), so per-batch updates of 100 rows are slower
                    acc = CalibrationAccumulator(10)
                    reports[part] = acc.update(zb, y[part]).compute(unit="bits")
        z_te, y_te = logits["test"], y["test"].numpy()
        ts = TemperatureScaling().fit(y["cal"].numpy(), logits=logits["cal"])
        rep_t = trueprob.evaluate(y_te, logits=ts.predict_logproba(logits=z_te), unit="bits")
        dec = trueprob.decompose(y_te, logits=z_te, estimator="temperature", unit="bits",
                                 random_state=seed)
        conf = np.exp(log_softmax(z_te, axis=1).max(axis=1)).mean()
        te = reports["test"]
        rows.append({"epoch": epoch, "train_nll": reports["train"].nll or 0.0,
                     "test_nll": te.nll or 0.0, "accuracy": te.accuracy, "ece": te.ece,
                     "overconfidence": float(conf - te.accuracy), "mcb": dec.mcb,
                     "temperature": float(ts.temperature_), "nll_after": rep_t.nll or 0.0,
                     "ece_after": rep_t.ece})
    return rows


# ------------------------------------------------------------------------- figures
def figures(out: Path, analyses: list[Analysis], training: list[dict[str, float]]) -> None:
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    with rc_context({"font.size": 9}):
        # Q1: reliability of the 1st, 2nd, 3rd ranked entries, one panel per model shown
        shown = []
        for prefix in ("cifar10_", "cifar100_", "netcal_", "kumar"):
            shown += [a for a in analyses if a.model.name.startswith(prefix)][:1]
        fig = Figure(figsize=(3.2 * len(shown), 3.2))
        for i, a in enumerate(shown):
            ax = fig.add_subplot(1, len(shown), i + 1)
            ax.plot([0, 1], [0, 1], color="0.7", lw=1)
            for rank, r in a.q1["ranked"].items():
                _, count, conf, freq = r
                ok = count >= 30  # bins with fewer rows are mostly noise
                ax.plot(conf[ok], freq[ok], marker="o", ms=3, label=f"rank {rank}")
            ax.set(title=a.model.name, xlabel="predicted probability of the entry\n"
                   "(bins with >= 30 entries)",
                   ylabel="how often the label is that class" if i == 0 else None,
                   xlim=(0, 1), ylim=(0, 1))
            if i == 0:
                ax.legend(loc="upper left")
        fig.tight_layout()
        _save(fig, out / "q1_ranked_reliability.png")
        # Q3: gap (confidence - accuracy) per confidence bin, before and after
        fig = Figure(figsize=(9, 3.4))
        for j, tag in enumerate(("before", "after temperature scaling")):
            ax = fig.add_subplot(1, 2, j + 1)
            ax.axhline(0, color="0.7", lw=1)
            for a in analyses:
                _, count, conf, acc = binned_reliability(a.q3["conf"][j], a.q3["correct"][j])
                ok = count >= 30
                ax.plot(conf[ok], conf[ok] - acc[ok], marker=".", lw=0.8, alpha=0.8)
            ax.set(title=tag, xlabel="confidence (bin mean)",
                   ylabel="confidence - accuracy" if j == 0 else None, ylim=(-0.3, 0.35))
        fig.tight_layout()
        _save(fig, out / "q3_gap_vs_confidence.png")
        # Training curves
        ep = [r["epoch"] for r in training]
        fig = Figure(figsize=(9, 3.4))
        ax = fig.add_subplot(1, 2, 1)
        for key, label in (("train_nll", "train NLL"), ("test_nll", "held-out NLL"),
                           ("nll_after", "held-out NLL after T")):
            ax.plot(ep, [r[key] for r in training], label=label)
        ax.set(xlabel="epoch", ylabel="bits per example", yscale="log")
        ax.legend()
        ax = fig.add_subplot(1, 2, 2)
        for key, label in (("ece", "held-out ECE"), ("overconfidence", "confidence - accuracy"),
                           ("mcb", "MCB (bits)")):
            ax.plot(ep, [r[key] for r in training], label=label)
        ax.axhline(0, color="0.7", lw=1)
        ax.set(xlabel="epoch")
        ax.legend()
        fig.tight_layout()
        _save(fig, out / "training.png")


def _save(fig: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, metadata={"Software": None})
    os.replace(tmp, path)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------ document
def document(analyses: list[Analysis], top: dict[str, dict[str, Any]],
             q2: dict[str, float] | None, q2_soft: list[list[Any]],
             training: list[dict[str, float]], seconds: float, subset: bool) -> str:
    n_models = len(analyses) + len(top)
    lines: list[str] = []
    say = lines.append
    say("# The four questions, answered on real models\n")
    say("*Generated by `python examples/answers.py` from the model outputs in `../shared/data` "
        f"(every number below; regeneration took {seconds:.0f} s). Do not edit by hand.*"
        + (" **Subset run (two models, few epochs).**" if subset else "") + "\n")
    say("A network trained with cross-entropy minimises the negative log-likelihood of a "
        "categorical distribution whose parameters are its softmax outputs q. Four questions "
        "follow, each answered below with the argument, the measurement on "
        f"{len(analyses)} models with full probability vectors (12 Mukhoti et al. 2020 CIFAR "
        "nets with separate validation and test logits, 5 netcal nets, Kumar et al.'s VGG-16) "
        f"and {len(top)} models that publish only their top-1 confidence, and what to do. "
        "Recalibration is temperature scaling fitted by maximum likelihood on held-out rows "
        "(Mukhoti: the validation split; probability-only sources: one seeded half of the test "
        "set, measured on the other half). Bins: 15 equal-width, right-closed (SPEC.md). "
        "Logs in bits.\n")

    # ---------------- headline numbers
    rej = lambda ps: sum(p < 0.05 for p in ps)  # noqa: E731
    skce_before = [a.q1["skce"].p_value for a in analyses]
    skce_after = [a.q1["skce_after"].p_value for a in analyses]
    ece_before = [a.q3["tests"][0].p_value for a in analyses]
    ece_after = [a.q3["tests"][1].p_value for a in analyses]
    muk = [a for a in analyses if a.model.source.startswith("Mukhoti")]
    overheads = [8 * a.q4["before"]["bytes"] - a.q4["before"]["ideal"] for a in muk]
    heads = {
        "q1": f"whole-vector calibration (SKCE test, 5 %) rejected for {rej(skce_before)} of "
              f"{len(analyses)} models as trained and {rej(skce_after)} after temperature "
              f"scaling",
        "q2": (f"temperature fitted by CE on annotator counts T = {q2['T_ce_weighted']:.6f} "
               f"vs by the multinomial likelihood T = {q2['T_multinomial']:.6f}") if q2 else
              "(needs a CIFAR-10 model)",
        "q3": f"top-label calibration (consistency test, 5 %) rejected for {rej(ece_before)} "
              f"of {len(analyses)} models as trained and {rej(ece_after)} after temperature "
              f"scaling",
        "q4": (f"arithmetic-coded test labels are {min(overheads):+.2f} to "
               f"{max(overheads):+.2f} bits longer than sum -log2 q_y on the "
               f"{len(muk)} Mukhoti test sets (bound: 8 bits + N eps_K), and decode exactly")
              if muk else "(no Mukhoti model in this run)",
    }
    say("## Headline numbers\n")
    for key in ("q1", "q2", "q3", "q4"):
        say(f"- **{key.upper()}**: {heads[key]}.")
    say("")

    # ---------------- Q1
    say("## Q1. All entries, or only the label's entry?\n")
    say("**Argument.** The log score S(q, y) = -log q_y is strictly proper on the whole simplex: "
        "E_{y~p}[-log q_y] = H(p) + KL(p ‖ q) is minimised only at q = p. Softmax ties the "
        "entries together (they share the normaliser), so the entry of the label cannot be "
        "pushed up without pushing every other entry down: at the population optimum *every* "
        "entry equals P(Y = k | x), not only the one of the observed label. Finite data, "
        "over-parameterisation (the training loss can reach 0 by growing the logits) and "
        "the shift from training to test data break the optimum, and nothing in the argument "
        "says which entries break first. So we measure each rank separately: for the k-th "
        "largest entry q_(k), bin it and compare with how often the label is that class; "
        "classwise ECE (each class's column against its indicator); and the squared kernel "
        "calibration error SKCE (Widmann et al. 2019) that tests the whole vector at once "
        f"(block estimator, blocks of {SKCE_BLOCK}, normal test).\n")
    rows = []
    for a in analyses:
        ece = [bits(a.q1["ranked"][k][0]) if k in a.q1["ranked"] else "—"
               for k in (1, 2, 3, "rest")]
        rows.append([a.model.name, a.model.n_classes, f"{a.q1['accuracy']:.4f}", *ece,
                     bits(a.q1["classwise"]),
                     pval(a.q1["classwise_test"].p_value), pval(a.q1["skce"].p_value),
                     pval(a.q1["skce_after"].p_value)])
    say(table("q1", ["model", "K", "accuracy", "ECE rank 1", "ECE rank 2", "ECE rank 3",
                     "ECE rank ≥4 (pooled)", "classwise ECE", "classwise p",
                     "SKCE p", "SKCE p after T"], rows))
    say("\n![reliability of the ranked entries](answers/q1_ranked_reliability.png)\n")
    say("**Against humans (CIFAR-10H, ~51 annotators per test image).** If the second entry "
        "is a probability, it should match how often people name that class. Mean q_(2), the "
        "mean share of annotators choosing the model's second class, how often the single "
        "hard label is that class, and the binned gap of q_(2) against each:\n")
    rows = []
    for a in analyses:
        h = a.q1.get("human")
        if h:
            rows.append([a.model.name, bits(h["q2"]), bits(h["human"]), bits(h["hard"]),
                         bits(h["ece_human"]), bits(h["ece_hard"])])
    say(table("q1_humans", ["model", "mean q_(2)", "human share of that class",
                            "hard-label share", "ECE vs humans", "ECE vs hard label"], rows))
    cls_p = [a.q1["classwise_test"].p_value for a in analyses]
    ratios = []
    for a in analyses:
        _, count, conf, _ = a.q1["ranked"][2]
        ratios.append(a.q1["ranked"][2][0] / (np.nansum(conf * count) / count.sum()))
    humans = [a.q1["human"] for a in analyses if "human" in a.q1]
    below = sum(h["q2"] < h["human"] for h in humans)
    say(f"\n**What it shows.** Classwise calibration is rejected (consistency test, 5 %) for "
        f"{rej(cls_p)} of {len(analyses)} models and the whole vector (SKCE) for "
        f"{rej(skce_before)}; after temperature scaling SKCE still rejects "
        f"{rej(skce_after)}. The second-ranked entry is small but its calibration error is "
        f"not: the median over models of ECE(rank 2) / mean q_(2) is {np.median(ratios):.2f}. "
        + (f"For {below} of {len(humans)} CIFAR-10 models the mean second-choice probability "
           "is below the share of annotators who chose that class: the models put less mass "
           "on the plausible alternative than people do. " if humans else "")
        + "**What to do.** Treat the full vector as a probability only where it "
        "has been tested as one (classwise ECE and SKCE with their tests, "
        "`trueprob.evaluate` + `trueprob.consistency_test(statistic='classwise_ece')` + "
        "`trueprob.metrics.skce.skce`); if a decision uses the 2nd or 3rd entry (top-k, "
        "abstention, expected cost), check those ranks explicitly, and compare with human "
        "label distributions where they exist.\n")

    # ---------------- Q2
    say("## Q2. Is CE = MLE limited to one-hot labels?\n")
    say("**Argument.** No. Cross-entropy against any target p is CE(p, q) = -Σ_k p_k log q_k "
        "= H(p) + KL(p ‖ q): the expected negative log-likelihood of labels drawn from p. "
        "With annotator counts n_i the multinomial log-likelihood is "
        "Σ_k n_ik log q_ik + log(n_i.! / Π_k n_ik!): the count-weighted CE plus a constant, so "
        "the two have the same argmin. Multi-label binary cross-entropy is the Bernoulli "
        "likelihood of each label; squared error is the Gaussian likelihood with a fixed "
        "variance. Label smoothing is not a likelihood of the observed label: exp(-loss) "
        "does not sum to 1 over the possible labels.\n")
    if q2_soft:
        say("CIFAR-10H: cross-entropy against the human vote distribution, split into the "
            "humans' own entropy (what no model can remove) and the KL the model costs (bits "
            "per image):\n")
        say(table("q2_soft", ["model", "CE(p, q)", "= H(p)", "+ KL(p ‖ q)",
                              "hard-label NLL"], q2_soft))
    if q2:
        say(f"\nOne number each, on `{Q2_MODEL}`'s test logits and the CIFAR-10H counts:\n")
        rows = [
            ["annotator counts: T by CE, rows weighted by annotations (trueprob "
             "TemperatureScaling, counts=, sample_weight=n_i.)", f"{q2['T_ce_weighted']:.6f}"],
            ["annotator counts: T by the multinomial likelihood (scipy minimize_scalar on "
             "trueprob.likelihoods.multinomial_nll)", f"{q2['T_multinomial']:.6f}"],
            ["(T by CE with every image weighted equally — a different weighting)",
             f"{q2['T_ce_rows']:.6f}"],
            ["Σ counts × CE − multinomial NLL (nats) = Σ log multinomial coefficient",
             f"{q2['log_coef']:.4f} = {q2['log_coef_direct']:.4f}"],
            ["multi-label (\"some annotator chose class k\", per-class logits): torch "
             "binary_cross_entropy_with_logits − mean −log Bernoulli pmf (scipy), nats",
             f"{q2['bce_minus_bernoulli']:.1e}"],
            ["the same with trueprob.likelihoods.bernoulli_nll",
             f"{q2['bernoulli_nll_minus_pmf']:.1e}"],
            ["squared error: T minimising Σ (q − p)²", f"{q2['T_squared']:.6f}"],
            ["Gaussian likelihood, σ = 0.3 fixed: T maximising it", f"{q2['T_gaussian']:.6f}"],
            ["label smoothing ε = 0.1: Σ_y exp(−loss(y)) per image, mean [min, max]",
             f"{q2['ls_norm_mean']:.4f} [{q2['ls_norm_min']:.4f}, {q2['ls_norm_max']:.4f}]"],
            ["cross-entropy: Σ_y exp(−loss(y)) per image, mean [min, max]",
             f"{q2['ce_norm_mean']:.4f} [{q2['ce_norm_min']:.4f}, {q2['ce_norm_max']:.4f}]"],
        ]
        say(table("q2_identities", ["reading", "value"], rows, per_model=False))
    say("\n**What to do.** Train on soft labels or annotator counts with the same "
        "cross-entropy (weight rows by their number of annotations if you want the "
        "multinomial likelihood exactly); report CE against soft labels as H(p) + KL so the "
        "irreducible part is visible (`trueprob.evaluate(counts=...)`: `entropy`, `kl`). "
        "Treat label-smoothed outputs as a different estimator, not as maximum-likelihood "
        "probabilities, and recalibrate them before reading them as probabilities.\n")

    # ---------------- Q3
    def ece_cell(ece: float, iv: Any) -> str:
        """The plug-in ECE, then the estimate its interval is about and the interval."""
        return f"{ece:.4f} ({iv.estimate:.4f} [{iv.low:.4f}, {iv.high:.4f}])"

    say("## Q3. Is the confidence the probability that the prediction is right?\n")
    say("**Argument.** Top-label calibration is P(Y = ŷ | c) = c with c = max_k q_k. It "
        "follows from calibration of the whole vector, but it is a weaker, separately "
        "testable property. We measure ECE = Σ_b (W_b/W) |acc_b − conf_b| with a bootstrap "
        f"95 % interval ({BOOTSTRAP_REPLICATES} replicates) and test H0 \"calibrated\" by "
        f"consistency resampling (Bröcker & Smith 2007, {CONSISTENCY_RESAMPLES} draws "
        "y* ~ Cat(q)), before and after temperature scaling. Top-label-only models are "
        "recalibrated by isotonic regression of correctness on confidence (fitted on one "
        "seeded half, measured on the other; no consistency test without the full vector).\n")
    rows = []
    for a in analyses:
        (r0, r1), (b0, b1), (t0, t1) = a.q3["reports"], a.q3["boots"], a.q3["tests"]
        i0, i1 = b0.intervals["ece"], b1.intervals["ece"]
        rows.append([a.model.name, f"{r0.accuracy:.4f}", f"{a.temperature:.4f}",
                     ece_cell(r0.ece, i0), pval(t0.p_value),
                     ece_cell(r1.ece, i1), pval(t1.p_value)])
    say(table("q3", ["model", "accuracy", "T", "ECE before (bias-corrected [95 %])",
                     "p before", "ECE after T (bias-corrected [95 %])", "p after"], rows))
    if top:
        rows = []
        for name, res in top.items():
            b0, b1 = res["before"], res["after"]
            i0, i1 = b0.intervals["ece"], b1.intervals["ece"]
            rows.append([name, f"{b0.report.accuracy:.4f}", ece_cell(b0.report.ece, i0),
                         ece_cell(b1.report.ece, i1)])
        say("\nTop-label-only models (hollance/reliability-diagrams files: Kängsepp's Guo et al. "
            "2017 models, ImageNet models from torchvision and timm):\n")
        say(table("q3_top_label", ["model", "accuracy", "ECE before (bias-corrected [95 %])",
                                   "ECE after isotonic (bias-corrected [95 %])"], rows))
    # pooled confidence bands over the Mukhoti models
    if muk:
        say("\nWhere it is approximately true: the Mukhoti models' test rows pooled by "
            "confidence band (share of rows, mean confidence, accuracy, gap):\n")
        bands = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0]
        rows = []
        for j, tag in enumerate(("before", "after T")):
            conf = np.concatenate([a.q3["conf"][j] for a in muk])
            corr = np.concatenate([a.q3["correct"][j] for a in muk])
            idx = np.clip(np.searchsorted(bands, conf, side="left") - 1, 0, len(bands) - 2)
            for b in range(len(bands) - 1):
                sel = idx == b
                if sel.any():
                    rows.append([tag, f"({bands[b]:.2f}, {bands[b + 1]:.2f}]",
                                 f"{sel.mean():.4f}", f"{conf[sel].mean():.4f}",
                                 f"{corr[sel].mean():.4f}",
                                 f"{conf[sel].mean() - corr[sel].mean():+.4f}"])
        say(table("q3_bands", ["calibration", "confidence band", "share of rows",
                               "mean confidence", "accuracy", "gap"], rows, per_model=False))
    say("\n![gap against confidence](answers/q3_gap_vs_confidence.png)\n")
    band_txt = ""
    if muk:
        after_rows = [r for r in rows if r[0] == "after T"]
        close = [r for r in after_rows if abs(float(r[5])) <= 0.01]
        worst = max(after_rows, key=lambda r: abs(float(r[5])))
        band_txt = (
            f" Pooled over the Mukhoti models after T, the gap is within ±0.01 in the bands "
            f"{', '.join(r[1] for r in close)} ({sum(float(r[2]) for r in close):.0%} of the "
            f"rows) and largest in {worst[1]} ({worst[5]}: "
            f"{'over' if float(worst[5]) > 0 else 'under'}-confident there, on "
            f"{float(worst[2]):.0%} of the rows): the confidence is approximately the "
            "probability of being right where most predictions are, and not where the model "
            "hesitates.")
    say(f"**What it shows.** As trained, top-label calibration is rejected for "
        f"{rej(ece_before)} of {len(analyses)} models; after one temperature fitted on held-out "
        f"data, for {rej(ece_after)}.{band_txt} (The plug-in ECE, the number published "
        "tables print, is biased upward; the bracket gives the bias-corrected estimate and "
        "the interval that is about it.) "
        "**What to do.** Never assume it: measure ECE with an interval and test it on held-out "
        "data from the deployment distribution; fit a temperature on a validation split "
        "(`TemperatureScaling().fit(labels, logits=...)`) and re-test; where the test still "
        "rejects, use a richer map (Dirichlet, isotonic) or report the confidence as a score.\n")

    # ---------------- Q4
    say("## Q4. What do entropy and information theory add?\n")
    say("**Argument.** The objection is that Shannon's entropy is about a particular code, "
        "not the one used in training. But the log loss *is* a code length: an arithmetic "
        "coder driven by the model's predicted distribution q_i writes label y_i in "
        "−log2 q_{i,y_i} bits (up to a constant for the whole message), so the summed "
        "cross-entropy is the length of the file that lets a receiver who has the model "
        "reconstruct the labels. `trueprob.coding.encode` does exactly this (a 64-bit range "
        "coder; frequencies quantised to 2^32 with every class given at least one count; "
        "proven bound: length < Σ −log2 q_y + N·ε_K + 8 bits, ε_K ≈ (K·2.3e-10 + 6e-8)/ln 2). "
        "The decomposition log loss = MCB − DSC + UNC then reads as code lengths: UNC = H(Y) "
        "is the code with no model (label frequencies only), DSC = I(Y; q) the bits the model "
        "saves, MCB the bits that recalibration would recover.\n")
    rows = []
    for a in analyses:
        q = a.q4
        n = q["n"]
        b, af = q["before"], q["after"]
        rows.append([a.model.name, n, bits(8 * q["prior_bytes"] / n), bits(q["unc"]),
                     bits(q["dsc"]), bits(q["mcb"]), bits(b["ideal"] / n),
                     bits(8 * b["bytes"] / n), f"{8 * b['bytes'] - b['ideal']:+.2f}",
                     bits(8 * af["bytes"] / n), f"{8 * af['bytes'] - af['ideal']:+.2f}",
                     bits((8 * b["bytes"] - 8 * af["bytes"]) / n),
                     "yes" if b["exact"] and af["exact"] else "NO"])
    say(table("q4", ["model", "N", "no-model code", "UNC = H(Y)", "DSC = I(Y;q)", "MCB",
                     "Σ −log2 q_y / N", "code / N", "code − Σ (bits, total)",
                     "code / N after T", "code − Σ after T", "saved by T", "decoded exactly"],
              rows))
    say("\nAll per-label columns in bits per test label; `code` is 8 × the encoded bytes. "
        "MCB and DSC are from `trueprob.decompose(estimator='temperature')` (cross-fitted on "
        "the test rows, so MCB is what a temperature can save there); \"saved by T\" is "
        "what the temperature fitted on the held-out split actually saved.\n")
    say("**What it shows.** The file sizes match the cross-entropy to a few bits per "
        "10,000 labels, and the file decodes to the labels: cross-entropy is the length of "
        "a real, decodable code. Subtracting it from the no-model code length gives the "
        "information the model carries; recalibration shortens the file by about the "
        "miscalibration bits. **What to do.** Read log-loss differences as bits per example "
        "saved or wasted; report MCB/DSC/UNC (`trueprob.decompose`) next to accuracy — MCB is "
        "the part recalibration can fix, DSC the part only a better model can improve.\n")

    # ---------------- Training
    say("## Training: when does over-confidence appear?\n")
    say("**Argument.** Maximum likelihood on the training set keeps lowering the training "
        "NLL by growing the logits once the training labels are fitted; the held-out NLL has "
        "a minimum. The question is when the confidence starts to outrun the accuracy, "
        "relative to that minimum, and what a temperature recovers. A small MLP "
        f"(64-256-256-10, ReLU, Adam with learning rate {LEARNING_RATE:g}, batches of 50, "
        "seed 0, one CPU thread) is trained "
        "with cross-entropy on scikit-learn's digits (1000 train, 400 calibration, 397 test "
        "rows); after every epoch `trueprob.torch.CalibrationAccumulator` measures the train "
        "and test logits (one update per split), `decompose` gives MCB, and a temperature is "
        "fitted on the calibration rows.\n")
    best = min(training, key=lambda r: r["test_nll"])
    # over-confidence for good: the first epoch from which every fitted temperature is > 1
    over = None
    for r in reversed(training):
        if r["temperature"] <= 1.0:
            break
        over = r
    keep = sorted({1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, best["epoch"],
                   training[-1]["epoch"]} | ({over["epoch"]} if over else set()))
    rows = [[r["epoch"], bits(r["train_nll"]), bits(r["test_nll"]), f"{r['accuracy']:.4f}",
             f"{r['ece']:.4f}", f"{r['overconfidence']:+.4f}", bits(r["mcb"]),
             f"{r['temperature']:.3f}", bits(r["nll_after"]), f"{r['ece_after']:.4f}"]
            for r in training if r["epoch"] in keep]
    say(table("training", ["epoch", "train NLL", "held-out NLL", "accuracy", "ECE",
                           "confidence − accuracy", "MCB", "T fitted", "NLL after T",
                           "ECE after T"], rows))
    say("\n![training curves](answers/training.png)\n")
    if over is None:
        over_txt = "the fitted temperature does not stay above 1 (no lasting over-confidence)"
    else:
        when = ("before" if over["epoch"] < best["epoch"] else
                "at" if over["epoch"] == best["epoch"] else "after")
        over_txt = (f"the temperature fitted on the calibration rows exceeds 1 from epoch "
                    f"{over['epoch']} to the end (the model is over-confident from then on), "
                    f"{when} that minimum")
        if training[-1]["temperature"] > over["temperature"] and \
                training[-1]["test_nll"] > best["test_nll"]:
            over_txt += (f"; it grows to {training[-1]['temperature']:.2f} while the held-out "
                         "NLL rises")
    last = training[-1]
    say(f"**What it shows.** The held-out NLL is lowest at epoch {best['epoch']} "
        f"({best['test_nll']:.4f} bits); {over_txt}. By epoch {last['epoch']} the train NLL "
        f"is {last['train_nll']:.4f} bits, the held-out NLL {last['test_nll']:.4f} bits "
        f"with ECE {last['ece']:.4f}, and the temperature fitted then "
        f"(T = {last['temperature']:.2f}) brings the held-out NLL back to "
        f"{last['nll_after']:.4f} bits. **What to do.** Track held-out NLL and ECE every "
        "epoch (a `CalibrationAccumulator` costs one pass over the batches you already "
        "evaluate); stop at the NLL minimum or recalibrate the final model on held-out "
        "data — accuracy alone does not show the over-confidence.\n")

    # ---------------- closing note
    say("## Closing note\n")
    say(f"Four headline numbers: {heads['q1']}; {heads['q2']}; {heads['q3']}; {heads['q4']}.\n")
    if muk:
        say("Coder overhead on the Mukhoti test sets (8 × bytes − Σ −log2 q_y, bits for the "
            "whole test set): " + ", ".join(
                f"{a.model.name} {8 * a.q4['before']['bytes'] - a.q4['before']['ideal']:+.2f}"
                for a in muk) + ".\n")
    say(f"{n_models} models in all; data provenance and licences in ../shared/data/README.md "
        "(CIFAR-10H is CC BY-NC-SA 4.0 and is read there, never copied).")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.environ.get("TRUEPROB_DATA", str(REPO.parent / "shared" / "data"))
    ap.add_argument("--data", default=default, help="the shared data folder")
    ap.add_argument("--out", default=str(REPO / "docs"),
                    help="folder for answers.md and answers/ (default: docs/)")
    ap.add_argument("--subset", action="store_true",
                    help=f"only {', '.join(SUBSET)} and 10 training epochs")
    ap.add_argument("--epochs", type=int, default=None, help=f"training epochs (default {EPOCHS})")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    data = Path(args.data)
    if not (data / "mukhoti2020-cifar-logits").is_dir():
        raise SystemExit(f"--data: {data} has no mukhoti2020-cifar-logits folder")
    full, top_models = load_models(data, args.subset)
    analyses = []
    for m in full:
        t = time.perf_counter()
        analyses.append(analyse(m))
        print(f"{m.name}: {time.perf_counter() - t:.1f} s", flush=True)
    top = {m.name: analyse_top_label(m) for m in top_models}
    ref = next((a for a in analyses if a.model.name == Q2_MODEL), None)
    q2 = q2_identities(ref) if ref is not None else None
    q2_soft = []
    for a in analyses:
        if a.model.human is not None:
            soft = trueprob.evaluate(counts=a.model.human, logits=a.model.test_logp, unit="bits")
            hard = trueprob.evaluate(a.model.test_labels, logits=a.model.test_logp, unit="bits")
            q2_soft.append([a.model.name, bits(soft.nll or 0.0), bits(soft.entropy or 0.0),
                            bits(soft.kl or 0.0), bits(hard.nll or 0.0)])
    t = time.perf_counter()
    epochs = args.epochs if args.epochs is not None else (10 if args.subset else EPOCHS)
    training = train_digits(epochs)
    print(f"training, {epochs} epochs: {time.perf_counter() - t:.1f} s", flush=True)
    out = Path(args.out)
    figures(out / "answers", analyses, training)
    seconds = time.perf_counter() - start
    text = document(analyses, top, q2, q2_soft, training, seconds, args.subset)
    write_atomic(out / "answers.md", text)
    print(f"wrote {out / 'answers.md'} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

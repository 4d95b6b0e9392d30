"""Labels as users have them (issue 16): ``classes=``, ``pos_label=``, ``ignore_index=`` in the
Python API and ``--classes`` / ``--pos-label`` / ``--ignore-index`` on the command line.

References: scikit-learn's documented behaviour (``log_loss(..., labels=)`` takes the columns
in the order of ``labels``; ``brier_score_loss(..., pos_label=)``), and for ``ignore_index`` the
same numbers computed on the rows kept, as torchmetrics documents it ("specifies a target
value that is ignored and does not contribute to the metric calculation").
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import trueprob
from trueprob import metrics
from trueprob.cli import main


@pytest.fixture
def animals(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = ["cat", "dog", "eel"]
    q = rng.dirichlet(np.ones(3), size=50)
    y = np.array(classes)[rng.integers(0, 3, 50)]
    return y, q, classes


def test_classes_map_names_to_columns_as_sklearn_does(animals) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y, q, classes = animals
    expected = sklearn_metrics.log_loss(y, q, labels=classes)
    assert trueprob.evaluate(y, probs=q, classes=classes).nll == pytest.approx(expected,
                                                                               rel=1e-12)
    assert metrics.log_loss(list(y), probs=q, classes=classes) == pytest.approx(expected,
                                                                                rel=1e-12)
    # the order of classes is the column order: reversing both leaves the loss unchanged
    assert metrics.log_loss(y, probs=q[:, ::-1], classes=classes[::-1]) == \
        pytest.approx(expected, rel=1e-12)
    index = np.array([classes.index(v) for v in y])
    assert metrics.top_label_ece(y, probs=q, classes=classes) == \
        metrics.top_label_ece(index, probs=q)
    assert metrics.classwise_ece(y, probs=q, classes=classes) == \
        metrics.classwise_ece(index, probs=q)


def test_classes_of_integers_and_top_label_predictions() -> None:
    # classes_ of a model trained on labels 3, 7, 9: column k is class classes[k]
    y = np.array([7, 9, 3, 7])
    q = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    r = trueprob.evaluate(y, probs=q, classes=[3, 7, 9])
    assert r.nll == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.6, 0.4])), rel=1e-12)
    assert r.accuracy == 0.75
    top = trueprob.evaluate(y, confidences=q.max(1), predictions=np.array([7, 9, 3, 3]),
                            classes=[3, 7, 9])
    assert top.accuracy == 0.75 and top.n_classes == 3


def test_pos_label_as_sklearn_brier_score_loss(rng: np.random.Generator) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y = np.where(rng.random(40) < 0.4, "spam", "ham")
    p = rng.random(40)
    expected = sklearn_metrics.brier_score_loss(y, p, pos_label="spam")
    assert metrics.binary_brier_score(y, probs=p, pos_label="spam") == \
        pytest.approx(expected, rel=1e-12)
    # the two-column Brier score is twice the binary one (SPEC.md)
    assert trueprob.evaluate(y, probs=p, pos_label="spam").brier == \
        pytest.approx(2 * expected, rel=1e-12)


def test_ignore_index_drops_the_rows(rng: np.random.Generator) -> None:
    z = rng.normal(size=(30, 4))
    y = rng.integers(0, 4, 30)
    padded_y = np.concatenate([y, np.full(5, -100)])
    padded_z = np.concatenate([z, rng.normal(size=(5, 4)) * 50])
    w = rng.random(35)
    kept = trueprob.evaluate(y, logits=z, sample_weight=w[:30])
    got = trueprob.evaluate(padded_y, logits=padded_z, sample_weight=w, ignore_index=-100)
    assert got.n == 30
    for name in ("nll", "brier", "ece", "classwise_ece", "smooth_ece"):
        assert getattr(got, name) == pytest.approx(getattr(kept, name), rel=1e-12), name
    assert metrics.log_loss(padded_y, logits=padded_z, ignore_index=-100) == \
        pytest.approx(metrics.log_loss(y, logits=z), rel=1e-12)
    # random logits carry no information, so the default (temperature) fit would be
    # degenerate: this checks ignore_index with the in-sample isotonic estimator
    d = trueprob.decompose(padded_y, logits=padded_z, ignore_index=-100, estimator="isotonic")
    assert d.score == pytest.approx(
        trueprob.decompose(y, logits=z, estimator="isotonic").score, rel=1e-12)


def test_ignore_index_on_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, -1])
    got = trueprob.evaluate(y, logits=z, ignore_index=-1)
    assert got.nll == pytest.approx(float(np.mean([np.log1p(np.exp(-2)),
                                                   np.log1p(np.exp(-1))])), rel=1e-12)


@pytest.mark.parametrize(("kwargs", "labels", "message"), [
    ({"classes": ["cat", "dog"]}, ["cat", "dog", "cat"],
     r"classes names 2 classes but probs has K=3 columns"),
    ({"classes": ["cat", "dog", "cat"]}, ["cat", "dog", "cat"],
     r"classes must be distinct; got \['cat', 'dog', 'cat'\]"),
    ({"classes": ["cat", "dog", "eel"]}, ["cat", "emu", "cat"],
     r"labels row 1 is 'emu', which is not one of classes=\['cat', 'dog', 'eel'\]"),
    ({}, ["cat", "dog", "cat"],
     r"labels must be integer class indices; got dtype <U3\. For labels that are names"),
    ({"pos_label": "cat"}, ["cat", "dog", "cat"], r"pos_label= is for binary inputs"),
    ({"classes": ["a", "b", "c"], "pos_label": "a"}, ["a", "b", "c"],
     r"pass classes= or pos_label=, not both"),
    ({"ignore_index": "cat"}, ["cat", "cat", "cat"],
     r"every row has labels == ignore_index='cat'"),
])
def test_label_option_errors(kwargs: dict, labels: list, message: str) -> None:
    q = np.full((3, 3), 1 / 3)
    with pytest.raises((ValueError, TypeError), match=message):
        trueprob.evaluate(np.array(labels), probs=q, **kwargs)


def test_pos_label_errors() -> None:
    p = np.array([0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"pos_label= needs binary labels; labels take 3"):
        trueprob.evaluate(np.array(["a", "b", "c"]), probs=p, pos_label="a")
    with pytest.raises(ValueError, match=r"pos_label='Yes' is not among the labels"):
        trueprob.evaluate(np.array(["no", "yes", "no"]), probs=p, pos_label="Yes")
    with pytest.raises(TypeError, match=r"apply to labels"):
        trueprob.evaluate(targets=np.array([[0.5, 0.5]] * 3), probs=p, pos_label=1)


def test_cli_classes_pos_label_ignore_index(tmp_path, rng: np.random.Generator) -> None:
    q = rng.dirichlet(np.ones(3), size=20)
    names = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 20)]
    lines = ["prob_0,prob_1,prob_2,y"] + [f"{a!r},{b!r},{c!r},{n}" for (a, b, c), n in
                                          zip(q.tolist(), names, strict=True)]
    lines.append("0.2,0.3,0.5,skip")
    csv = tmp_path / "animals.csv"
    csv.write_text("\n".join(lines) + "\n")
    run = CliRunner().invoke
    result = run(main, ["evaluate", str(csv), "--labels", "y", "--classes", "cat,dog,eel",
                        "--ignore-index", "skip", "--format", "json", "--unit", "nats"])
    assert result.exit_code == 0, result.stderr
    import json

    out = json.loads(result.stdout)
    index = np.array([["cat", "dog", "eel"].index(v) for v in names])
    assert out["n"] == 20
    assert out["nll"] == pytest.approx(trueprob.evaluate(index, probs=q).nll, rel=1e-12)
    # without --ignore-index the row 'skip' is named
    result = run(main, ["evaluate", str(csv), "--labels", "y", "--classes", "cat,dog,eel"])
    assert result.exit_code == 1
    assert "animals.csv: labels row 20 is 'skip', which is not one of classes" in result.stderr
    # without --classes: the hint
    result = run(main, ["evaluate", str(csv), "--labels", "y"])
    assert result.exit_code == 1 and "pass classes=[...] in column order (CLI: --classes)" \
        in result.stderr
    # binary with --pos-label
    bin_csv = tmp_path / "spam.csv"
    bin_csv.write_text("prob,y\n0.9,spam\n0.2,ham\n0.4,spam\n")
    result = run(main, ["evaluate", str(bin_csv), "--probs", "prob", "--labels", "y",
                        "--pos-label", "spam", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    expected = 2 * np.mean((np.array([0.9, 0.2, 0.4]) - np.array([1, 0, 1])) ** 2)
    assert json.loads(result.stdout)["brier"] == pytest.approx(expected, rel=1e-12)
    # in-memory only: with --stream the options are a usage error
    result = run(main, ["evaluate", str(bin_csv), "--probs", "prob", "--labels", "y",
                        "--pos-label", "spam", "--stream"])
    assert result.exit_code == 2
    assert "--pos-label: for one file read in memory" in result.stderr


def test_cli_bins_1_on_float32_returns(tmp_path) -> None:
    path = tmp_path / "f32.npz"
    np.savez(path, probs=np.array([[0.3, 0.7], [0.6, 0.4]], np.float32), labels=np.array([1, 1]))
    result = CliRunner().invoke(main, ["evaluate", str(path), "--bins", "1", "--format",
                                       "json"])
    assert result.exit_code == 0, result.stderr
    import json

    assert json.loads(result.stdout)["ece"] == pytest.approx(0.15, rel=1e-6)


def test_gaussian_messages_name_mean_and_std() -> None:
    from trueprob.regression import Gaussian, evaluate_regression

    with pytest.raises(ValueError, match=r"^mean must be finite \(no NaN or inf\); row 0 is inf"):
        evaluate_regression(np.array([0.0, 1.0]), Gaussian(mean=np.array([np.inf, 1.0]),
                                                           std=1.0))
    with pytest.raises(ValueError, match=r"^std must be finite .*row 1 is nan"):
        evaluate_regression(np.array([0.0, 1.0]), Gaussian(mean=np.zeros(2),
                                                           std=np.array([1.0, np.nan])))

"""Bad input raises an error naming the argument, the expectation and the first bad row."""

from __future__ import annotations

import numpy as np
import pytest

import trueprob
from trueprob.metrics import log_loss

Z = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
Y = np.array([0, 1, 2, 0])
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.4, 0.4, 0.2]])


def test_nan_logits_names_row():
    z = Z.copy()
    z[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"logits must be finite \(no NaN or inf\); row 2 is"):
        trueprob.evaluate(Y, logits=z)


def test_inf_probs_names_row():
    p = P.copy()
    p[1, 0] = np.inf
    with pytest.raises(ValueError, match=r"probs must be finite .*row 1 is"):
        trueprob.evaluate(Y, probs=p)


def test_rows_not_summing_to_one():
    p = P.copy()
    p[3] = [0.4, 0.4, 0.1]
    with pytest.raises(ValueError, match=r"probs rows must sum to 1 \(tolerance 5\.3e-15 for "
                                         r"float64 with K=3\); row 3 sums to 0\.9"):
        trueprob.evaluate(Y, probs=p)


def test_row_sum_tolerance_comes_from_dtype():
    # off by 1e-6: fine in float32 (tolerance 8*K*eps32 = 2.9e-6), rejected in float64
    p = P.copy()
    p[0] = [0.7 + 1e-6, 0.2, 0.1]
    trueprob.evaluate(Y, probs=p.astype(np.float32))
    with pytest.raises(ValueError, match=r"row 0 sums to 1\.000001"):
        trueprob.evaluate(Y, probs=p)


def test_negative_probability():
    p = P.copy()
    p[1] = [-0.1, 1.0, 0.1]
    with pytest.raises(ValueError, match=r"probs must be in \[0, 1\]; row 1 is \[-0\.1, 1, 0\.1\]"):
        trueprob.evaluate(Y, probs=p)


def test_labels_out_of_range():
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2 \(K=3\); row 3 is 3"):
        trueprob.evaluate(np.array([0, 1, 2, 3]), logits=Z)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2 \(K=3\); row 0 is -1"):
        trueprob.evaluate(np.array([-1, 1, 2, 0]), logits=Z)


def test_labels_not_integer():
    with pytest.raises(ValueError, match=r"labels must be integer class indices; row 1 is 0\.5"):
        trueprob.evaluate(np.array([0.0, 0.5, 2.0, 0.0]), logits=Z)
    with pytest.raises(TypeError, match="labels must be integer class indices; got dtype"):
        trueprob.evaluate(np.array(["a", "b", "c", "d"]), logits=Z)


def test_integral_float_labels_accepted():
    a = trueprob.evaluate(Y.astype(np.float64), logits=Z)
    b = trueprob.evaluate(Y, logits=Z)
    assert a.to_dict() == b.to_dict()


def test_soft_targets_off_simplex():
    t = P.copy()
    t[2] = [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match=r"targets rows must sum to 1 .*row 2 sums to 1\.5"):
        trueprob.evaluate(logits=Z, targets=t)
    t[2] = [1.5, -0.5, 0.0]
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\]; row 2 is"):
        trueprob.evaluate(logits=Z, targets=t)


def test_counts_checks():
    c = np.array([[3, 0, 0], [0, 2, 1], [0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="counts rows must have at least one annotation; row 2"):
        trueprob.evaluate(logits=Z, counts=c)
    with pytest.raises(ValueError, match=r"counts must be >= 0; row 0 is"):
        trueprob.evaluate(logits=Z, counts=np.array([[-1, 2, 0]] * 4))
    with pytest.raises(ValueError, match=r"counts must be whole numbers .* row 0 is"):
        trueprob.evaluate(logits=Z, counts=np.array([[0.5, 2, 0]] * 4))


def test_shape_mismatch():
    with pytest.raises(ValueError, match="labels has 3 rows but logits has 4"):
        trueprob.evaluate(Y[:3], logits=Z)
    with pytest.raises(ValueError, match=r"targets must have shape \(N, 3\); got \(4, 2\)"):
        trueprob.evaluate(logits=Z, targets=P[:, :2])
    with pytest.raises(ValueError, match="sample_weight has 5 rows but logits has 4"):
        trueprob.evaluate(Y, logits=Z, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match=r"logits must be \(N, K\), or \(N,\) for binary; got "
                                         r"shape \(4, 3, 1\)"):
        trueprob.evaluate(Y, logits=Z[:, :, None])


def test_empty_input():
    with pytest.raises(ValueError, match=r"logits is empty \(0 rows\)"):
        trueprob.evaluate(np.zeros(0, dtype=int), logits=np.zeros((0, 3)))


def test_negative_and_zero_weights():
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0; row 2 is -1$"):
        trueprob.evaluate(Y, logits=Z, sample_weight=np.array([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="sample_weight sums to 0"):
        trueprob.evaluate(Y, logits=Z, sample_weight=np.zeros(4))
    with pytest.raises(ValueError, match=r"sample_weight must be finite .* row 1 is nan"):
        trueprob.evaluate(Y, logits=Z, sample_weight=np.array([1.0, np.nan, 1.0, 1.0]))


def test_single_class():
    with pytest.raises(ValueError, match=r"logits has 1 column; K must be >= 2\. For a binary "
                                         r"problem pass the positive class's logit as a 1-D"):
        trueprob.evaluate(np.zeros(4, dtype=int), logits=np.zeros((4, 1)))


def test_exactly_one_prediction_input():
    with pytest.raises(TypeError, match="pass exactly one of logits=, probs= or confidences="
                                        r".*got logits, probs"):
        trueprob.evaluate(Y, logits=Z, probs=P)
    with pytest.raises(TypeError, match="got none"):
        trueprob.evaluate(Y)


def test_exactly_one_target_input():
    with pytest.raises(TypeError, match="pass exactly one of labels, targets= or counts=; "
                                        "got labels, targets"):
        trueprob.evaluate(Y, logits=Z, targets=P)
    with pytest.raises(TypeError, match="got none"):
        trueprob.evaluate(logits=Z)


def test_integer_logits_are_refused_not_guessed():
    with pytest.raises(TypeError, match="logits must be a floating-point array; got dtype int64"):
        trueprob.evaluate(Y, logits=Z.astype(np.int64))


def test_top_label_mode_checks():
    c = np.array([0.9, 0.8, 1.2, 0.5])
    with pytest.raises(ValueError, match=r"confidences must be in \[0, 1\]; row 2 is 1\.2"):
        trueprob.evaluate(Y, confidences=c, predictions=Y)
    with pytest.raises(TypeError, match="confidences= and predictions= go together"):
        trueprob.evaluate(Y, logits=Z, predictions=Y)
    with pytest.raises(ValueError, match=r"predictions must be in 0\.\.2 \(K=3\); row 1 is 7"):
        trueprob.evaluate(Y, confidences=np.full(4, 0.5), predictions=np.array([0, 7, 0, 0]),
                          n_classes=3)


def test_first_bad_row_counts_across_chunks():
    # a bad row in a later chunk is reported by its global index
    n, k = 300_000, 3
    z = np.zeros((n, k))
    z[250_123, 2] = np.inf
    with pytest.raises(ValueError, match="row 250123 is"):
        trueprob.evaluate(np.zeros(n, dtype=int), logits=z)


def test_option_errors():
    with pytest.raises(ValueError, match="unit must be 'nats' or 'bits'; got 'bit'"):
        trueprob.evaluate(Y, logits=Z, unit="bit")
    with pytest.raises(ValueError, match="binning must be 'width' or 'mass'; got 'quantile'"):
        trueprob.evaluate(Y, logits=Z, binning="quantile")
    with pytest.raises(ValueError, match="closed must be 'right' or 'left'; got 'both'"):
        trueprob.evaluate(Y, logits=Z, closed="both")
    with pytest.raises(ValueError, match="n_bins must be a positive integer; got 0"):
        trueprob.evaluate(Y, logits=Z, n_bins=0)
    with pytest.raises(ValueError, match="reduce must be 'mean' or 'sum'; got 'max'"):
        trueprob.evaluate(Y, logits=Z, reduce="max")
    with pytest.raises(TypeError, match="clip= applies to probabilities"):
        log_loss(Y, logits=Z, clip=1e-7)


def test_unchecked_chunks_and_invalid_rows_mask():
    from trueprob._validation import invalid_rows, prepare

    z = Z.copy()
    z[1, 0] = np.nan
    y = np.array([0, 1, 5, 0])
    w = np.array([1.0, 1.0, 1.0, -2.0])
    inputs = prepare(y, logits=z, sample_weight=w, check=False)
    (chunk,) = list(inputs.chunks())  # no error: values are not checked
    assert invalid_rows(np, chunk, 3).tolist() == [False, True, True, True]
    p = P.copy()
    p[0] = [0.5, 0.5, 0.5]
    (chunk,) = list(prepare(Y, probs=p, check=False).chunks())
    assert invalid_rows(np, chunk, 3).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="n_classes is needed in top-label mode"):
        prepare(Y, confidences=np.full(4, 0.5), predictions=Y, check=False)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_invalid_rows_flags_every_count_row_the_checks_refuse(backend):
    """Rows refused by the checked path (negative, fractional, all-zero counts) are exactly
    the rows flagged unchecked; valid rows keep their normalised targets; no warning."""
    from trueprob._validation import invalid_rows, prepare

    counts = np.array([[3, -1, 2], [1, 1, 1], [0, 0, 0], [1.5, 0.5, 1.0], [2, 0, 0]])
    z = np.zeros((5, 3))
    if backend == "torch":
        torch = pytest.importorskip("torch")
        counts_in, z_in = torch.tensor(counts), torch.tensor(z)
    else:
        counts_in, z_in = counts, z
    inputs = prepare(counts=counts_in, logits=z_in, check=False)
    (chunk,) = list(inputs.chunks())
    flagged = np.asarray(invalid_rows(inputs.xp, chunk, 3)).tolist()
    refused = []
    for row in counts:  # the checked path, one row at a time
        try:
            list(prepare(counts=row[None], logits=np.zeros((1, 3))).chunks())
            refused.append(False)
        except ValueError:
            refused.append(True)
    assert flagged == refused == [True, False, True, True, False]
    targets = np.asarray(chunk.targets)
    np.testing.assert_allclose(targets[[1, 4]], [[1 / 3] * 3, [1.0, 0.0, 0.0]])


def test_bfloat16_scores_have_their_own_tolerance_and_evaluate():
    torch = pytest.importorskip("torch")
    from trueprob._array import float_eps

    assert float_eps(torch.bfloat16) == 2.0 ** -7  # 8 significant bits
    assert float_eps(torch.float16) == 2.0 ** -10
    with pytest.raises(TypeError, match="expected a floating dtype"):
        float_eps("not-a-dtype")
    z = torch.tensor(Z, dtype=torch.float32)
    q = torch.softmax(z, dim=1).to(torch.bfloat16)  # rows sum to 1 within bf16 rounding
    report = trueprob.evaluate(torch.tensor(Y), probs=q)
    q64 = q.to(torch.float64).numpy()  # the bf16 values, off the float64 simplex
    with pytest.raises(ValueError, match="pass them in that precision"):
        trueprob.evaluate(Y, probs=q64)
    assert report.accuracy == np.mean(q64.argmax(1) == Y)  # ties: the first index (row 3)
    assert report.nll == pytest.approx(-np.mean(np.log(q64[np.arange(4), Y])), rel=1e-6)


def test_probs_outside_the_unit_interval_are_said_to_look_like_logits():
    z = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.7]])
    with pytest.raises(ValueError, match=r"probs must be in \[0, 1\]; row 0 is \[2, -1, 0\.5\]; "
                                         r"values outside \[0, 1\] are usually logits: pass "
                                         r"them as logits= \(CLI: --logits\)"):
        trueprob.evaluate(np.array([0, 2]), probs=z)

"""Invariances every metric must have (scikit-learn's test_common idea, for every Report field):
unit weights = no weights; integer weights = repeated rows; zero weight = dropped row; row order
does not matter; any chunking and any merge order = one shot; numpy = torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trueprob
from trueprob import EvaluationStats

SETTINGS = [
    {"binning": "width", "closed": "right"},
    {"binning": "width", "closed": "left"},
    {"binning": "mass", "closed": "right"},
]


def numbers(report: trueprob.Report, counts: bool = True) -> dict[str, float]:
    """Every number of a report except the row count n (flattened, NaN kept); without the
    per-bin row counts if ``counts`` is false."""
    d = report.to_dict()
    out: dict[str, float] = {}
    for key, value in d.items():
        if key in ("n", "settings", "unavailable", "inputs", "targets", "unit"):
            continue
        if key == "bins":
            for j, row in enumerate(value):
                for f, v in row.items():
                    if f == "count" and not counts:
                        continue
                    out[f"bins[{j}].{f}"] = math.nan if v is None else float(v)
        elif key == "classwise_ece_per_class":
            for j, v in enumerate(value or []):
                out[f"cw[{j}]"] = v
        else:
            out[key] = math.nan if value is None else float(value)
    return out


def assert_same(a: trueprob.Report, b: trueprob.Report, rel: float = 1e-12,
                abs_: float = 1e-13, counts: bool = True) -> None:
    na, nb = numbers(a, counts), numbers(b, counts)
    assert na.keys() == nb.keys()
    for key in na:
        x, y = na[key], nb[key]
        if math.isnan(x) or math.isnan(y):
            assert math.isnan(x) and math.isnan(y), key
        else:
            assert x == pytest.approx(y, rel=rel, abs=abs_), key
    assert a.settings.edges == pytest.approx(b.settings.edges, rel=1e-15)


@pytest.fixture
def data(rng, synthetic_logits):
    z, y = synthetic_logits(rng, 500, 4, scale=2.0)
    return z, y


@pytest.mark.parametrize("kw", SETTINGS)
def test_unit_weights_equal_no_weights(data, kw):
    z, y = data
    assert_same(trueprob.evaluate(y, logits=z, **kw),
                trueprob.evaluate(y, logits=z, sample_weight=np.ones(len(y)), **kw))


@pytest.mark.parametrize("kw", SETTINGS)
def test_integer_weights_equal_repetition(data, rng, kw):
    z, y = data
    w = rng.integers(0, 4, size=len(y))
    rep = np.repeat(np.arange(len(y)), w)
    a = trueprob.evaluate(y, logits=z, sample_weight=w.astype(float), **kw)
    b = trueprob.evaluate(y[rep], logits=z[rep], **kw)
    assert_same(a, b, counts=False)  # bin counts count rows, weights count repetitions


@pytest.mark.parametrize("kw", SETTINGS)
def test_zero_weight_equals_dropping(data, rng, kw):
    z, y = data
    w = rng.random(len(y)) + 0.5
    w[::7] = 0.0
    keep = w > 0
    assert_same(trueprob.evaluate(y, logits=z, sample_weight=w, **kw),
                trueprob.evaluate(y[keep], logits=z[keep], sample_weight=w[keep], **kw))


@pytest.mark.parametrize("kw", SETTINGS)
def test_permutation_changes_nothing(data, rng, kw):
    z, y = data
    w = rng.random(len(y))
    p = rng.permutation(len(y))
    assert_same(trueprob.evaluate(y, logits=z, sample_weight=w, **kw),
                trueprob.evaluate(y[p], logits=z[p], sample_weight=w[p], **kw))


def test_invariances_hold_for_soft_targets_and_probs(rng):
    q = rng.dirichlet(np.ones(5) * 0.5, size=300)
    t = rng.dirichlet(np.ones(5), size=300)
    w = rng.integers(0, 3, size=300)
    rep = np.repeat(np.arange(300), w)
    assert_same(trueprob.evaluate(probs=q, targets=t, sample_weight=w.astype(float)),
                trueprob.evaluate(probs=q[rep], targets=t[rep]), counts=False)
    p = rng.permutation(300)
    assert_same(trueprob.evaluate(probs=q, targets=t), trueprob.evaluate(probs=q[p],
                                                                        targets=t[p]))


def _merge_tree(states: list[EvaluationStats], rng: np.random.Generator) -> EvaluationStats:
    """Merge states in a random binary tree (random pairs until one is left)."""
    states = list(states)
    while len(states) > 1:
        i, j = sorted(rng.choice(len(states), size=2, replace=False))
        right = states.pop(j)
        left = states.pop(i)
        merged = left.merge(right) if rng.random() < 0.5 else right.merge(left)
        states.append(merged)
    return states[0]


@given(seed=st.integers(0, 2**32 - 1), n_chunks=st.integers(1, 12),
       soft=st.booleans(), weighted=st.booleans())
def test_any_chunking_and_merge_order_equals_one_shot(seed, n_chunks, soft, weighted):
    rng = np.random.default_rng(seed)
    n, k = 240, 3
    z = rng.normal(size=(n, k)).astype(np.float32) * 3
    y = rng.integers(0, k, size=n)
    t = rng.dirichlet(np.ones(k), size=n) if soft else None
    w = rng.random(n) if weighted else None
    kw = {"targets": t} if soft else {}
    labels = None if soft else y
    one = trueprob.evaluate(labels, logits=z, sample_weight=w, **kw)
    cuts = np.sort(rng.choice(np.arange(1, n), size=n_chunks - 1, replace=False))
    states = []
    for part in np.split(np.arange(n), cuts):
        s = EvaluationStats(k)
        s.update(None if soft else y[part], logits=z[part],
                 sample_weight=None if w is None else w[part],
                 **({"targets": t[part]} if soft else {}))
        states.append(s)
    assert_same(_merge_tree(states, rng).finalize(), one, rel=1e-10, abs_=1e-12)


def test_update_is_chunk_size_independent(data):
    z, y = data
    inputs = trueprob._validation.prepare(y, logits=z)
    a = EvaluationStats(4).update_inputs(inputs, rows=7).finalize()
    b = EvaluationStats(4).update_inputs(inputs, rows=10_000).finalize()
    assert_same(a, b)


def test_merge_refuses_different_settings():
    with pytest.raises(ValueError, match="cannot merge states with different settings"):
        EvaluationStats(3).merge(EvaluationStats(3, n_bins=10))
    with pytest.raises(ValueError, match="this state has K=3 classes but the inputs have K=4"):
        EvaluationStats(3).update(np.array([0]), logits=np.zeros((1, 4)))


torch = pytest.importorskip("torch")


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", SETTINGS)
def test_numpy_equals_torch(data, rng, dtype, kw):
    z, y = data
    z = z.astype(dtype)
    w = rng.random(len(y))
    a = trueprob.evaluate(y, logits=z, sample_weight=w, **kw)
    b = trueprob.evaluate(torch.from_numpy(y), logits=torch.from_numpy(z),
                          sample_weight=torch.from_numpy(w), **kw)
    # float32 exp differs by an ulp or so between numpy and torch
    tol = {"rel": 1e-6, "abs_": 1e-6} if dtype == "float32" else {"rel": 1e-12}
    assert_same(a, b, **tol)


@pytest.mark.torch
def test_numpy_equals_torch_soft_and_probs(rng):
    q = rng.dirichlet(np.ones(5), size=200).astype(np.float32)
    c = rng.integers(0, 4, size=(200, 5))
    c[:, 0] += 1
    a = trueprob.evaluate(probs=q, counts=c)
    b = trueprob.evaluate(probs=torch.from_numpy(q), counts=torch.from_numpy(c))
    assert_same(a, b, rel=1e-6, abs_=1e-6)


@pytest.mark.torch
def test_torch_state_merges_with_numpy_state(data):
    z, y = data
    s1 = EvaluationStats(4).update(torch.from_numpy(y[:200]), logits=torch.from_numpy(z[:200]))
    s2 = EvaluationStats(4).update(y[200:], logits=z[200:])
    assert_same(s1.merge(s2).finalize(), trueprob.evaluate(y, logits=z))


@given(seed=st.integers(0, 2**32 - 1), n_parts=st.integers(1, 6))
def test_states_travel_as_bytes_and_merge_in_any_order(seed, n_parts):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(150, 3)) * 2
    y = rng.integers(0, 3, size=150)
    parts = np.array_split(rng.permutation(150), n_parts)
    shipped = [EvaluationStats(3).update(y[p], logits=z[p]).to_bytes() for p in parts]
    states = [EvaluationStats.from_bytes(b) for b in shipped]
    assert_same(_merge_tree(states, rng).finalize(), trueprob.evaluate(y, logits=z),
                rel=1e-10, abs_=1e-12)


def test_bytes_round_trip_is_exact_and_refuses_garbage():
    z = np.array([[2.0, 0.0], [0.0, 1.0]])
    s = EvaluationStats(2, n_bins=5).update(np.array([0, 0]), logits=z)
    back = EvaluationStats.from_bytes(s.to_bytes())
    assert back.finalize().to_dict() == s.finalize().to_dict()
    assert EvaluationStats.from_bytes(EvaluationStats(2, n_bins=5).to_bytes()).merge(s).finalize() \
        .to_dict() == s.finalize().to_dict()
    with pytest.raises(ValueError, match="not a trueprob state"):
        EvaluationStats.from_bytes(b"not an npz")
    import io
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(b'{"format": "x"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="not a trueprob state"):
        EvaluationStats.from_bytes(buf.getvalue())


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("closed", ["right", "left"])
@pytest.mark.parametrize("soft", [False, True])
def test_sparse_classwise_path_equals_dense_path(dtype, closed, soft):
    # numpy takes a sparse classwise path (only entries above bin 0 are binned); torch the
    # dense one. Probabilities sit exactly on and next to the first edge 1/B.
    rng = np.random.default_rng(5)
    b, k = 15, 20  # K >= SPARSE_CLASSWISE_MIN_K
    edge = np.float32(1 / b) if dtype == "float32" else 1 / b
    near = np.array([0.0, edge, np.nextafter(edge, 0), np.nextafter(edge, 1), 2 * edge, 1.0])
    q = rng.dirichlet(np.ones(k) * 0.3, size=400)
    q[:6, :] = 0.0
    q[:6, 0] = 1.0
    q[6:12, 1] = near  # the edge values, renormalised below with the rest of the row
    q = (q / q.sum(1, keepdims=True)).astype(dtype)
    q[6:12] = np.where(np.arange(k) == 1, near[:, None], q[6:12] * 0)
    q[6:12, 0] += 1 - q[6:12].sum(1)
    y = rng.integers(0, k, size=400)
    t = rng.dirichlet(np.ones(k), size=400) if soft else None
    w = rng.random(400)
    w[::9] = 0.0
    kw = {"targets": t} if soft else {}
    a = EvaluationStats(k, n_bins=b, closed=closed).update(
        None if soft else y, probs=q, sample_weight=w, **kw)
    tkw = {"targets": torch.from_numpy(t)} if soft else {}
    d = EvaluationStats(k, n_bins=b, closed=closed).update(
        None if soft else torch.from_numpy(y), probs=torch.from_numpy(q),
        sample_weight=torch.from_numpy(w), **tkw)
    sa, sd = a.classwise.arrays(), d.classwise.arrays()
    np.testing.assert_array_equal(sa["count"], sd["count"])
    for field in ("weight", "sum_score", "sum_outcome"):
        np.testing.assert_allclose(sa[field], sd[field], rtol=1e-12, atol=1e-12)


def test_parts_not_kept_are_reported_as_not_requested():
    z = np.array([[2.0, 0.0], [0.0, 1.0]])
    r = EvaluationStats(2, parts=("scores",)).update(np.array([0, 0]), logits=z).finalize()
    assert math.isnan(r.ece) and math.isnan(r.ks) and math.isnan(r.class_conditional_ece)
    assert r.unavailable["ece"] == "not requested"
    assert r.to_dict()["ece"] is None
    assert r.nll == pytest.approx(trueprob.evaluate(np.array([0, 0]), logits=z).nll)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_equal_one_pass_and_report_the_first_bad_row(threads):
    rng = np.random.default_rng(11)
    z = rng.normal(size=(5000, 3))
    y = rng.integers(0, 3, size=5000)
    inputs = trueprob._validation.prepare(y, logits=z)
    one = EvaluationStats(3).update_inputs(inputs, rows=300, threads=1).finalize()
    many = EvaluationStats(3).update_inputs(inputs, rows=300, threads=threads).finalize()
    assert_same(one, many, rel=1e-12)
    z[4100, 1] = np.nan
    z[2950, 0] = np.inf  # both chunks are in flight together with 2-3 threads
    with pytest.raises(ValueError, match="row 2950 is"):
        EvaluationStats(3).update_inputs(trueprob._validation.prepare(y, logits=z), rows=300,
                                         threads=threads)


def test_memory_layout_does_not_change_results(data):
    z, y = data
    assert_same(trueprob.evaluate(y, logits=np.asfortranarray(z)),
                trueprob.evaluate(y, logits=np.ascontiguousarray(z)), rel=0, abs_=0)


# ---------------------------------------------------------------- class-major fast path
def _tied_logits(rng, n, k, dtype):
    """Logits with exact ties in the maximum, rows of equal logits, and near-ties that the
    float softmax rounds to equal probabilities."""
    z = (rng.normal(size=(n, k)) * 3).astype(dtype)
    z[:20] = 0  # every class tied: the prediction is class 0
    z[20:60, k - 1] = z[20:60].max(axis=1)  # the last class tied with the maximum
    z[60:100, 0] = np.nextafter(z[60:100, 1], dtype(np.inf))  # adjacent floats
    z[100:200] = np.round(z[100:200])
    return z


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("k", [2, 3, 10, 64, 65, 300])
def test_numpy_rows_equal_array_api_rows(rng, dtype, kind, k):
    from trueprob.core.rows import CLASS_MAJOR_MAX_K, row_quantities

    z = _tied_logits(rng, 3000, k, dtype)
    if kind == "probs":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        z = (e / e.sum(axis=1, keepdims=True)).astype(dtype)
    y = rng.integers(0, k, size=len(z))
    chunk = next(trueprob._validation.prepare(y, **{kind: z}).chunks())
    a = row_quantities(np, chunk, numpy_path=False)
    b = row_quantities(np, chunk, numpy_path=True)
    major = k <= CLASS_MAJOR_MAX_K
    assert b.probs.shape == (chunk.n_rows, k)
    assert b.probs.T.flags.c_contiguous == major
    # the prediction is argmax of the probabilities (ties: lowest index), computed here anew
    assert np.array_equal(b.prediction, np.argmax(np.asarray(b.probs), axis=1))
    assert np.array_equal(a.prediction, b.prediction)
    assert np.array_equal(a.correct, b.correct)
    # float32, or row-major: the same float operations entry by entry; float64 class-major:
    # the row sums of K terms may be added in another order (a difference of about K eps)
    tol = (k + 2) * np.finfo(np.float64).eps if dtype == np.float64 and major else 0
    np.testing.assert_allclose(b.probs, a.probs, rtol=tol, atol=0)
    np.testing.assert_allclose(b.confidence, a.confidence, rtol=tol, atol=0)
    np.testing.assert_allclose(b.nll, a.nll, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.brier, a.brier, rtol=1e-9, atol=1e-15)
    if not major:
        for field in ("nll", "brier"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("closed", ["right", "left"])
@pytest.mark.parametrize("k", [10, 100])
def test_classwise_sums_equal_a_direct_count(rng, weighted, closed, k):
    """Classwise sums (K = 10: class by class on the class-major buffer; K = 100: the sparse
    row-major path) against SPEC.md's bins recomputed entry by entry in numpy (float32
    probabilities, some exactly on bin edges)."""
    b = 15
    z, y = _synthetic_logits_f32(rng, 4000, k)
    w = rng.random(len(y)) * (rng.random(len(y)) > 0.1) if weighted else None
    state = EvaluationStats(k, n_bins=b, closed=closed, parts=("classwise",))
    state.update(y, logits=z, sample_weight=w)
    q = np.asarray(trueprob.core.rows.row_quantities(
        np, next(trueprob._validation.prepare(y, logits=z).chunks()), numpy_path=False).probs,
        dtype=np.float64)
    scaled = q * b
    idx = np.clip(np.ceil(scaled) - 1 if closed == "right" else np.floor(scaled), 0, b - 1)
    idx = idx.astype(np.int64) + np.arange(k) * b
    wt = np.ones(len(y)) if w is None else w
    wide = np.broadcast_to(wt[:, None], q.shape)
    onehot = np.eye(k)[y]
    got = state.classwise.arrays()
    np.testing.assert_array_equal(got["count"].ravel(), np.bincount(
        idx.ravel(), (wide > 0).ravel().astype(float), k * b).astype(np.int64))
    for field, values in (("weight", wide), ("sum_score", q * wide),
                          ("sum_outcome", onehot * wide)):
        np.testing.assert_allclose(got[field].ravel(),
                                   np.bincount(idx.ravel(), values.ravel(), k * b),
                                   rtol=1e-12, atol=1e-9, err_msg=field)


def _synthetic_logits_f32(rng, n, k):
    z = (rng.normal(size=(n, k)) * 2.5).astype(np.float32)
    z[:50] = 0  # q = 1/K exactly in float32 only for K a power of 2; 1/10 near an edge
    return z, rng.integers(0, k, size=n)


@pytest.mark.parametrize("k", [10, 64, 65])
def test_numpy_paths_give_the_array_api_report(rng, k, monkeypatch):
    """The whole report: numpy class-major (K <= 64), numpy row-major and the array-API path
    (both forced)."""
    import trueprob.core.rows as rows_module

    z, y = _synthetic_logits_f32(rng, 3000, k)
    w = rng.random(len(y))
    fast = trueprob.evaluate(y, logits=z, sample_weight=w)
    monkeypatch.setattr(rows_module, "CLASS_MAJOR_MAX_K", 0)
    row_major = trueprob.evaluate(y, logits=z, sample_weight=w)
    monkeypatch.setattr(rows_module, "_numpy_path_applies", lambda chunk: False)
    reference = trueprob.evaluate(y, logits=z, sample_weight=w)
    assert_same(fast, reference, rel=1e-12, abs_=1e-14)
    assert_same(row_major, reference, rel=1e-12, abs_=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
def test_top_label_sums_from_class_conditional_equal_their_own_pass(rng, weighted):
    """With class-conditional bins kept, the top-label sums are their sum over the predicted
    class; a state keeping only the top-label bins bins the rows itself."""
    z, y = _synthetic_logits_f32(rng, 5000, 4)
    w = rng.random(len(y)) * (rng.random(len(y)) > 0.2) if weighted else None
    both = EvaluationStats(4, parts=("top_label", "class_conditional"))
    alone = EvaluationStats(4, parts=("top_label",))
    for state in (both, alone):
        state.update(y, logits=z, sample_weight=w)
    a, b = both.top_label.arrays(), alone.top_label.arrays()
    np.testing.assert_array_equal(a["count"], b["count"])
    for field in ("weight", "sum_score", "sum_outcome"):
        np.testing.assert_allclose(a[field], b[field], rtol=1e-12, atol=1e-12, err_msg=field)
    assert both.finalize().ece == pytest.approx(alone.finalize().ece, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_binned_sums_added_in_place_equal_bincount(rng, weighted):
    """More cells than rows: BinnedStats adds with ufunc.at into the state; the sums must be
    those of a plain bincount (float32 scores, zero weights counted as dropped rows)."""
    from trueprob.core.binning import Binning
    from trueprob.stats.binned import BinnedStats

    n_cells = 1 << 12
    state = BinnedStats(Binning(n_cells))
    expect = {f: np.zeros(n_cells) for f in ("count", "weight", "sum_score", "sum_outcome")}
    for _ in range(3):  # three chunks of 500 rows into 4096 cells
        idx = rng.integers(0, n_cells, size=500)
        score = rng.random(500).astype(np.float32)
        outcome = (rng.random(500) < 0.5).astype(np.float64)
        w = rng.random(500) * (rng.random(500) > 0.3) if weighted else None
        assert state.add(np, None, idx, score, outcome, w) is None  # the in-place path
        wt = np.ones(500) if w is None else w
        expect["count"] += np.bincount(idx, (wt > 0).astype(float), n_cells)
        expect["weight"] += np.bincount(idx, wt, n_cells)
        expect["sum_score"] += np.bincount(idx, score.astype(np.float64) * wt, n_cells)
        expect["sum_outcome"] += np.bincount(idx, outcome * wt, n_cells)
    got = state.arrays()
    assert got["count"].dtype == np.int64
    np.testing.assert_array_equal(got["count"][0], expect["count"])
    for field in ("weight", "sum_score", "sum_outcome"):
        np.testing.assert_allclose(got[field][0], expect[field], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 500])
@pytest.mark.parametrize("k", [3, 100])
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_inputs_are_never_written(rng, n, k, kind):
    """The numpy path works in place on its own buffer, never on the caller's array (a single
    row transposed is C-contiguous already: a copy must still be made)."""
    z = rng.normal(size=(n, k)).astype(np.float32)
    if kind == "probs":
        z = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, k, size=n)
    before = z.copy()
    a = trueprob.evaluate(y, **{kind: z})
    b = trueprob.evaluate(y, **{kind: z})
    np.testing.assert_array_equal(z, before)
    assert_same(a, b, rel=0, abs_=0)


@pytest.mark.parametrize("threads", [1, 2])
def test_row_parts_binned_in_batches_equal_chunk_by_chunk(rng, threads, monkeypatch):
    """Small numpy chunks have their row parts (scores, bins, KS and smooth grids) added
    ROW_BATCH rows at a time; the state must be that of adding them chunk by chunk."""
    import trueprob.stats.evaluation as evaluation

    z, y = _synthetic_logits_f32(rng, 70_000, 20)
    w = rng.random(len(y))
    inputs = trueprob._validation.prepare(y, logits=z, sample_weight=w)
    batched = EvaluationStats(20).update_inputs(inputs, rows=1000, threads=threads)
    monkeypatch.setattr(evaluation, "ROW_BATCH", 1)  # every chunk on its own
    alone = EvaluationStats(20).update_inputs(inputs, rows=1000, threads=threads)
    assert_same(batched.finalize(), alone.finalize(), rel=1e-11, abs_=1e-13)
    assert batched.smooth.n_rows == alone.smooth.n_rows == 70_000


def test_batched_rows_hold_no_chunk_arrays(rng):
    """Between flushes the batch holds per-row vectors only: the traced peak of a pass over
    80 MB of float32 logits (20000 x 1000, 38 chunks, one batch) stays far below the input
    (holding each chunk's probabilities took 80+ MB; the issue's bound is 64 MiB)."""
    import tracemalloc

    z = rng.normal(size=(20_000, 1000)).astype(np.float32)
    y = rng.integers(0, 1000, size=20_000)
    inputs = trueprob._validation.prepare(y, logits=z)
    EvaluationStats(1000).update_inputs(inputs, rows=1000, threads=1)  # warm caches
    tracemalloc.start()
    try:
        EvaluationStats(1000).update_inputs(inputs, threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"traced peak {peak / 2**20:.1f} MiB"


@pytest.mark.torch
@pytest.mark.parametrize("k", [20, 300])
def test_sparse_classwise_soft_targets_equal_torch_dense(rng, k):
    """numpy's sparse classwise path (ufunc.at above the first bin, bin 0 from the column
    totals) against torch's dense path, soft targets from counts, zero weights included."""
    q = rng.dirichlet(np.full(k, 0.3), size=3000)
    c = rng.integers(0, 4, size=(3000, k))
    c[:, 0] += 1
    w = rng.random(3000)
    w[::5] = 0
    a = EvaluationStats(k).update(probs=q, counts=c, sample_weight=w)
    b = EvaluationStats(k).update(probs=torch.from_numpy(q), counts=torch.from_numpy(c),
                                  sample_weight=torch.from_numpy(w))
    ga, gb = a.classwise.arrays(), b.classwise.arrays()
    np.testing.assert_array_equal(ga["count"], gb["count"])
    for field in ("weight", "sum_score", "sum_outcome"):
        np.testing.assert_allclose(ga[field], gb[field], rtol=1e-10, atol=1e-12, err_msg=field)
    assert_same(a.finalize(), b.finalize(), rel=1e-10, abs_=1e-12)

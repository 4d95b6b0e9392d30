"""Compatibility conventions reproduce other libraries' numbers (trueprob.metrics.conventions).

Three kinds of evidence:

1. tests/reference/conventions.json: numbers computed by torchmetrics 1.9.0, scikit-learn 1.9.1
   (calibration_curve), netcal 1.4.0 and relplot 1.0.3 themselves, with the command that made
   them (``/work/bench-venv/bin/python tools/make_convention_reference.py``), on seeded
   synthetic inputs (exact 0.0 and 1.0, values on and next to every edge k/B in float32 and
   float64, ties) and on the real files of ../shared/data (all five netcal-cifar-probs files,
   two Mukhoti et al. test files, the five markus93 confidence files with thousands of exact
   1.0). Errors the libraries raise are part of the reference.
2. Hand-computed cases, including every Kull et al. 2019 check (their code is not installable)
   and the documented outputs of torchmetrics' and scikit-learn's docstrings.
3. Invariances: chunked = one pass, torch = numpy, and a second implementation of Kull et al.'s
   rule written as a plain loop.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from fractions import Fraction
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from trueprob.metrics import conventions as cv
from trueprob.metrics.conventions import (
    calibration_error,
    kull2019_calibration_error,
    netcal_calibration_error,
    relplot_binned_ece,
    sklearn_calibration_error,
    torch_linspace_edges,
    torchmetrics_calibration_error,
)

REPO = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((REPO / "tests" / "reference" / "conventions.json").read_text())


def _load_generator() -> Any:
    """tools/make_convention_reference.py (numpy only at import) for its input recipes."""
    path = REPO / "tools" / "make_convention_reference.py"
    spec = importlib.util.spec_from_file_location("make_convention_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()


@cache
def _input(name: str, data_dir: Path | None) -> dict[str, Any]:
    return GEN.build_input(name, data_dir)


def _kwargs(data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    if "confidences" in data:
        return data["labels"], {"confidences": data["confidences"],
                                "predictions": data["predictions"]}
    key = "logits" if "logits" in data else "probs"
    return data["labels"], {key: data[key]}


def _tolerance(case: dict[str, Any], data: dict[str, Any]) -> float:
    """Relative tolerance: 1e-6 for torchmetrics (float32 sums reproduced in order; only the
    final float32 sum of B+1 terms may round differently), 2e-6 when a library applies its own
    float32 softmax to logits (confidences differ from trueprob's softmax in the last bit),
    1e-12 for the float64 libraries."""
    if "logits" in data:
        return 2e-6
    if case["convention"] == "torchmetrics":
        return 1e-6
    return 1e-12


def _check_cases(input_name: str, convention: str, data_dir: Path | None) -> None:
    cases = [c for c in REFERENCE["cases"]
             if c["input"] == input_name and c["convention"] == convention]
    assert cases, f"no reference cases for {input_name} / {convention}"
    data = _input(input_name, data_dir)
    labels, kw = _kwargs(data)
    failures = []
    for case in cases:
        options = {k: case[k] for k in ("convention", "kind", "norm", "n_bins", "strategy")}
        if "error" in case:
            try:
                got = calibration_error(labels, **kw, **options)
            except ValueError:
                continue
            failures.append(f"{options}: the library raised {case['error']!r}, trueprob gave "
                            f"{got!r}")
            continue
        got = calibration_error(labels, **kw, **options)
        want = case["value"]
        rtol = _tolerance(case, data)
        if not abs(got - want) <= rtol * abs(want) + 1e-15:
            failures.append(f"{options}: library {want!r} ({case['call']}), trueprob {got!r}, "
                            f"rel. diff {abs(got - want) / max(abs(want), 1e-300):.2e}")
    assert not failures, "\n".join(failures)


SYNTHETIC_PAIRS = sorted({(c["input"], c["convention"]) for c in REFERENCE["cases"]
                          if c["input"] in GEN.SYNTHETIC})
FILE_PAIRS = sorted({(c["input"], c["convention"]) for c in REFERENCE["cases"]
                     if c["input"] in GEN.FILES})


def test_reference_provenance() -> None:
    versions = REFERENCE["versions"]
    assert versions["torchmetrics"] == "1.9.0"
    assert versions["scikit-learn"] == "1.9.1"
    assert versions["netcal"] == "1.4.0"
    assert versions["relplot"] == "1.0.3"
    assert "make_convention_reference.py" in REFERENCE["command"]
    assert len(REFERENCE["cases"]) > 600
    made = {(c["input"], c["convention"]) for c in REFERENCE["cases"]}
    assert {i for i, _ in made} == set(GEN.SYNTHETIC) | set(GEN.FILES)
    assert {c for _, c in made} == {"torchmetrics", "sklearn", "netcal", "relplot"}


@pytest.mark.parametrize(("input_name", "convention"), SYNTHETIC_PAIRS)
def test_reference_synthetic(input_name: str, convention: str) -> None:
    _check_cases(input_name, convention, None)


@pytest.mark.data
@pytest.mark.parametrize(("input_name", "convention"), FILE_PAIRS)
def test_reference_real_data(input_name: str, convention: str, shared_data: Path) -> None:
    _check_cases(input_name, convention, shared_data)


@pytest.mark.data
def test_real_inputs_have_the_edge_cases_the_issue_names(shared_data: Path) -> None:
    """The markus93 files carry thousands of confidences of exactly 1.0; netcal's quantile
    bins fail on them (repeated edges) and the reference records it."""
    data = _input("markus93/densenet40-c10", shared_data)
    assert int(np.sum(data["confidences"] == 1.0)) == 5599
    netcal_probs = _input("netcal/wrn16-4-c10", shared_data)["probs"]
    assert int(np.sum(netcal_probs.max(axis=1) == 1.0)) > 2000
    errors = [c for c in REFERENCE["cases"] if c["input"] == "markus93/densenet40-c10"
              and "error" in c]
    assert errors and all(c["strategy"] == "quantile" for c in errors)


def test_synthetic_inputs_sit_on_every_edge() -> None:
    """Every edge any library uses (torch.linspace, np.linspace, k/B) is among the values."""
    for name, dtype in (("edges-k10-f32", np.float32), ("edges-k10-f64", np.float64)):
        conf = _input(name, None)["probs"].max(axis=1)
        assert conf.dtype == dtype
        for b in (10, 15, 20):
            edges = np.linspace(0.0, 1.0, b + 1).astype(dtype)
            torch_edges = torch_linspace_edges(b, dtype)
            for e in (*edges, *torch_edges):
                if e >= 0.13:
                    assert np.any(conf == e), (name, b, e)
    binary = _input("binary-f32", None)["probs"]
    assert np.sum(binary == 0.0) >= 50 and np.sum(binary == 1.0) >= 60


# ---------------------------------------------------------------------------------------------
# torchmetrics
# ---------------------------------------------------------------------------------------------

def test_torchmetrics_documented_examples() -> None:
    """Outputs printed in torchmetrics 1.9.0's docstrings (multiclass_ / binary_
    calibration_error), rounded there to 4 decimals."""
    q = np.array([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60],
                  [0.90, 0.05, 0.05]], dtype=np.float32)
    y = np.array([0, 1, 2, 0])
    got = [torchmetrics_calibration_error(y, probs=q, n_bins=3, norm=n)
           for n in ("l1", "l2", "max")]
    assert np.round(got, 4).tolist() == [0.2000, 0.2082, 0.2333]
    p = np.array([0.25, 0.25, 0.55, 0.75, 0.75], dtype=np.float32)
    t = np.array([0, 0, 1, 1, 1])
    got = [torchmetrics_calibration_error(t, probs=p, n_bins=2, norm=n, kind="positive_class")
           for n in ("l1", "l2", "max")]
    assert np.round(got, 4).tolist() == [0.2900, 0.2918, 0.3167]


def test_torchmetrics_one_gets_a_bin_of_its_own() -> None:
    """c = 1.0 sits in the extra bin B; c = 0.95 in [14/15, 1). By hand: rows (1.0, wrong),
    (0.95, right): bins {1.0}: |0 - 1|, {0.95}: |1 - 0.95|; ECE = (1 + 0.05) / 2."""
    c = np.array([1.0, 0.95])
    y = np.array([1, 0])
    pred = np.zeros(2, dtype=np.int64)
    got = torchmetrics_calibration_error(y, confidences=c, predictions=pred, n_bins=15)
    want = (1.0 + (1.0 - float(np.float32(0.95)))) / 2
    assert got == pytest.approx(want, rel=1e-7)
    # trueprob's own convention (and scikit-learn's) puts both in bin 14: |1/2 - 0.975|
    sk = sklearn_calibration_error(y, confidences=c, predictions=pred, n_bins=15)
    assert sk == pytest.approx(0.475, rel=1e-12)


def test_torchmetrics_float64_confidences_become_float32() -> None:
    """multiclass casts confidences to float32: 1 - 1e-9 becomes 1.0 and joins the extra bin;
    binary keeps float64, so 1 - 1e-9 stays in bin B-1 with the other row."""
    c = np.array([1.0 - 1e-9, 0.95])
    y = np.array([1, 0])
    pred = np.zeros(2, dtype=np.int64)
    top = torchmetrics_calibration_error(y, confidences=c, predictions=pred, n_bins=10)
    assert top == pytest.approx((1.0 + (1.0 - float(np.float32(0.95)))) / 2, rel=1e-7)
    p = np.array([1.0 - 1e-9, 0.95])   # positive-class probabilities, float64
    t = np.array([0, 1])
    binary = torchmetrics_calibration_error(t, probs=p, n_bins=10, kind="positive_class")
    assert binary == pytest.approx(abs(0.5 - (1.0 - 1e-9 + 0.95) / 2), rel=1e-12)


def test_torch_linspace_edges_by_hand() -> None:
    """B = 15: step = float32(1/15); edge 3 = round(3 * step) (upper neighbour of
    float32(0.2)); edge 12 = round(1 - 3 * step) = float32(0.8) exactly, where rounding
    3 * step first would give the float32 below 0.8."""
    e = torch_linspace_edges(15, np.float32)
    step = Fraction(float(np.float32(1) / np.float32(15)))
    assert e[3] == np.float32(float(3 * step)) == np.nextafter(np.float32(0.2), np.float32(1))
    assert e[12] == np.float32(0.8)
    assert np.float32(1) - np.float32(3) * np.float32(step) < e[12]
    assert e[0] == 0 and e[-1] == 1 and np.all(np.diff(e) > 0)


@pytest.mark.torch
def test_torch_linspace_edges_match_torch() -> None:
    torch = pytest.importorskip("torch")
    for dtype, tdtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
        for b in range(1, 300):
            want = torch.linspace(0, 1, b + 1, dtype=tdtype).numpy()
            np.testing.assert_array_equal(torch_linspace_edges(b, dtype), want)


# ---------------------------------------------------------------------------------------------
# scikit-learn, netcal, relplot by hand
# ---------------------------------------------------------------------------------------------

def test_sklearn_documented_example() -> None:
    """calibration_curve's docstring (scikit-learn 1.9.1): prob_true (0, 0.5, 1), prob_pred
    (0.2, 0.525, 0.85) for n_bins=3; bins hold 4, 2 and 3 rows... by hand: p in (0, 1/3]:
    0.1, 0.2, 0.3 (3 rows); (1/3, 2/3]: 0.4, 0.65 (2 rows); (2/3, 1]: 0.7, 0.8, 0.9, 1.0."""
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.65, 0.7, 0.8, 0.9, 1.0])
    got = sklearn_calibration_error(y, probs=p, n_bins=3, kind="positive_class")
    want = (3 * abs(0 - 0.2) + 2 * abs(0.5 - 0.525) + 4 * abs(1 - 0.85)) / 9
    assert got == pytest.approx(want, rel=1e-12)
    mce = sklearn_calibration_error(y, probs=p, n_bins=3, kind="positive_class", norm="max")
    assert mce == pytest.approx(0.2, rel=1e-12)


def test_sklearn_quantile_ties_leave_bins_empty() -> None:
    """np.percentile edges of (0.2 x6, 0.8 x4) for 4 bins: 0.2, 0.2, 0.2, 0.35, 0.8; inner edges
    (0.2, 0.2, 0.35): 0.2 -> bin 0, 0.8 -> bin 3; bins 1 and 2 empty and dropped."""
    p = np.array([0.2] * 6 + [0.8] * 4)
    y = np.array([1, 0, 0, 0, 0, 0, 1, 1, 1, 0])
    got = sklearn_calibration_error(y, probs=p, n_bins=4, strategy="quantile",
                                    kind="positive_class")
    want = 0.6 * abs(1 / 6 - 0.2) + 0.4 * abs(0.75 - 0.8)
    assert got == pytest.approx(want, rel=1e-12)


def test_netcal_clips_one_to_one_minus_eps() -> None:
    """Both rows at c = 1.0 (one right): netcal sees 1 - eps(float32) in bin [0.9, 1):
    ECE = |1/2 - (1 - 2**-23)|."""
    q = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    y = np.array([0, 1, 2])
    got = netcal_calibration_error(y, probs=q, n_bins=10)
    # third row c = 1.0 too, right: bin holds 3 rows, 2 right
    want = abs(2 / 3 - (1 - 2.0 ** -23))
    assert got == pytest.approx(want, rel=1e-12)


def test_netcal_float32_edges_disagree_between_counts_and_means() -> None:
    """float32(0.7) < 0.7: np.histogramdd (float64 edges) counts it in [0.6, 0.7) while
    scipy's binned_statistic_dd (edges cast to float32) averages it in [0.7, 0.8); the first
    bin has a count but no mean, the second a mean but no count, so the row adds nothing.
    Only the row at float32(0.2) (y = 0) counts: ECE = (1/2) * float32(0.2). (netcal 1.4.0
    returns 0.10000000149011612 here.)"""
    p = np.array([0.7, 0.2], dtype=np.float32)
    y = np.array([1, 0])
    got = netcal_calibration_error(y, probs=p, n_bins=10, kind="positive_class")
    assert got == float(np.float32(0.2)) / 2
    # in float64 both rows count: (|1 - 0.7| + |0 - 0.2|) / 2
    got64 = netcal_calibration_error(y, probs=p.astype(np.float64), n_bins=10,
                                     kind="positive_class")
    assert got64 == pytest.approx((0.3 + 0.2) / 2 + 2 * 0 * 1e-9, abs=1e-7)


def test_relplot_float32_division_moves_an_edge_down() -> None:
    """float32(7/15) / float32(1/15) = 6.9999995 -> bin 6, with 6.5/15: the residuals
    (7/15 - 1) and (6.5/15 - 0) share a bin: ECE = |7/15 - 1 + 6.5/15| / 2 = 0.05 (float32
    inputs). In float64, 7/15 lands in bin 7: ECE = (8/15 + 6.5/15) / 2."""
    p = np.array([7 / 15, 6.5 / 15], dtype=np.float32)
    y = np.array([1, 0])
    got = relplot_binned_ece(y, probs=p, n_bins=15, kind="positive_class")
    want = abs(float(p[0]) - 1 + float(p[1])) / 2
    assert got == pytest.approx(want, rel=1e-12)
    assert got == pytest.approx(0.05, abs=1e-7)
    got64 = relplot_binned_ece(y, probs=np.array([7 / 15, 6.5 / 15]), n_bins=15,
                               kind="positive_class")
    assert got64 == pytest.approx((8 / 15 + 6.5 / 15) / 2, rel=1e-12)


def test_relplot_fails_where_relplot_fails() -> None:
    """nbins = 93: relplot allocates int(1/(1/93)) + 1 = 93 bins and float32 1.0 needs bin
    93 (its IndexError is in the reference); float64 1.0 / (1/93) = 92.99999999999999 fits."""
    y = np.array([1, 0])
    with pytest.raises(ValueError, match=r"relplot's binnedECE fails for n_bins=93"):
        relplot_binned_ece(y, probs=np.array([1.0, 0.5], dtype=np.float32), n_bins=93,
                           kind="positive_class")
    got = relplot_binned_ece(y, probs=np.array([1.0, 0.5]), n_bins=93, kind="positive_class")
    assert got == pytest.approx(0.25, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Kull et al. 2019: hand-computed
# ---------------------------------------------------------------------------------------------

def test_kull2019_bins_count_edges() -> None:
    """n_bins = 15 edges np.linspace(0, 1, 15): 14 bins of width 1/14 plus {1.0}. Binary, by
    hand: p = 0.05 (y 0) and 0.07 (y 1) share [0, 1/14); p = 1/14 (y 0) opens [1/14, 2/14);
    p = 1.0 (y 1) has its own bin: (2 * |0.06 - 0.5| + |1/14 - 0| + 0) / 4."""
    p = np.array([0.05, 0.07, 1 / 14, 1.0])
    y = np.array([0, 1, 0, 1])
    got = kull2019_calibration_error(y, probs=p, n_bins=15, kind="positive_class")
    assert got == pytest.approx((2 * 0.44 + 1 / 14) / 4, rel=1e-12)


def test_kull2019_one_is_not_merged_with_the_last_bin() -> None:
    """p = 0.99 (y 1) and p = 1.0 (y 0): with 3 edges (0, 0.5, 1) the bins are [0, .5),
    [.5, 1), {1}: (|0.99 - 1| + |1 - 0|) / 2; one right-closed bin (.5, 1] would give
    |0.995 - 0.5|."""
    p = np.array([0.99, 1.0])
    y = np.array([1, 0])
    got = kull2019_calibration_error(y, probs=p, n_bins=3, kind="positive_class")
    assert got == pytest.approx((0.01 + 1.0) / 2, rel=1e-12)


def test_kull2019_classwise_is_summed_over_classes() -> None:
    """K = 3, B = 3 edges, by hand with fractions (see the docstring): 1/6 + 1/4 + 1/4."""
    q = np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    y = np.array([0, 0, 2])
    got = kull2019_calibration_error(y, probs=q, n_bins=3)
    assert got == pytest.approx(float(Fraction(1, 6) + Fraction(1, 4) + Fraction(1, 4)),
                                rel=1e-12)
    assert calibration_error(y, probs=q, n_bins=3, convention="kull2019",
                             kind="classwise") == got


def test_kull2019_classwise_by_hand_with_four_classes() -> None:
    """K = 4, default B = 15 (width 1/14). Per class (p, y):
    class 0: (0.7, 1), (0.1, 0), (0.2, 0), (0.25, 0): bins [9/14..): {0.7}: 0.3/4;
             [1/14, 2/14): {0.1}: 0.1/4; [2/14, 3/14): {0.2}: 0.2/4; [3/14, 4/14): {0.25}: .25/4
    class 1: (0.1, 0), (0.6, 1), (0.2, 0), (0.25, 0): {0.1}: .1/4, {0.6}: .4/4, {0.2}: .2/4,
             {0.25}: .25/4
    class 2: (0.1, 0), (0.2, 0), (0.4, 1), (0.25, 1): {0.1}: .1/4, {0.2}: .2/4, {0.4}: .6/4,
             {0.25}: .75/4
    class 3: (0.1, 0), (0.1, 0), (0.2, 0), (0.25, 0): {0.1, 0.1}: 2 * .1/4, {.2}: .2/4,
             {.25}: .25/4."""
    q = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.2, 0.2, 0.4, 0.2],
                  [0.25, 0.25, 0.25, 0.25]])
    y = np.array([0, 1, 2, 2])
    per_class = [0.3 + 0.1 + 0.2 + 0.25, 0.1 + 0.4 + 0.2 + 0.25, 0.1 + 0.2 + 0.6 + 0.75,
                 0.2 + 0.2 + 0.25]
    got = kull2019_calibration_error(y, probs=q)
    assert got == pytest.approx(sum(per_class) / 4, rel=1e-12)


def _kull_loop(q: np.ndarray, y: np.ndarray, bins: int) -> float:
    """Kull et al.'s rule as a plain loop, written from its description: digitize into
    np.linspace(0, 1, bins), |np.mean(p) - np.mean(y)| * n_b / N per occupied bin, summed over
    bins and classes (np.mean in the probabilities' own dtype, as the original)."""
    total = 0.0
    edges = np.linspace(0, 1, bins)
    for k in range(q.shape[1]):
        p = q[:, k]
        t = (y == k).astype(float)
        idx = np.digitize(p, edges) - 1
        for b in np.unique(idx):
            m = idx == b
            total += abs(np.mean(p[m]) - np.mean(t[m])) * np.sum(m) / len(p)
    return total


def test_kull2019_matches_a_plain_loop_on_synthetic_data() -> None:
    data = _input("random-k10-f32", None)
    q, y = data["probs"], data["labels"]
    for bins in (15, 10, 2):
        got = kull2019_calibration_error(y, probs=q, n_bins=bins)
        assert got == pytest.approx(_kull_loop(q, y, bins), rel=1e-6)


@pytest.mark.data
def test_kull2019_matches_a_plain_loop_on_real_data(shared_data: Path) -> None:
    for name in ("netcal/wrn16-4-c10", "netcal/lenet5-c100", "mukhoti/wrn26-10-c100"):
        data = _input(name, shared_data)
        q, y = data["probs"], data["labels"]
        got = kull2019_calibration_error(y, probs=q)
        assert got == pytest.approx(_kull_loop(q, y, 15), rel=1e-6), name


# ---------------------------------------------------------------------------------------------
# Invariances
# ---------------------------------------------------------------------------------------------

def test_chunked_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-bin sums are kept across chunks in row order: torchmetrics' float32 sums and
    relplot's float64 sums come out identical whatever the chunk size."""
    data = _input("random-k10-f32", None)
    q, y = data["probs"], data["labels"]
    options = [{"convention": c, "norm": "l1"}
               for c in ("torchmetrics", "netcal", "relplot", "sklearn")]
    whole = [calibration_error(y, probs=q, **o) for o in options]
    whole_cw = kull2019_calibration_error(y, probs=q)
    monkeypatch.setattr("trueprob._validation.CHUNK_ELEMENTS", 700)  # 70 rows per chunk
    chunked = [calibration_error(y, probs=q, **o) for o in options]
    assert chunked[0] == whole[0]
    assert chunked[2] == whole[2]
    assert chunked == pytest.approx(whole, rel=1e-13)
    assert kull2019_calibration_error(y, probs=q) == pytest.approx(whole_cw, rel=1e-13)


@pytest.mark.torch
def test_torch_inputs_give_the_same_numbers() -> None:
    torch = pytest.importorskip("torch")
    data = _input("edges-k10-f32", None)
    q, y = data["probs"], data["labels"]
    for convention in ("torchmetrics", "sklearn", "netcal", "relplot"):
        want = calibration_error(y, probs=q, convention=convention)
        got = calibration_error(torch.from_numpy(y), probs=torch.from_numpy(q),
                                convention=convention)
        assert got == want, convention
    assert kull2019_calibration_error(torch.from_numpy(y), probs=torch.from_numpy(q)) == \
        kull2019_calibration_error(y, probs=q)


def test_conventions_differ_from_each_other_on_ones() -> None:
    """On the same rows the conventions give different numbers; the dispatcher routes each."""
    data = _input("random-k10-f32", None)
    q, y = data["probs"], data["labels"]
    values = {c: calibration_error(y, probs=q, convention=c)
              for c in ("torchmetrics", "sklearn", "netcal", "relplot")}
    assert values["torchmetrics"] == torchmetrics_calibration_error(y, probs=q)
    assert values["sklearn"] == sklearn_calibration_error(y, probs=q)
    assert values["netcal"] == netcal_calibration_error(y, probs=q)
    assert values["relplot"] == relplot_binned_ece(y, probs=q)
    assert len({round(v, 9) for v in values.values()}) >= 3


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

Q3 = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
Y3 = np.array([0, 1, 2])


@pytest.mark.parametrize(("options", "message"), [
    ({"convention": "pytorch"}, r"convention must be one of \('torchmetrics', 'sklearn', "
                                r"'netcal', 'relplot', 'kull2019', 'kumar2019'\); got "
                                r"'pytorch'"),
    ({"convention": "netcal", "norm": "l2"},
     r"convention='netcal' has no norm='l2'; it offers norm in \('l1', 'max'\)"),
    ({"convention": "relplot", "norm": "max"}, r"convention='relplot' has no norm='max'"),
    ({"convention": "torchmetrics", "strategy": "quantile"},
     r"convention='torchmetrics' has no strategy='quantile'; it offers strategy in "
     r"\('uniform',\)"),
    ({"convention": "torchmetrics", "kind": "classwise"},
     r"convention='torchmetrics' has no kind='classwise'.*classwise_ece"),
    ({"convention": "kull2019"},
     r"convention='kull2019' has no kind='top_label'.*trueprob's default: use top_label_ece"),
    ({"convention": "sklearn", "kind": "top-label"},
     r"kind must be 'top_label', 'positive_class' or 'classwise'; got 'top-label'"),
    ({"convention": "sklearn", "norm": "L1"}, r"norm must be 'l1', 'l2' or 'max'; got 'L1'"),
    ({"convention": "sklearn", "strategy": "width"},
     r"strategy must be 'uniform' or 'quantile'; got 'width'"),
    ({"convention": "sklearn", "n_bins": 0}, r"n_bins must be a positive integer; got 0"),
    ({"convention": "sklearn", "n_bins": 2.5}, r"n_bins must be a positive integer; got 2.5"),
    ({"convention": "sklearn", "n_bins": True}, r"n_bins must be a positive integer; got True"),
    ({"convention": "sklearn", "kind": "positive_class"},
     r"kind='positive_class' needs a binary problem .* got K=3 classes"),
    ({"convention": "kull2019", "kind": "classwise", "confidences": np.array([0.5, 0.6, 0.7]),
      "predictions": np.array([0, 1, 2]), "probs": None},
     r"convention='kull2019' needs probs= or logits="),
])
def test_option_errors(options: dict[str, Any], message: str) -> None:
    kw: dict[str, Any] = {"probs": Q3}
    kw.update(options)
    with pytest.raises(ValueError, match=message):
        calibration_error(Y3, **kw)


def test_labels_are_required() -> None:
    with pytest.raises(TypeError, match=r"labels are required: convention='sklearn' takes "
                                        r"hard labels only"):
        calibration_error(probs=Q3, convention="sklearn")


def test_confidences_give_only_the_top_label() -> None:
    with pytest.raises(ValueError, match=r"kind='positive_class' needs the full probabilities"):
        calibration_error(np.array([0, 1]), confidences=np.array([0.6, 0.7]),
                          predictions=np.array([0, 1]), convention="relplot",
                          kind="positive_class")


def test_netcal_top_label_needs_three_distinct_labels() -> None:
    with pytest.raises(ValueError, match=r"at least 3 distinct values; these have 2"):
        netcal_calibration_error(np.array([0, 1, 1]), probs=Q3)
    with pytest.raises(ValueError, match=r"at least 3 distinct values; these have 2"):
        netcal_calibration_error(np.array([0, 1]), probs=np.array([0.3, 0.8]))


def test_netcal_quantile_refuses_coinciding_edges() -> None:
    p = np.array([0.2] * 8 + [0.8] * 2)
    y = np.array([0] * 9 + [1])
    with pytest.raises(ValueError, match=r"two of the 5 edges coincide in float64"):
        netcal_calibration_error(y, probs=p, n_bins=4, strategy="quantile",
                                 kind="positive_class")


def test_kull2019_classwise_refuses_two_classes() -> None:
    with pytest.raises(ValueError, match=r"needs K >= 3 classes .* got K=2"):
        kull2019_calibration_error(np.array([0, 1]), probs=np.array([0.3, 0.8]))


def test_invalid_inputs_are_refused_by_validation() -> None:
    with pytest.raises(ValueError, match=r"probs rows must sum to 1"):
        calibration_error(Y3, probs=Q3 * 1.1, convention="sklearn")
    with pytest.raises(ValueError, match=r"labels must be in 0..2 \(K=3\); row 1 is 3"):
        calibration_error(np.array([0, 3, 1]), probs=Q3, convention="netcal")


def test_registry_lists_what_each_convention_offers() -> None:
    assert set(cv.CONVENTIONS) == {"torchmetrics", "sklearn", "netcal", "relplot", "kull2019",
                                "kumar2019"}
    assert cv.CONVENTIONS["netcal"].norms == ("l1", "max")
    assert cv.CONVENTIONS["kull2019"].kinds == ("classwise", "positive_class")
    assert isinstance(cv.CONVENTIONS, MappingProxyType)  # read-only


# ------------------------------------------------------------------------------ kumar2019
def _kumar_by_hand(conf: list[float], correct: list[float], n_bins: int, p: int,
                   equal_mass: bool) -> float:
    """An independent, pure-Python reading of verified_calibration's rules (Kumar, Liang,
    Ma 2019, calibration/utils.py): ``split`` by np.array_split's rule written out with list
    slices, edges at midpoints between parts plus 1.0 (deduplicated), bins found with
    ``bisect.bisect_left``, plug-in CE_p over the non-empty bins."""
    import bisect

    if equal_mass:
        ordered = sorted(conf)
        parts = min(n_bins, len(ordered))
        size, extra = divmod(len(ordered), parts)
        chunks, start = [], 0
        for j in range(parts):
            stop = start + size + (1 if j < extra else 0)
            chunks.append(ordered[start:stop])
            start = stop
        edges = [(chunks[j][-1] + chunks[j + 1][0]) / 2.0 for j in range(parts - 1)]
        edges = sorted({*edges, 1.0})
    else:
        edges = [j / n_bins for j in range(1, n_bins + 1)]
    bins: dict[int, list[float]] = {}
    for c, a in zip(conf, correct, strict=True):
        bins.setdefault(bisect.bisect_left(edges, c), []).append(c - a)
    total = sum(len(v) / len(conf) * abs(sum(v) / len(v)) ** p for v in bins.values())
    return total ** (1.0 / p)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("equal_mass", [True, False])
@pytest.mark.parametrize(("n", "n_bins"), [(7, 15), (100, 15), (103, 10), (1000, 15)])
def test_kumar2019_matches_a_hand_implementation(n: int, n_bins: int, p: int,
                                                 equal_mass: bool) -> None:
    rng = np.random.default_rng(n + n_bins)
    z = rng.normal(size=(n, 5)) * 2
    q = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.where(rng.random(n) < 0.6, q.argmax(1), rng.integers(0, 5, n))
    q[: n // 10] = np.round(q[: n // 10], 1)  # ties, so that equal scores cross a cut
    q /= q.sum(1, keepdims=True)
    conf = q.max(1)
    correct = (q.argmax(1) == y).astype(float)
    expected = _kumar_by_hand(conf.tolist(), correct.tolist(), n_bins, p, equal_mass)
    got = cv.kumar2019_calibration_error(y, probs=q, n_bins=n_bins, norm=f"l{p}",
                                         strategy="quantile" if equal_mass else "uniform")
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    if equal_mass:
        from trueprob.metrics import top_label_ece

        assert top_label_ece(y, probs=q, p=p, n_bins=n_bins, convention="kumar2019") == got


def test_kumar2019_options() -> None:
    with pytest.raises(ValueError, match=r"convention='kumar2019' has no norm='max'"):
        calibration_error(Y3, probs=Q3, convention="kumar2019", norm="max")
    with pytest.raises(ValueError, match=r"convention='kumar2019' has no kind='classwise'"):
        calibration_error(Y3, probs=Q3, convention="kumar2019", kind="classwise")

"""Progress of long reads, streamed passes and Dask runs (issue 6).

A bar is checked two ways: the ``ProgressBar`` objects handed out (recorded by wrapping
``trueprob._progress.progress``) must have advanced by exactly the rows of the file, and the
text drawn on a fake terminal must show ``rows/rows``. ``LARGE_ROWS`` is lowered so the files
stay small; the row counts are those the test wrote, not numbers read back from trueprob.
"""

from __future__ import annotations

import contextlib
import io
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from trueprob import _progress
from trueprob.io import iter_inputs, read_columns, read_inputs

N = 1000  # rows of every test file
LARGE = 100  # LARGE_ROWS while testing: N is "large", 50 is not


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def terminal(monkeypatch) -> FakeTerminal:
    """From now on standard error is a terminal and LARGE_ROWS is small.

    Called in the test body: pytest puts its own capture back on ``sys.stderr`` between a
    fixture's setup and the test call.
    """
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setattr(_progress, "LARGE_ROWS", LARGE)
    return fake


@pytest.fixture
def bars(monkeypatch):
    """Every ProgressBar opened, with the amounts it was advanced by."""
    seen: list[tuple[_progress.ProgressBar, list[float]]] = []
    real = _progress.progress

    @contextlib.contextmanager
    def recording(*args, **kwargs):
        with real(*args, **kwargs) as bar:
            steps: list[float] = []
            advance = bar.advance

            def counted(amount: float = 1.0) -> None:
                steps.append(amount)
                advance(amount)

            bar.advance = counted  # type: ignore[method-assign]
            seen.append((bar, steps))
            yield bar

    monkeypatch.setattr(_progress, "progress", recording)
    return seen


def data(n=N, k=3, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)).astype(np.float32)
    y = rng.integers(0, k, size=n)
    return z, y


def write(folder, kind, n=N):
    """A file of n rows of logits and labels in the format ``kind``; its path."""
    z, y = data(n)
    path = folder / f"preds-{kind}.{kind.split('-')[0]}"
    if kind == "npz":
        np.savez(path, logits=z, labels=y)
    elif kind == "npy":  # a structured array: one record per row
        rec = np.zeros(n, dtype=[("logits", "f4", (3,)), ("labels", "i8")])
        rec["logits"], rec["labels"] = z, y
        np.save(path, rec)
    elif kind == "npy-fortran":
        path = folder / "logits.npy"
        np.save(path, np.asfortranarray(z))
    elif kind == "csv":
        lines = ["labels,logit_0,logit_1,logit_2"]
        lines += [",".join([str(y[i]), *(repr(float(v)) for v in z[i])]) for i in range(n)]
        path.write_text("\n".join(lines) + "\n")
    elif kind == "parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        table = pa.table({"logit_0": z[:, 0], "logit_1": z[:, 1], "logit_2": z[:, 2],
                          "labels": y})
        pq.write_table(table, path, row_group_size=300)
    return path


KINDS = ["npz", "npy", "npy-fortran", "csv", "parquet"]
KNOWN = {"npz": True, "npy": True, "npy-fortran": True, "csv": False, "parquet": True}


def specs(kind):
    return {"logits": "*"} if kind == "npy-fortran" else {}


@pytest.fixture
def small_steps(monkeypatch):
    """Whole reads advance in several steps (a few rows each) instead of one."""
    from trueprob.io import csv_format, npy_format, parquet_format

    monkeypatch.setattr(npy_format, "CHUNK_BYTES", 12 * 128)  # 128 rows of 3 float32
    monkeypatch.setattr(csv_format, "PROGRESS_ROWS", 128)
    monkeypatch.setattr(parquet_format, "_WHOLE_BATCH", 128)


# ----------------------------------------------------------------------------- file reads
@pytest.mark.parametrize("kind", KINDS)
def test_a_large_read_advances_one_bar_to_exactly_its_rows(tmp_path, monkeypatch, bars,
                                                           small_steps, kind):
    path = write(tmp_path, kind)
    fake = terminal(monkeypatch)
    read_inputs(path, **specs(kind))
    assert len(bars) == 1
    bar, steps = bars[0]
    assert bar.active
    assert bar.completed == N and sum(steps) == N
    assert bar.description == f"reading {path.name}" or bar.description.startswith(
        f"reading {path.name}: ")
    if KNOWN[kind]:
        assert bar.total == N
        assert f"{N}/{N}" in fake.getvalue()  # the last frame drawn: all rows read
        if kind != "npy-fortran":  # no row layout on disk: read in one piece
            assert len(steps) > 1 and max(steps) <= 300
    else:  # CSV: length unknown, a spinner once past LARGE_ROWS, the count in its text
        assert bar.total is None
        assert steps[0] > LARGE  # opened only past the threshold, with the rows so far
        assert f"{N:,} rows" in fake.getvalue()


@pytest.mark.parametrize("kind", ["npz", "npy", "csv", "parquet"])
def test_batched_reads_advance_by_each_batch(tmp_path, monkeypatch, bars, kind):
    path = write(tmp_path, kind)
    terminal(monkeypatch)
    sizes = [len(b["labels"]) for b in iter_inputs(path, batch_rows=128)]
    bar, steps = bars[0]
    assert sum(sizes) == N and bar.completed == N
    if KNOWN[kind]:
        assert steps == sizes if kind != "parquet" else sum(steps) == N
    else:
        assert sum(steps) == N


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_small_files_quiet_and_pipes_draw_nothing(tmp_path, monkeypatch, bars, kind):
    monkeypatch.setattr(_progress, "LARGE_ROWS", LARGE)
    (tmp_path / "small").mkdir()
    small = write(tmp_path / "small", kind, n=50)
    large = write(tmp_path, kind)
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    read_inputs(small)  # 50 rows: not long work
    read_inputs(large, quiet=True)  # asked for quiet
    assert fake.getvalue() == ""
    pipe = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", pipe)
    read_inputs(large)
    assert pipe.getvalue() == ""
    assert bars and not any(bar.active for bar, _ in bars)
    assert [bar.completed for bar, _ in bars] == [N, N]  # counted, never drawn


@pytest.mark.parametrize("kind", KINDS)
def test_results_are_identical_with_and_without_the_bar(tmp_path, monkeypatch, small_steps,
                                                        kind):
    path = write(tmp_path, kind)
    quiet = read_inputs(path, **specs(kind), quiet=True)
    quiet_batches = list(iter_inputs(path, **specs(kind), batch_rows=77, quiet=True))
    fake = terminal(monkeypatch)
    shown = read_inputs(path, **specs(kind))
    shown_batches = list(iter_inputs(path, **specs(kind), batch_rows=77))
    assert fake.getvalue() != ""  # the bar was drawn
    z, y = data()
    assert quiet.keys() == shown.keys()
    for key in quiet:
        assert quiet[key].dtype == shown[key].dtype
        np.testing.assert_array_equal(quiet[key], shown[key])
    np.testing.assert_array_equal(shown["logits"], z)  # what was written
    if kind != "npy-fortran":  # (a plain .npy holds the logits only)
        np.testing.assert_array_equal(shown["labels"], y)
    assert len(quiet_batches) == len(shown_batches) == -(-N // 77)
    for a, b in zip(quiet_batches, shown_batches, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_read_columns_shows_the_bar_and_quiet_is_checked(tmp_path, monkeypatch, bars):
    path = write(tmp_path, "npz")
    terminal(monkeypatch)
    cols = read_columns(path, {"scores": ("logits", True), "y": ("labels", False)})
    assert bars[0][0].completed == N and cols["scores"].shape == (N, 3)
    with pytest.raises(TypeError, match=r"quiet must be True, False or None; got 'yes'"):
        read_inputs(path, quiet="yes")  # type: ignore[arg-type]


def test_count_rows_reads_headers_and_metadata_only(tmp_path):
    from trueprob.io.read import count_rows

    assert count_rows(write(tmp_path, "npz")) == N
    assert count_rows(write(tmp_path, "npy")) == N
    assert count_rows(write(tmp_path, "parquet")) == N
    assert count_rows(write(tmp_path, "csv")) is None  # only reading it all would tell


def test_a_bar_inside_a_bar_is_silent(monkeypatch):
    fake = FakeTerminal()
    with _progress.progress("outer", total=2, stream=fake) as outer:
        with _progress.progress("inner", total=2, stream=fake) as inner:
            inner.advance(2)
        outer.advance(2)
    assert outer.active and not inner.active and inner.completed == 2
    assert "outer" in fake.getvalue() and "inner" not in fake.getvalue()
    with _progress.progress("after", total=1, stream=fake) as again:  # the slot is free
        assert again.active


def test_restart_starts_a_pass_from_zero():
    fake = FakeTerminal()
    with _progress.progress("pass 1", total=4, stream=fake) as bar:
        bar.advance(4)
        bar.restart("pass 2", total=4)
        assert (bar.completed, bar.description) == (0.0, "pass 2")
        bar.advance(3)
    assert "pass 2" in fake.getvalue() and "3/4" in fake.getvalue()


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def cli_terminal(monkeypatch):
    """The CLI's stderr (CliRunner's capture) counts as a terminal; LARGE_ROWS is small."""
    monkeypatch.setattr(_progress, "LARGE_ROWS", LARGE)
    monkeypatch.setattr(_progress, "progress_enabled",
                        lambda *, quiet=None, stream=None: not quiet)


def _invoke(args):
    from trueprob.cli import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result

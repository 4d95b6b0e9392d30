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
    """Every ProgressBar opened, with its events: the amounts it was advanced by, and
    ``("restart", description, total)`` when a new pass began."""
    seen: list[tuple[_progress.ProgressBar, list]] = []
    real = _progress.progress

    @contextlib.contextmanager
    def recording(*args, **kwargs):
        with real(*args, **kwargs) as bar:
            events: list = []
            advance, restart = bar.advance, bar.restart

            def counted(amount: float = 1.0) -> None:
                events.append(amount)
                advance(amount)

            def restarted(description: str, *, total: float | None = None) -> None:
                events.append(("restart", description, total))
                restart(description, total=total)

            bar.advance = counted  # type: ignore[method-assign]
            bar.restart = restarted  # type: ignore[method-assign]
            seen.append((bar, events))
            yield bar

    monkeypatch.setattr(_progress, "progress", recording)
    return seen


def passes(events: list) -> list[tuple[str, float | None, float]]:
    """(description, total, rows advanced) of each pass recorded on a bar."""
    out: list[tuple[str, float | None, float]] = []
    for e in events:
        if isinstance(e, tuple):
            out.append((e[1], e[2], 0.0))
        else:
            name, total, done = out[-1]
            out[-1] = (name, total, done + e)
    return out


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


def test_cli_reads_show_a_bar_and_q_suppresses_it(tmp_path, cli_terminal):
    path = write(tmp_path, "npz")
    z = data()[0]
    tmp = tmp_path / "t"
    tmp.mkdir()
    reg = tmp / "reg.csv"
    reg.write_text("obs,mu,sd\n" + "".join(f"{v!r},0.0,1.0\n" for v in z[:, 0].tolist()))
    commands = [  # (arguments, the file whose reading is shown, as a bar or a spinner)
        (["evaluate", str(path), "--format", "json"], f"{path.name} ", f"{N}/{N}"),
        (["decompose", str(path), "--format", "json"], f"{path.name} ", f"{N}/{N}"),
        (["fit", "-m", "temperature", str(path), "-o", str(tmp / "cal{}.json")],
         f"{path.name} ", f"{N}/{N}"),
        (["compare", "--fit", str(path), "--eval", str(path), "--methods", "temperature"],
         f"{path.name} ", f"{N}/{N}"),
        (["evaluate", str(reg), "--task", "regression", "--observed", "obs", "--mean", "mu",
          "--std", "sd", "--format", "json"], "reg.csv: ", f"{N:,} rows"),
    ]
    for i, (args, name, count) in enumerate(commands):
        args = [a.format(i) for a in args]
        drawn = _invoke(args).stderr
        assert f"reading {name}" in drawn and count in drawn, args
        args = [a.replace("cal", "calq") for a in args]
        silent = _invoke([*args, "-q"]).stderr
        assert "\x1b[" not in silent and "reading" not in silent, args
    out = tmp / "applied.npz"
    assert "reading" in _invoke(["apply", str(tmp / "cal2.json"), str(path), "-o",
                                 str(out)]).stderr
    assert "reading" not in _invoke(["apply", str(tmp / "cal2.json"), str(path), "-o",
                                     str(out), "--force", "-q"]).stderr


def test_cli_streamed_runs_name_their_passes_and_q_suppresses_them(tmp_path, cli_terminal):
    folder = tmp_path / "shards"
    folder.mkdir()
    for i in range(3):
        np.savez(folder / f"part-{i}.npz", logits=data(seed=i)[0] * 3, labels=data(seed=i)[1])
    for args, words in ((["evaluate", str(folder), "--binning", "mass", "--format", "json"],
                         ["pass 1: equal-mass edges", "last pass: evaluating"]),
                        (["fit", "-m", "temperature", str(folder), "-o",
                          str(tmp_path / "t.json")], ["temperature: first pass",
                                                      "temperature: Halley pass 1"])):
        drawn = _invoke(args).stderr
        for word in words:
            assert word in drawn, (word, drawn[-400:])
        assert f"{3 * N}/{3 * N}" in drawn
        args = [a.replace("t.json", "tq.json") for a in args]
        assert "\x1b[" not in _invoke([*args, "-q"]).stderr


# ----------------------------------------------------------------------------- streaming
def _shards(folder, kind, n_files=3):
    folder.mkdir()
    for i in range(n_files):
        sub = folder / f"{i}"
        sub.mkdir()
        src = write(sub, kind)
        src.rename(folder / f"part-{i}{src.suffix}")
        sub.rmdir()
    return folder


def _calibrated(n, k, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    y = np.minimum((q.cumsum(1) < rng.random((n, 1))).sum(1), k - 1)
    return z, y


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_streamed_evaluation_counts_every_row_of_every_pass(tmp_path, monkeypatch, bars,
                                                            kind):
    from trueprob import streaming

    folder = _shards(tmp_path / "ds", kind)
    quiet = streaming.evaluate_path(folder, binning="mass", batch_rows=128, quiet=True)
    fake = terminal(monkeypatch)
    shown = streaming.evaluate_path(folder, binning="mass", batch_rows=128)
    assert shown.to_dict() == quiet.to_dict()
    ((_, events),) = [(b, e) for b, e in bars if b.active]
    runs = passes(events)
    total = 3 * N if kind == "npz" else None  # CSV files do not know their rows
    assert [name for name, _, _ in runs] == [
        f"pass {i}: equal-mass edges" for i in range(1, len(runs))] + ["last pass: evaluating"]
    assert len(runs) >= 2
    assert all(t == total and done == 3 * N for _, t, done in runs)
    drawn = fake.getvalue()
    assert (f"{3 * N}/{3 * N}" if total else f"{3 * N:,} rows") in drawn
    assert "reading" not in drawn  # the per-file bars stay silent inside a pass


def test_streamed_fits_name_the_halley_and_newton_passes(tmp_path, monkeypatch, bars):
    from trueprob import streaming
    from trueprob.calibrators.temperature import TemperatureScaling

    z, y = _calibrated(2 * N, 3, 1)
    np.savez(tmp_path / "val.npz", logits=2.5 * z, labels=y)
    terminal(monkeypatch)
    ts = streaming.fit_temperature_path(tmp_path / "val.npz", batch_rows=300)
    assert ts.temperature_ == pytest.approx(TemperatureScaling().fit(
        y, logits=2.5 * z).temperature_, rel=1e-12)
    runs = passes([e for b, e in bars if b.active][-1])
    assert runs[0] == ("temperature: first pass (T = 1)", 2 * N, 2 * N)
    assert [r[0] for r in runs[1:]] == [f"temperature: Halley pass {i}"
                                        for i in range(1, len(runs))]
    assert len(runs) == ts.n_iter_ and all(done == 2 * N for _, _, done in runs)
    vs = streaming.fit_vector_scaling_path(tmp_path / "val.npz", batch_rows=300)
    runs = passes([e for b, e in bars if b.active][-1])
    assert len(runs) == vs.n_iter_
    assert [r[0] for r in runs] == [f"vector scaling: Newton pass {i}"
                                    for i in range(1, len(runs) + 1)]
    assert all(done == 2 * N for _, _, done in runs)


# ----------------------------------------------------------------------------- Dask
def test_dask_bar_counts_every_partition_of_every_pass(tmp_path, monkeypatch, bars):
    pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    import trueprob.dask as tpd
    from trueprob import streaming

    folder = tmp_path / "ds"
    folder.mkdir()
    z, y = _calibrated(5 * N, 4, 2)
    for i in range(5):  # 5 files: 5 partitions
        np.savez(folder / f"part-{i}.npz", logits=2 * z[i * N:(i + 1) * N],
                 labels=y[i * N:(i + 1) * N])
    want = streaming.evaluate_path(folder, binning="mass", quiet=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        quiet = tpd.evaluate(folder, binning="mass", client=client, quiet=True)
        fake = terminal(monkeypatch)
        shown = tpd.evaluate(folder, binning="mass", client=client)
        ts = tpd.fit_temperature(folder, client=client)
    assert shown.to_dict() == quiet.to_dict()
    assert shown.ece == pytest.approx(want.ece, rel=1e-12)
    drawn = [(b, e) for b, e in bars if b.active]
    assert len(drawn) == 2
    runs = passes(drawn[0][1])
    assert [r[0] for r in runs[:-1]] == [f"pass {i}: equal-mass edges"
                                         for i in range(1, len(runs))]
    assert runs[-1][0] == "last pass: evaluating"
    assert all(t == 5 and done == 5 for _, t, done in runs)
    runs = passes(drawn[1][1])
    assert len(runs) == ts.n_iter_ >= 2  # first pass + Halley passes
    assert runs[1][0] == "temperature: Halley pass 1"
    assert all(t == 5 and done == 5 for _, t, done in runs)
    assert "5/5" in fake.getvalue()
    # dask's local scheduler (no client): counted by a callback; dask arrays: one per block
    bars.clear()
    blocks = tpd.evaluate(da.from_array(y, chunks=700),
                          logits=da.from_array(z, chunks=(700, 4)))
    ((_, events),) = [(b, e) for b, e in bars if b.active]
    assert passes(events) == [("evaluating", 8, 8)]  # ceil(5000 / 700) blocks
    assert blocks.accuracy == pytest.approx(float(np.mean(z.argmax(1) == y)))

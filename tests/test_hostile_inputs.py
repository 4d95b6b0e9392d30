"""Hostile inputs (issue 16): every CLI command and the public functions, fed what an
attacker, a broken disk or a newcomer gives them.

Each case asserts what a user must see: exit status 1 (bad data) or 2 (bad usage), a message
naming the argument, file or row, no traceback (in process: no exception escapes click; in a
real process: none on stderr), no partial output, no file created by unpickling (a marker
written by ``__reduce__``), and for valid extremes equality with a float64 reference computed
here by another route. Concurrent writers and ``kill -9`` mid-write are real processes
(``fork``). Every case is counted in :data:`OUTCOMES`; the last test prints the table of
case family x outcome (``pytest -s``) and checks that at least 200 cases ran.

Hypothesis runs derandomized (seeded) with fixed example counts, so the count is the same on
every run.
"""

from __future__ import annotations

import functools
import io
import json
import math
import multiprocessing
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp as scipy_logsumexp
from scipy.special import softmax as scipy_softmax

import trueprob
from trueprob.cli import main
from trueprob.io import atomic_write

#: (family, outcome) -> number of cases
OUTCOMES: Counter[tuple[str, str]] = Counter()
FAMILIES = ("corrupt file", "pickle marker", "tampered calibrator", "usage", "api invalid",
            "api extreme", "concurrent writers", "kill -9")


def seeded(examples: int) -> settings:
    """Derandomized (the same examples on every run), a fixed number of them."""
    return settings(derandomize=True, deadline=None, database=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


REPO = Path(__file__).resolve().parents[1]


def record(family: str, outcome: str) -> None:
    assert family in FAMILIES, family
    OUTCOMES[(family, outcome)] += 1


# ------------------------------------------------------------------------------- helpers
class Marker:
    """Unpickling this creates the file ``path``: proof that a reader executed pickle code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def check_refused(result: Result, code: int, pattern: str, family: str, *,
                  absent: tuple[Path, ...] = (), marker: Path | None = None) -> None:
    """Exit ``code``, ``pattern`` in stderr, nothing escaped click, outputs absent."""
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    assert escaped is None, f"an exception escaped the CLI: {escaped!r}"
    text = result.stderr + result.stdout
    assert "Traceback" not in text
    assert result.exit_code == code, (result.exit_code, text)
    assert re.search(pattern, result.stderr), (pattern, result.stderr)
    for path in absent:
        assert not path.exists(), f"partial output {path} left behind"
    if marker is not None:
        assert not marker.exists(), "a pickle was executed"
    record(family, f"exit {code}")


def softmax_reference(z: np.ndarray) -> np.ndarray:
    return scipy_softmax(np.asarray(z, np.float64), axis=1)


def reference_numbers(y: np.ndarray, z: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """NLL, Brier and ECE by another route than trueprob's: -log q_y as the logsumexp of
    z - z_y (shift by the label's logit, not the maximum), q by scipy's softmax, the ECE by
    an explicit loop over SPEC.md's bins."""
    z = np.asarray(z, np.float64)
    rows = np.arange(z.shape[0])
    nll = float(np.mean(scipy_logsumexp(z - z[rows, y][:, None], axis=1)))
    q = softmax_reference(z)
    onehot = np.zeros_like(q)
    onehot[rows, y] = 1.0
    brier = float(np.mean(np.sum((q - onehot) ** 2, axis=1)))
    conf = q.max(axis=1)
    correct = (q.argmax(axis=1) == y).astype(float)
    ece = 0.0
    for b in range(n_bins):
        idx = np.clip(np.ceil(n_bins * conf) - 1, 0, n_bins - 1) == b
        if idx.any():
            ece += idx.mean() * abs(correct[idx].mean() - conf[idx].mean())
    return {"nll": nll, "brier": brier, "ece": ece}


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid calibration set, a test set and a fitted calibrator, plus hostile files."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(16)
    z = rng.normal(size=(300, 4)) * 2
    q = softmax_reference(z)
    y = (q.cumsum(1) < rng.random(300)[:, None]).sum(1).clip(0, 3)
    good = root / "val.npz"
    np.savez(good, logits=z, labels=y)
    np.savez(root / "test.npz", logits=z[::-1].copy(), labels=y[::-1].copy())
    cal = root / "cal.json"
    assert cli("fit", "-m", "temperature", good, "-o", cal, "--quiet").exit_code == 0
    marker = root / "MARKER"
    out: dict[str, Path] = {"root": root, "val": good, "test": root / "test.npz", "cal": cal,
                            "marker": marker}

    def put(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)
        out[name] = root / name

    raw = good.read_bytes()
    put("empty.npz", b"")
    put("random.npz", rng.bytes(4096))
    put("truncated.npz", raw[: len(raw) // 2])
    put("zip-no-members.npz", _zip({}))
    # an .npy header that claims shape (10**12, 4) in a file of 128 bytes
    bomb = _npy_header("<f8", (10**12, 4))
    put("bomb.npy", bomb)
    put("bomb.npz", _zip({"logits.npy": bomb, "labels.npy": _npy_header("<i8", (10**12,))}))
    put("fortran-bomb.npy", _npy_header("<f8", (2**40, 2**40)))
    put("bad-header.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'xx'}\n")
    put("dtype-str.npz", _npz({"logits": np.array([["a", "b"]]), "labels": np.array([0])}))
    # pickles: an object array (.npy, .npz member) and a torch file holding an object
    buf = io.BytesIO()
    np.save(buf, np.array([Marker(str(marker)), 1], dtype=object), allow_pickle=True)
    put("object.npy", buf.getvalue())
    member = io.BytesIO()
    np.save(member, np.array([Marker(str(marker))], dtype=object), allow_pickle=True)
    put("object.npz", _zip({"logits.npy": member.getvalue(), "labels.npy": _npy(np.zeros(1))}))
    put("pickle.pt", _torch_pickle(marker))
    put("random.pt", rng.bytes(2048))
    put("garbage.csv", bytes(range(256)) * 4)
    put("empty.csv", b"")
    put("numbers-header.csv", b"1,2,3\n4,5,6\n")
    put("text-logit.csv", b"logit_0,logit_1,labels\n0.5,0.1,0\nhigh,0.2,1\n")
    put("bigint.csv", b"logit_0,logit_1,labels\n0.5,0.1,0\n0.2,0.3,99999999999999999999\n")
    put("nan.csv", b"logit_0,logit_1,logit_2,logit_3,labels\n0.5,0.1,0,0,0\n"
                   b"nan,0.3,0,0,1\n0.1,0.1,0.2,0.3,3\n")
    put("random.parquet", b"PAR1" + rng.bytes(1024) + b"PAR1")
    return out


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (118 - len(header) - 10) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _torch_pickle(marker: Path) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"logits": Marker(str(marker)), "labels": torch.zeros(2)}, buf)
    return buf.getvalue()


# -------------------------------------------------------------- corrupt and bomb files
CORRUPT = {
    "empty.npz": r"empty\.npz",
    "random.npz": r"random\.npz",
    "truncated.npz": r"truncated\.npz",
    "zip-no-members.npz": r"zip-no-members\.npz",
    "bomb.npy": r"bomb\.npy",
    "bomb.npz": r"bomb\.npz",
    "fortran-bomb.npy": r"fortran-bomb\.npy",
    "bad-header.npy": r"bad-header\.npy",
    "dtype-str.npz": r"logits",
    "random.pt": r"random\.pt",
    "garbage.csv": r"garbage\.csv",
    "empty.csv": r"empty\.csv",
    "numbers-header.csv": r"numbers-header\.csv",
    "text-logit.csv": r"text-logit\.csv: column 'logit_0', line 3: 'high' is not a number",
    "bigint.csv": r"line 3: '99999999999999999999' is beyond the range",
    "nan.csv": r"nan\.csv.*logits must be finite.*row 1",
    "random.parquet": r"random\.parquet",
}
#: the CLI commands that read a data file, with the outputs they would write
READERS = ("evaluate", "fit", "apply", "decompose", "report", "compare-fit", "compare-eval")


def _reader_args(command: str, data: Path, files: dict[str, Path],
                 out: Path) -> tuple[list[Any], tuple[Path, ...]]:
    if command == "evaluate":
        return ["evaluate", data], ()
    if command == "fit":
        return ["fit", "-m", "temperature", data, "-o", out, "--quiet"], (out,)
    if command == "apply":
        out = out.with_suffix(".npz")
        return ["apply", files["cal"], data, "-o", out, "--quiet"], (out,)
    if command == "decompose":
        return ["decompose", data], ()
    if command == "report":
        out = out.with_suffix(".html")
        return ["report", data, "-o", out, "--quiet"], (out,)
    if command == "compare-fit":
        return ["compare", "--fit", data, "--eval", files["test"], "--methods",
                "temperature", "--quiet"], ()
    return ["compare", "--fit", files["val"], "--eval", data, "--methods", "temperature",
            "--quiet"], ()


@pytest.mark.parametrize("command", READERS)
@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_files(files: dict[str, Path], name: str, command: str) -> None:
    out = files["root"] / f"out-{command}-{name}.json"
    args, outputs = _reader_args(command, files[name], files, out)
    result = cli(*args)
    check_refused(result, 1, CORRUPT[name], "corrupt file", absent=outputs)


@pytest.mark.parametrize("command", READERS)
@pytest.mark.parametrize("name", ["object.npy", "object.npz", "pickle.pt"])
def test_pickles_are_never_executed(files: dict[str, Path], name: str, command: str) -> None:
    out = files["root"] / f"out-{command}-{name}.json"
    args, outputs = _reader_args(command, files[name], files, out)
    result = cli(*args)
    check_refused(result, 1, re.escape(name), "pickle marker", absent=outputs,
                  marker=files["marker"])


def test_a_real_process_prints_no_traceback(files: dict[str, Path]) -> None:
    """The installed entry point, in a process of its own: stderr holds one line, no
    traceback, for a header bomb and for a pickle."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for name in ("bomb.npz", "object.npy"):
        command = [sys.executable, "-c", "from trueprob.cli import main; main()"]
        proc = subprocess.run([*command, "evaluate", str(files[name])],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert name in proc.stderr
        assert not files["marker"].exists()
        record("corrupt file" if name == "bomb.npz" else "pickle marker", "exit 1 (process)")


# --------------------------------------------------------------- tampered calibrators
def _calibrator_variants(cal: Path) -> dict[str, tuple[Any, str]]:
    """name -> (file content: dict, or str/bytes written as is; expected message)."""
    base = json.loads(cal.read_text())

    def with_fitted(**changes: Any) -> dict[str, Any]:
        out = json.loads(json.dumps(base))
        out["fitted"].update(changes)
        return out

    def with_top(**changes: Any) -> dict[str, Any]:
        out = json.loads(json.dumps(base))
        out.update(changes)
        return out

    no_fitted = json.loads(json.dumps(base))
    del no_fitted["fitted"]["temperature_"]
    return {
        "deep": ("[" * 100_000 + "]" * 100_000, r"deep\.json: not a calibrator file: JSON "
                                                 r"nested too deeply"),
        "deep-object": ('{"a":' * 50_000 + "1" + "}" * 50_000, r"deep-object\.json"),
        "version-negative": (with_top(format_version=-5),
                             r"format_version must be an integer from 1 to 1; got -5"),
        "version-future": (with_top(format_version=99), r"format version 99, newer"),
        "version-text": (with_top(format_version="1"), r"format_version must be an integer"),
        "temperature-subnormal": (with_fitted(temperature_=1e-320),
                                  r"fitted\.temperature_ is 1e-320, a subnormal number"),
        "temperature-negative": (with_fitted(temperature_=-2.0), r"temperature_ must be"),
        "temperature-nan": (with_fitted(temperature_="nan"), r"temperature_ must be"),
        "temperature-text": (with_fitted(temperature_="hot"), r"temperature_ must be"),
        "class-code": (with_top(**{"class": "__import__('os').system"}),
                       r"unknown calibrator class"),
        "class-module": (with_top(**{"class": "trueprob.io.atomic_write"}),
                         r"unknown calibrator class"),
        "extra-key": (with_top(payload="x"), r"unexpected fields \['payload'\]"),
        "missing-fitted": (no_fitted, r"fitted must have exactly the keys"),
        "params-bogus": (with_top(params={"exec": "rm -rf /"}), r"params must have exactly"),
        "array-shape-lie": (with_fitted(temperature_={"dtype": "float64", "shape": [10**12],
                                                      "data": []}),
                            r"data must be a list of 1000000000000 numbers"),
        "not-json": ("temperature = 1.5", r"not a valid calibrator JSON file"),
        "binary": (b"\x80\x04\x95" + bytes(range(200)), r"not a valid calibrator JSON file"),
        "pickle": (None, r"not a valid calibrator JSON file"),
        "format-other": (with_top(format="sklearn.pickle"), r"not a trueprob calibrator file"),
        "list": ([1, 2, 3], r"must be a JSON object"),
    }


@pytest.mark.parametrize("how", ["apply", "evaluate"])
def test_tampered_calibrators(files: dict[str, Path], how: str) -> None:
    import pickle

    for name, (content, message) in _calibrator_variants(files["cal"]).items():
        path = files["root"] / f"{name}.json"
        if content is None:
            path.write_bytes(pickle.dumps(Marker(str(files["marker"]))))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        out = files["root"] / f"applied-{name}.npz"
        if how == "apply":
            result = cli("apply", path, files["test"], "-o", out, "--quiet")
        else:
            result = cli("evaluate", files["test"], "--calibrator", path)
        check_refused(result, 1, message, "tampered calibrator", absent=(out,),
                      marker=files["marker"])


def test_tampered_calibrators_in_python(files: dict[str, Path]) -> None:
    """``trueprob.calibrators.load`` raises CalibratorFormatError (a ValueError) naming the
    file, never RecursionError or a pickle."""
    from trueprob.calibrators import CalibratorFormatError, load

    for name, (content, message) in _calibrator_variants(files["cal"]).items():
        path = files["root"] / f"py-{name}.json"
        if content is None:
            import pickle

            path.write_bytes(pickle.dumps(Marker(str(files["marker"]))))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        with pytest.raises(CalibratorFormatError, match=message):
            load(path)
        assert not files["marker"].exists()
        record("tampered calibrator", "CalibratorFormatError")


def test_subnormal_parameters_refused_diagnostics_kept(files: dict[str, Path]) -> None:
    """A subnormal map parameter is refused wherever it sits (a nested Platt coefficient
    too); a subnormal log loss (a diagnostic: what a near-certain right prediction costs)
    loads."""
    from trueprob.calibrators import CalibratorFormatError, OneVsRest, PlattScaling, load

    data = json.loads(files["cal"].read_text())
    data["fitted"]["nll_after_"] = 5e-324
    path = files["root"] / "tiny-nll.json"
    path.write_text(json.dumps(data))
    assert load(path).nll_after_ == 5e-324  # type: ignore[attr-defined]
    rng = np.random.default_rng(5)
    z = rng.normal(size=(60, 3))
    ovr = OneVsRest(base=PlattScaling()).fit(rng.integers(0, 3, 60), logits=z)
    saved = ovr.to_dict()
    saved["fitted"]["calibrators_"][1]["fitted"]["coef_"] = -1e-310
    path = files["root"] / "ovr-subnormal.json"
    path.write_text(json.dumps(saved))
    with pytest.raises(CalibratorFormatError, match=r"ovr-subnormal\.json: "
                       r"fitted\.calibrators_\.fitted\.coef_ is -1e-310, a subnormal"):
        load(path)
    record("tampered calibrator", "CalibratorFormatError")


def test_a_temperature_of_zero_is_blamed_on_the_calibrator(files: dict[str, Path]) -> None:
    """T = 0 is what ``fit`` gives on a separable set (a documented limit, so ``load``
    accepts it); applying it gives -inf log-probabilities, and the message says why instead
    of blaming the data file's logits or ``clip=0`` alone."""
    data = json.loads(files["cal"].read_text())
    data["fitted"]["temperature_"] = 0.0
    path = files["root"] / "t-zero.json"
    path.write_text(json.dumps(data))
    out = files["root"] / "t-zero.npz"
    for args in (("apply", path, files["test"], "-o", out, "--quiet"),
                 ("evaluate", files["test"], "--calibrator", path)):
        result = cli(*args)
        check_refused(result, 1, r"t-zero\.json: the calibrated log-probabilities are not "
                                 r"finite .*temperature_ = 0", "tampered calibrator",
                      absent=(out,))


# ----------------------------------------------------------------------------- usage
def _usage_cases(files: dict[str, Path]) -> list[tuple[list[Any], str]]:
    val, root = files["val"], files["root"]
    existing = root / "exists.json"
    existing.write_text("{}")
    return [
        (["evaluate", val, "--bins", "0"], r"--bins"),
        (["evaluate", val, "--format", "xml"], r"--format"),
        (["evaluate", root / "missing.npz"], r"missing\.npz"),
        (["evaluate", val, "--unit", "furlongs"], r"--unit"),
        (["evaluate", val, "--no-such-option"], r"no-such-option"),
        (["evaluate", val, "--classes", "a,b", "--stream"], r"--classes: for one file"),
        (["evaluate", val, "--pos-label", "x"], r"'x' is not a number"),
        (["fit", "-m", "temperature", val, "-o", existing], r"exists\.json"),
        (["fit", "-m", "no-such-method", val, "-o", root / "f.json"], r"--method"),
        (["fit", val], r"Missing option"),
        (["apply", files["cal"], val, "-o", root / "out.txt"], r"--output must be an \.npz"),
        (["apply", files["cal"], val, "-o", existing], r"exists"),
        (["decompose", val, "--score", "spherical"], r"--score"),
        (["report", val, "--format", "pdf", "-o", root / "r.pdf"], r"--format"),
        (["compare", "--eval", val], r"--fit"),
        (["demo", "--no-such-option"], r"no-such-option"),
        (["no-such-command"], r"No such command"),
    ]


def test_usage_errors_exit_2(files: dict[str, Path]) -> None:
    for args, message in _usage_cases(files):
        result = cli(*args)
        check_refused(result, 2, message, "usage")


def test_every_command_has_help() -> None:
    for command in ("evaluate", "fit", "apply", "compare", "decompose", "report", "demo"):
        result = cli(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout, command
        record("usage", "help exit 0")


def test_dask_bogus_is_a_usage_error(files: dict[str, Path]) -> None:
    out = files["root"] / "dask.json"
    for args in (("evaluate", files["val"], "--dask", "bogus"),
                 ("fit", "-m", "temperature", files["val"], "-o", out, "--dask", "local:0")):
        check_refused(cli(*args), 2, r"Invalid value for '--dask': must be 'local' or "
                                     r"'local:N' with N >= 1 workers; got '(bogus|local:0)'",
                      "usage", absent=(out,))


# --------------------------------------------------------------------------- python API
def _metric_functions() -> dict[str, Any]:
    from trueprob import metrics

    return {
        "evaluate": trueprob.evaluate,
        "top_label_ece": metrics.top_label_ece,
        "classwise_ece": metrics.classwise_ece,
        "log_loss": metrics.log_loss,
        "brier_score": metrics.brier_score,
        "smooth_ece": metrics.smooth_ece,
        "max_calibration_error": metrics.max_calibration_error,
        "decompose": trueprob.decompose,
        "bootstrap": functools.partial(trueprob.bootstrap, n_replicates=10, random_state=0,
                                       quiet=True),
        "consistency_test": functools.partial(trueprob.consistency_test, n_resamples=10,
                                              random_state=0, quiet=True),
        "skce": functools.partial(metrics.skce, n_resamples=10, random_state=0),
    }


#: corruption -> (what to change, the message that names the argument)
def _corrupt(kind: str, y: np.ndarray, z: np.ndarray,
             row: int) -> tuple[Any, dict[str, Any], str]:
    kw: dict[str, Any] = {"logits": z.copy()}
    y = y.copy()
    if kind == "nan-logit":
        kw["logits"][row, 0] = np.nan
        return y, kw, rf"logits must be finite .*row {row}"
    if kind == "inf-prob":
        q = softmax_reference(z)
        q[row, 1] = np.inf
        return y, {"probs": q}, rf"probs must be finite .*row {row}"
    if kind == "prob-row-sum":
        q = softmax_reference(z)
        q[row] *= 0.5
        return y, {"probs": q}, rf"probs rows must sum to 1 .*row {row}"
    if kind == "negative-weight":
        w = np.ones(len(y))
        w[row] = -1.0
        return y, {**kw, "sample_weight": w}, rf"sample_weight must be >= 0; row {row}"
    if kind == "nan-weight":
        w = np.ones(len(y))
        w[row] = np.nan
        return y, {**kw, "sample_weight": w}, rf"sample_weight must be finite .*row {row}"
    if kind == "label-too-large":
        y = y.astype(np.float64)
        y[row] = 1e20
        return y, kw, rf"labels must be in 0\.\.{z.shape[1] - 1} .*row {row} is 1e\+20"
    if kind == "label-uint64":
        y = y.astype(np.uint64)
        y[row] = 2**63 + 5
        return y, kw, rf"row {row} is 9223372036854775813"
    if kind == "label-negative":
        y[row] = -3
        return y, kw, rf"labels must be in .*row {row} is -3"
    if kind == "label-fraction":
        y = y.astype(np.float64)
        y[row] = 0.5
        return y, kw, rf"labels must be integer class indices; row {row} is 0\.5"
    if kind == "label-text":
        return y.astype(str), kw, r"labels must be integer class indices; got dtype <U"
    if kind == "rows-mismatch":
        return y[:-1], kw, r"labels has \d+ rows but logits has \d+"
    if kind == "weights-2d":
        return y, {**kw, "sample_weight": np.ones((len(y), 2))}, r"sample_weight must be 1-D"
    if kind == "logits-int":
        return y, {"logits": np.ones_like(z, dtype=np.int64)}, \
            r"logits must be a floating-point array"
    if kind == "logits-3d":
        return y, {"logits": z[:, :, None]}, r"logits must be \(N, K\)"
    if kind == "one-column":
        return y, {"logits": z[:, :1]}, r"K must be >= 2"
    if kind == "empty":
        return y[:0], {"logits": z[:0]}, r"logits is empty"
    if kind == "object":
        return y, {"logits": np.array([[object()] * z.shape[1]] * len(y))}, \
            r"logits must be a (numeric|real floating-point) array"
    if kind == "weights-too-small-for-a-state":
        # valid for one-shot calls (rescaled); refused by a state filled batch by batch
        return y, {**kw, "sample_weight": np.full(len(y), 1e-300)}, \
            r"sample_weight values are too small"
    raise AssertionError(kind)


CORRUPTIONS = ("nan-logit", "inf-prob", "prob-row-sum", "negative-weight", "nan-weight",
               "label-too-large", "label-uint64", "label-negative", "label-fraction",
               "label-text", "rows-mismatch", "weights-2d", "logits-int", "logits-3d",
               "one-column", "empty", "object")


@seeded(160)
@given(kind=st.sampled_from(CORRUPTIONS),
       function=st.sampled_from(sorted(_metric_functions())),
       n=st.integers(2, 40), k=st.integers(2, 6), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_invalid_inputs_name_the_argument(kind: str, function: str, n: int, k: int,
                                          seed: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3
    y = rng.integers(0, k, n)
    row = data.draw(st.integers(0, n - 1), label="row")
    labels, kw, message = _corrupt(kind, y, z, row)
    if function == "skce" and "sample_weight" in kw:
        message = r"unexpected keyword argument 'sample_weight'"  # skce takes no weights
    with pytest.raises((ValueError, TypeError), match=message):
        _metric_functions()[function](labels, **kw)
    record("api invalid", "ValueError/TypeError naming it")


def test_a_state_refuses_weights_it_cannot_sum() -> None:
    from trueprob.stats import EvaluationStats

    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(10, 3)), rng.integers(0, 3, 10)
    for w in (1e-300, 5e-324, 1e300, 1e308):
        with pytest.raises(ValueError, match=r"sample_weight values are too (small|large)"):
            EvaluationStats(3).update(y, logits=z, sample_weight=np.full(10, w))
        record("api invalid", "ValueError/TypeError naming it")


def test_bool_labels_and_empty_classes() -> None:
    z = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"labels row 0 is 'a', which is not one of classes"):
        trueprob.evaluate(np.array(["a", "b", "b"]), logits=z, classes=["x", "b"])
    with pytest.raises(ValueError, match=r"classes must name at least 2 classes"):
        trueprob.evaluate(np.array(["a", "b", "b"]), logits=z, classes=["a"])
    with pytest.raises(ValueError, match=r"every row has labels == ignore_index=-100"):
        trueprob.evaluate(np.full(3, -100), logits=z, ignore_index=-100)
    with pytest.raises(ValueError, match=r"pos_label='maybe' is not among the labels"):
        trueprob.evaluate(np.array(["no", "yes", "no"]), probs=np.full(3, 0.5),
                          pos_label="maybe")
    for _ in range(4):
        record("api invalid", "ValueError/TypeError naming it")


# ---------------------------------------------------------------- valid extremes (float64)
@seeded(40)
@given(n=st.integers(1, 60), k=st.integers(2, 8), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1e-8, 1.0, 30.0, 1e3, 1e8, 1e15]),
       offset=st.sampled_from([0.0, -1e6, 1e12, 1e15]),
       weight=st.sampled_from([None, 5e-324, 1e-300, 1e-100, 1.0, 1e100, 1e200, 1e300,
                               1e308]))
def test_extreme_valid_inputs_equal_a_float64_reference(n: int, k: int, seed: int,
                                                        scale: float, offset: float,
                                                        weight: float | None) -> None:
    rng = np.random.default_rng(seed)
    # integer-valued logits keep z + offset exact in float64 (offset <= 1e15 < 2**53)
    z = np.round(rng.normal(size=(n, k)) * scale) + offset
    y = rng.integers(0, k, n)
    ref = reference_numbers(y, z)
    w = None if weight is None else np.full(n, weight)
    r = trueprob.evaluate(y, logits=z, sample_weight=w)
    assert math.isclose(r.nll, ref["nll"], rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(r.brier, ref["brier"], rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(r.ece, ref["ece"], rel_tol=1e-9, abs_tol=1e-12)
    if weight is not None:
        plain = trueprob.evaluate(y, logits=z)
        assert r.smooth_ece == pytest.approx(plain.smooth_ece, rel=1e-9, abs=1e-12)
        assert r.mce == pytest.approx(plain.mce, rel=1e-9, abs=1e-12)
    record("api extreme", "equal to float64 reference")


def test_issue_16_reproducers() -> None:
    """The reproducers of issue 16 #1 and #9, each against its float64 value."""
    rng = np.random.default_rng(40)
    y, z = rng.integers(0, 4, 40), rng.normal(size=(40, 4)) * 2
    plain = trueprob.evaluate(y, logits=z)
    for w in (5e-324, 1e200, 1e300, 1e308):
        r = trueprob.evaluate(y, logits=z, sample_weight=np.full(40, w))
        for name in ("nll", "brier", "ece", "mce", "smooth_ece", "ks"):
            assert getattr(r, name) == pytest.approx(getattr(plain, name), rel=1e-12), name
        record("api extreme", "equal to float64 reference")
    # decompose from float32 logits whose top confidence rounds to 1.0: -log(1 - c) is 18
    # nats + log1p(e^-18), the log loss of row 1; evaluate agrees (12.98 bits)
    z32 = np.array([[9, -9], [9, -9]], np.float32)
    y2 = np.array([0, 1])
    expected = (np.log1p(np.exp(-18.0)) + 18.0 + np.log1p(np.exp(-18.0))) / 2 / np.log(2)
    d = trueprob.decompose(y2, logits=z32)
    assert d.score == pytest.approx(expected, rel=1e-12)
    assert trueprob.evaluate(y2, logits=z32, unit="bits").nll == pytest.approx(expected)
    assert round(d.score, 2) == 12.98
    # n_bins=1 on float32 returns (it looped for ever), also classwise
    q32 = np.array([[0.3, 0.7], [0.6, 0.4]], np.float32)
    r1 = trueprob.evaluate(np.array([1, 1]), probs=q32, n_bins=1)
    # one bin: accuracy 1/2 (row 0 right, row 1 wrong), confidence (0.7 + 0.6) / 2
    assert r1.ece == pytest.approx(abs(0.5 - (0.7 + 0.6) / 2), rel=1e-6)
    # classwise, one bin: class 0 |0.45 - 0| and class 1 |0.55 - 1|, mean 0.45
    assert trueprob.metrics.classwise_ece(np.array([1, 1]), probs=q32, n_bins=1) == \
        pytest.approx(0.45, rel=1e-6)
    # huge logits: (m - z_y) + log s
    assert trueprob.evaluate(np.array([0]), logits=np.array([[1e30, 1e30, -1e30]])).nll == \
        pytest.approx(math.log(2), rel=1e-15)
    assert trueprob.evaluate(np.array([1]), logits=np.array([[1e16, 1e16 + 2, 0]])).nll == \
        pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-12)
    for _ in range(6):
        record("api extreme", "equal to float64 reference")


def test_low_precision_rows_that_do_not_sum_to_one_are_refused() -> None:
    torch = pytest.importorskip("torch")
    # rows sum to 0.5; the old tolerance 8 K eps was 0.625 for bfloat16 at K = 10
    half = torch.full((3, 10), 0.05, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"probs rows must sum to 1 \(tolerance 0\.01 for "
                                         r"bfloat16 with K=10\); row 0 sums to 0\.500"):
        trueprob.evaluate(torch.tensor([0, 1, 0]), probs=half)
    zero = np.zeros((2, 1000), np.float16)
    with pytest.raises(ValueError, match=r"probs rows must sum to 1 \(tolerance 0\.01 .*row 0"):
        trueprob.evaluate(np.array([0, 1]), probs=zero)
    ok = np.full((2, 1000), 1e-3, np.float16)  # float16(1e-3) * 1000 = 1.0004: accepted
    assert trueprob.evaluate(np.array([0, 1]), probs=ok).nll == \
        pytest.approx(-math.log(float(np.float16(1e-3))), rel=1e-12)
    for _ in range(3):
        record("api invalid" if _ < 2 else "api extreme",
               "ValueError/TypeError naming it" if _ < 2 else "equal to float64 reference")


# ------------------------------------------------------------------ concurrent writers
def _run_cli(args: list[str]) -> None:
    """Child process: run the CLI as the console script would (its exit status)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.dup2(devnull, 1)
    try:
        main.main(args, standalone_mode=True)
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    os._exit(0)


def test_concurrent_writers_one_wins(files: dict[str, Path]) -> None:
    """Two processes write the same -o without --force: exactly one exits 0, the other 2,
    and the file is one complete calibrator."""
    from trueprob.calibrators import load

    ctx = multiprocessing.get_context("fork")
    for attempt in range(6):
        out = files["root"] / f"race-{attempt}.json"
        method = "temperature" if attempt % 2 == 0 else "isotonic"
        args = ["fit", "-m", method, str(files["val"]), "-o", str(out), "--quiet"]
        procs = [ctx.Process(target=_run_cli, args=(args,)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        codes = sorted(p.exitcode for p in procs)
        assert codes == [0, 2], codes
        load(out)
        leftovers = [p.name for p in out.parent.glob(f".{out.name}.*")]
        assert not leftovers, leftovers
        record("concurrent writers", "one exit 0, one exit 2")


# ------------------------------------------------------------------------ kill -9
def _slow_write(path: str, payload: bytes, pieces: int) -> None:
    with atomic_write(path, force=True) as fh:
        step = len(payload) // pieces
        for i in range(pieces):
            fh.write(payload[i * step:(i + 1) * step])
            time.sleep(0.002)
        fh.write(payload[pieces * step:])
    os._exit(0)


def test_kill_9_mid_write_leaves_nothing_or_everything(files: dict[str, Path]) -> None:
    """SIGKILL at seeded moments inside the write window: the target is absent or complete,
    and the next write removes the dead writer's temporary file."""
    ctx = multiprocessing.get_context("fork")
    rng = np.random.default_rng(9)
    payload = rng.bytes(1 << 16)
    for attempt in range(12):
        target = files["root"] / f"killed-{attempt}.bin"
        proc = ctx.Process(target=_slow_write, args=(str(target), payload, 40))
        proc.start()
        time.sleep(float(rng.uniform(0.0, 0.12)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        if target.exists():
            assert target.read_bytes() == payload, "a partial file is visible"
            outcome = "complete"
        else:
            outcome = "absent"
        # the next write cleans the dead writer's temporary file
        with atomic_write(target, force=True) as fh:
            fh.write(b"next")
        assert target.read_bytes() == b"next"
        assert not list(target.parent.glob(f".{target.name}.*.tmp"))
        record("kill -9", f"output {outcome}, temp cleaned")


def test_kill_9_during_a_cli_fit(files: dict[str, Path]) -> None:
    """The CLI's own writes: a fit killed at any moment leaves no file or a loadable one."""
    from trueprob.calibrators import load

    ctx = multiprocessing.get_context("fork")
    rng = np.random.default_rng(99)
    for attempt in range(6):
        out = files["root"] / f"fit-killed-{attempt}.json"
        args = ["fit", "-m", "temperature", str(files["val"]), "-o", str(out), "--quiet"]
        proc = ctx.Process(target=_run_cli, args=(args,))
        proc.start()
        time.sleep(float(rng.uniform(0.0, 0.05)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        if out.exists():
            load(out)
            outcome = "complete"
        else:
            outcome = "absent"
        with atomic_write(out, force=True) as fh:  # the next write cleans up after the dead
            fh.write(b"{}")
        assert not list(out.parent.glob(f".{out.name}.*.tmp"))
        record("kill -9", f"output {outcome}, temp cleaned")


# --------------------------------------------------------------------------- the table
def test_outcome_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the case family x outcome table; at least 200 cases when every family ran."""
    total = sum(OUTCOMES.values())
    lines = [f"hostile inputs: {total} cases", f"{'family':<22} {'outcome':<34} cases"]
    for (family, outcome), count in sorted(OUTCOMES.items()):
        lines.append(f"{family:<22} {outcome:<34} {count}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    families = {family for family, _ in OUTCOMES}
    if families == set(FAMILIES):
        assert total >= 200, total

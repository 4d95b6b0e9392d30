"""A worked example that needs no download: an over-confident network on scikit-learn's digits.

:func:`train_demo_model` trains a small neural network (scikit-learn's ``MLPClassifier``: one
hidden layer of 100 ReLU units) by minimising the cross-entropy (log loss) on 30 % of the 1797
8x8 digit images, with almost no weight penalty and the L-BFGS solver run to convergence. It
fits its training set perfectly, with a training log loss near 1e-4 nats, and to get there its
logits grow large; on new images it is then *over-confident*: its mean confidence (about 0.99)
is well above its accuracy (about 0.95), and its log loss on the test split is several times what
a single temperature fitted on the validation split achieves. This is the situation of Guo et
al. 2017 ("On calibration of modern neural networks") in miniature, which makes it the example
for the rest of trueprob: measure (``trueprob evaluate``), explain, and fix (temperature scaling
fitted on ``val.npz``, checked on ``test.npz``). :func:`write_demo_report` does all three and
writes the HTML report (:mod:`trueprob.report.html`).

Needs the ``[demo]`` extra (scikit-learn) and, for the HTML report, the ``[plot]`` extra
(matplotlib); both are imported only when a function here runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: the network: hidden layer sizes, L2 penalty and solver (see the module docstring)
HIDDEN_LAYERS = (100,)
ALPHA = 1e-4
SOLVER = "lbfgs"
MAX_ITER = 2000
#: share of the rows used for training; the rest is split evenly into validation and test
TRAIN_SHARE = 0.3
#: largest |softmax(logits) - predict_proba| accepted as "the same probabilities"
PROBA_TOLERANCE = 1e-12


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError as exc:
        raise ImportError(
            "the demo trains a scikit-learn network, and scikit-learn is not installed; "
            "install it with: pip install 'trueprob[demo]'"
        ) from exc
    return sklearn


@dataclass(frozen=True)
class DemoData:
    """The demo network and the logits of its validation and test rows.

    ``*_features`` are the images (8x8 pixels scaled to [0, 1], flattened to 64 values),
    ``*_logits`` the network's logits z_i (float64, (N, 10)) and ``*_labels`` the digits y_i.
    ``train_accuracy`` and ``train_loss`` (the final training objective in nats: mean log loss
    plus the small L2 penalty) show how completely the network fits its training rows.
    """

    seed: int
    model: Any
    n_train: int
    train_accuracy: float
    train_loss: float
    val_features: np.ndarray
    val_logits: np.ndarray
    val_labels: np.ndarray
    test_features: np.ndarray
    test_logits: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class DemoFiles:
    """Paths of the demo's files: the predictions :func:`write_demo_files` writes (``val``,
    ``test``) and what :func:`write_demo_report` writes (``calibrator``: the temperature
    fitted on ``val``; ``report``: the HTML report on ``test``; ``markdown``: the Markdown
    report, written instead of the HTML one when matplotlib is missing)."""

    val: Path
    test: Path
    calibrator: Path
    report: Path
    markdown: Path

    @property
    def predictions(self) -> tuple[Path, Path]:
        return self.val, self.test


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
    "logistic": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "identity": lambda a: a,
}


def network_logits(model: Any, features: np.ndarray, /) -> np.ndarray:
    """Logits of a fitted multiclass ``MLPClassifier``, from its public weights.

    With layers l = 1..L, weights W_l = ``coefs_[l-1]`` and biases b_l = ``intercepts_[l-1]``:
    h_0 = x, h_l = act(h_{l-1} W_l + b_l) for the hidden layers l < L, and the logits are
    z = h_{L-1} W_L + b_L, the input of the output softmax, so that
    ``predict_proba(x) = softmax(z)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPClassifier
    >>> from scipy.special import softmax
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    >>> model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5000, solver="lbfgs",
    ...                       random_state=0).fit(x, y)
    >>> z = network_logits(model, x)
    >>> z.shape
    (60, 3)
    >>> bool(np.abs(softmax(z, axis=1) - model.predict_proba(x)).max() < 1e-12)
    True
    """
    if getattr(model, "out_activation_", None) != "softmax":
        raise ValueError(
            f"model must be a fitted multiclass MLPClassifier (softmax output); got output "
            f"activation {getattr(model, 'out_activation_', None)!r}"
        )
    act = _ACTIVATIONS.get(model.activation)
    if act is None:
        raise ValueError(f"model.activation must be one of {sorted(_ACTIVATIONS)}; got "
                         f"{model.activation!r}")
    h = np.asarray(features, dtype=np.float64)
    layers = list(zip(model.coefs_, model.intercepts_, strict=True))
    for weights, bias in layers[:-1]:
        h = act(h @ weights + bias)
    weights, bias = layers[-1]
    return np.asarray(h @ weights + bias)


def train_demo_model(seed: int = 0) -> DemoData:
    """Train the demo network on the digits and return the logits of its held-out rows.

    The 1797 digits are split, stratified by class and seeded by ``seed``, into train (30 %),
    validation and test (35 % each); an ``MLPClassifier`` (one hidden layer of 100 ReLU
    units, L2 penalty ``alpha=1e-4``, L-BFGS, ``random_state=seed``) minimises the log loss
    (1/n) sum_i -log q_{i, y_i} on the training rows. BLAS runs on one thread, so the result
    does not depend on the number of cores (and a busy machine is not slowed further).

    The logits come from :func:`network_logits`; a RuntimeError is raised if their softmax
    differs from the network's own ``predict_proba`` by more than 1e-12.

    Examples
    --------
    >>> data = train_demo_model(seed=0)
    >>> data.val_logits.shape, data.test_logits.shape
    ((629, 10), (629, 10))
    >>> data.train_accuracy
    1.0
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32); got {seed!r}")
    seed = int(seed)
    _sklearn()
    from scipy.special import softmax
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    images, digits = load_digits(return_X_y=True)
    x = images / 16.0  # pixel intensities 0..16 -> [0, 1]
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, digits, train_size=TRAIN_SHARE, stratify=digits, random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, train_size=0.5, stratify=y_rest, random_state=seed)
    model = MLPClassifier(hidden_layer_sizes=HIDDEN_LAYERS, alpha=ALPHA, solver=SOLVER,
                          max_iter=MAX_ITER, random_state=seed)
    with threadpool_limits(limits=1):
        model.fit(x_train, y_train)
        val_logits = network_logits(model, x_val)
        test_logits = network_logits(model, x_test)
        for xs, zs in ((x_val, val_logits), (x_test, test_logits)):
            gap = float(np.abs(softmax(zs, axis=1) - model.predict_proba(xs)).max())
            if not gap <= PROBA_TOLERANCE:
                raise RuntimeError(
                    f"softmax of the computed logits differs from predict_proba by {gap:.3g} "
                    f"(> {PROBA_TOLERANCE:g}); this scikit-learn's MLPClassifier is not the "
                    f"network network_logits assumes"
                )
        train_accuracy = float(np.mean(model.predict(x_train) == y_train))
    return DemoData(
        seed=seed, model=model, n_train=len(y_train), train_accuracy=train_accuracy,
        train_loss=float(model.loss_),
        val_features=x_val, val_logits=val_logits, val_labels=y_val.astype(np.int64),
        test_features=x_test, test_logits=test_logits, test_labels=y_test.astype(np.int64),
    )


def demo_files(out_dir: str | os.PathLike[str], /) -> DemoFiles:
    """Where the demo writes: ``val.npz`` and ``test.npz`` (:func:`write_demo_files`),
    ``cal.json`` and ``report.html`` or ``report.md`` (:func:`write_demo_report`), in
    ``out_dir``.

    Examples
    --------
    >>> demo_files("trueprob-demo").test.as_posix()
    'trueprob-demo/test.npz'
    >>> demo_files("trueprob-demo").report.as_posix()
    'trueprob-demo/report.html'
    """
    out = Path(out_dir)
    return DemoFiles(val=out / "val.npz", test=out / "test.npz", calibrator=out / "cal.json",
                     report=out / "report.html", markdown=out / "report.md")


def write_demo_files(data: DemoData, out_dir: str | os.PathLike[str], /, *,
                     force: bool = False) -> DemoFiles:
    """Write ``val.npz`` and ``test.npz`` (arrays ``logits`` and ``labels``) into ``out_dir``.

    Each file is written atomically (a temporary file renamed into place). Without ``force``
    nothing is written if either file exists (FileExistsError).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from trueprob.io import read_inputs
    >>> data = train_demo_model(seed=0)
    >>> files = write_demo_files(data, tempfile.mkdtemp())
    >>> arrays = read_inputs(files.test)
    >>> bool(np.array_equal(arrays["logits"], data.test_logits))
    True
    """
    from trueprob.io import atomic_write

    files = demo_files(out_dir)
    if not force:
        for path in files.predictions:
            if path.exists():
                raise FileExistsError(f"{path} exists; pass force=True (CLI: --force) to "
                                      f"replace it")
    for path, logits, labels in ((files.val, data.val_logits, data.val_labels),
                                 (files.test, data.test_logits, data.test_labels)):
        with atomic_write(path, force=True) as fh:
            np.savez(fh, logits=logits, labels=labels)
    return files


@dataclass(frozen=True)
class DemoReport:
    """What :func:`write_demo_report` made: the fitted temperature scaling, the analysis of
    the test split (uncalibrated and calibrated) and the path of the report written."""

    calibrator: Any
    analysis: Any
    path: Path
    html: bool


def write_demo_report(data: DemoData, out_dir: str | os.PathLike[str], /, *,
                      force: bool = False, quiet: bool = True,
                      n_replicates: int = 200) -> DemoReport:
    """Fit temperature scaling on the validation split and report on the test split.

    :class:`~trueprob.calibrators.TemperatureScaling` is fitted by maximum likelihood on
    ``val`` (q = softmax(z / T), the NLL convex in 1/T) and saved to ``cal.json``; the test
    split is analysed before and after it (:func:`trueprob.report.verdict.analyze`) and the
    report is written to ``report.html`` (with matplotlib) or ``report.md`` (without).
    Every file is written atomically; without ``force`` an existing file is not replaced
    (FileExistsError) and nothing is written.

    Examples
    --------
    >>> import tempfile
    >>> data = train_demo_model(seed=0)
    >>> made = write_demo_report(data, tempfile.mkdtemp(), n_replicates=20)
    >>> made.calibrator.temperature_ > 2, made.path.name in ("report.html", "report.md")
    (True, True)
    """
    from trueprob.calibrators import TemperatureScaling
    from trueprob.io import atomic_write
    from trueprob.report.html import render_html, render_markdown
    from trueprob.report.verdict import analyze

    files = demo_files(out_dir)
    try:
        import matplotlib  # noqa: F401
        html = True
    except ImportError:
        html = False
    target = files.report if html else files.markdown
    if not force:
        for path in (files.calibrator, target):
            if path.exists():
                raise FileExistsError(f"{path} exists; pass force=True (CLI: --force) to "
                                      f"replace it")
    calibrator = TemperatureScaling().fit(data.val_labels, logits=data.val_logits)
    # the validation split is also the calibration set of the recommendation ("What to do"):
    # every map of `trueprob compare` fitted on it and scored on the test split
    analysis = analyze(data.test_labels, logits=data.test_logits, calibrator=calibrator,
                       calibration_source=f"fitted on {files.val.name}",
                       source=str(files.test), n_replicates=n_replicates, quiet=quiet,
                       binning="mass",  # the confidences crowd near 1: equal-mass bins
                       recalibration_set={"labels": data.val_labels,
                                          "logits": data.val_logits},
                       recalibration_source=str(files.val))
    text = render_html(analysis) if html else render_markdown(analysis)
    with atomic_write(files.calibrator, force=True) as fh:
        fh.write(calibrator.to_json().encode())
    with atomic_write(target, force=True) as fh:
        fh.write(text.encode("utf-8"))
    return DemoReport(calibrator, analysis, target, html)


#: the demo's record of what it wrote (name -> sha256), so that a second run replaces its
#: own unmodified outputs and nothing else
MANIFEST = ".trueprob-demo.json"


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def own_outputs(out_dir: str | os.PathLike[str], /) -> set[Path]:
    """The files in ``out_dir`` that an earlier demo run wrote and nobody has changed since.

    A re-run may replace these without ``force``; any other existing file is left alone.
    """
    import json

    out = Path(out_dir)
    try:
        recorded = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(recorded, dict):
        return set()
    own = set()
    for name, digest in recorded.items():
        path = out / str(name)
        if Path(str(name)).name == str(name) and path.is_file() and _sha256(path) == digest:
            own.add(path)
    return own


def record_outputs(out_dir: str | os.PathLike[str], paths: list[Path], /) -> None:
    """Write the manifest of :func:`own_outputs` for the files the demo just wrote."""
    import json

    from trueprob.io import atomic_write

    out = Path(out_dir)
    manifest = {p.name: _sha256(p) for p in paths if p.is_file()}
    with atomic_write(out / MANIFEST, force=True, mode="w") as fh:
        json.dump(manifest, fh, indent=1)

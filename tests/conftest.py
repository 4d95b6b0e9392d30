"""Shared fixtures: the real data in ../shared/data (or $TRUEPROB_DATA) and a seeded RNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    """The shared data folder, or None when it is absent."""
    env = os.environ.get("TRUEPROB_DATA")
    if env:  # an explicit location wins: if it is wrong, the data tests skip (no fallback)
        path = Path(env)
        return path.resolve() if (path / "mukhoti2020-cifar-logits").is_dir() else None
    path = REPO.parent / "shared" / "data"
    return path.resolve() if (path / "mukhoti2020-cifar-logits").is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a reason when it is absent."""
    path = data_dir()
    if path is None:
        pytest.skip("real model outputs not found: set TRUEPROB_DATA or provide ../shared/data")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261129)


def _synthetic_logits(rng: np.random.Generator, n: int, k: int, *, scale: float = 1.0,
                      dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Logits z and labels y ~ Cat(softmax(z)) (calibrated), returned as (z * scale, y)."""
    z = rng.normal(size=(n, k)) * 2.0
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    u = rng.random(n)[:, None]
    y = np.minimum((q.cumsum(1) < u).sum(1), k - 1)
    return (z * scale).astype(dtype), y.astype(np.int64)


@pytest.fixture
def synthetic_logits():
    """``synthetic_logits(rng, n, k, scale=1.0, dtype=np.float64) -> (logits, labels)``."""
    return _synthetic_logits


@pytest.fixture(scope="session")
def optional_data() -> Path | None:
    """Path of ../shared/data, or None (for tests that mix synthetic and real cases)."""
    return data_dir()

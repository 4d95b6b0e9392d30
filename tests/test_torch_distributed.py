"""CalibrationAccumulator.all_reduce under torch.distributed: two processes, gloo, localhost.

Each rank adds its own shard of the rows in random batches (rank 1 also a batch of soft
targets), then the states are summed with ``all_reduce``; every rank's Report must equal the
one-shot numpy result on all rows. A second accumulator sees rows on rank 1 only: rank 0 joins
the reduction with a zero state. Where torchmetrics is installed, ``TorchmetricsCalibration``
is synchronised by torchmetrics itself in the same processes and must give the same Report.
"""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

import trueprob  # noqa: E402

pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[1]
N, K, WORLD = 3000, 6, 2


def make_data(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, K)) * 2.0
    y = rng.integers(0, K, size=N)
    w = rng.gamma(2.0, size=N)
    soft = rng.dirichlet(np.ones(K), size=200)
    return {"z": z, "y": y, "w": w, "soft": soft, "zsoft": rng.normal(size=(200, K))}


def shard(rank: int) -> np.ndarray:
    """Rows of each rank: uneven, interleaved shards."""
    rows = np.arange(N)
    return rows[(rows % 5 < 2) if rank == 0 else (rows % 5 >= 2)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, seed: int, out_dir: str) -> None:
    from trueprob.torch import CalibrationAccumulator

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        d = make_data(seed)
        rows = shard(rank)
        rng = np.random.default_rng(seed + rank)
        acc = CalibrationAccumulator(K, device="cpu")
        start = 0
        while start < rows.size:
            part = rows[start:start + int(rng.integers(1, 400))]
            start += part.size
            acc.update(torch.from_numpy(d["z"][part]), torch.from_numpy(d["y"][part]),
                       sample_weight=torch.from_numpy(d["w"][part]))
        if rank == 1:
            acc.update(torch.from_numpy(d["zsoft"]), targets=torch.from_numpy(d["soft"]))
        # a second accumulator that sees no rows on rank 0 joins with a zero state
        only_one = CalibrationAccumulator(K)
        if rank == 1:
            only_one.update(torch.from_numpy(d["z"]), torch.from_numpy(d["y"]))
        acc.all_reduce()
        only_one.all_reduce()
        result: dict[str, Any] = {"acc": acc.compute().to_dict(),
                                  "only_one": only_one.compute().to_dict()}
        try:
            from trueprob.torch import TorchmetricsCalibration
        except ImportError:
            pass
        else:
            metric = TorchmetricsCalibration(K)
            metric.update(torch.from_numpy(d["z"][rows]), torch.from_numpy(d["y"][rows]),
                          torch.from_numpy(d["w"][rows]))
            result["torchmetrics"] = metric.report().to_dict()
            result["torchmetrics_scalars"] = metric.compute()
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def assert_dicts_close(got: Any, want: Any, path: str = "") -> None:
    if isinstance(want, dict):
        # the accumulator keeps no smooth-ECE grid: compare everything else
        want = {k: v for k, v in want.items() if k != "smooth_ece"}
        got = {k: v for k, v in got.items() if k != "smooth_ece"}
        assert got.keys() == want.keys(), path
        for k in want:
            assert_dicts_close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_dicts_close(a, b, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, float), path
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (path, got, want)
    else:
        assert got == want, path


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_all_reduce_over_two_gloo_processes_equals_one_shot(tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    # the spawned processes import this module by name: put the repository root on the
    # path they inherit
    monkeypatch.syspath_prepend(str(REPO))
    seed = 20261129
    mp.spawn(_worker, args=(_free_port(), seed, str(tmp_path)), nprocs=WORLD, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    d = make_data(seed)
    z = np.concatenate([d["z"], d["zsoft"]])
    w = np.concatenate([d["w"], np.ones(200)])
    labelled = trueprob.EvaluationStats(K).update(d["y"], logits=d["z"], sample_weight=d["w"])
    soft = trueprob.EvaluationStats(K).update(targets=d["soft"], logits=d["zsoft"])
    want = labelled.merge(soft).finalize().to_dict()
    assert z.shape[0] == want["n"] and math.isclose(want["weight"], w.sum())
    for r in results:  # every rank holds the sum after all_reduce
        assert_dicts_close(r["acc"], want)
        assert_dicts_close(r["only_one"], trueprob.evaluate(d["y"], logits=d["z"]).to_dict())
    if "torchmetrics" in results[0]:
        full = trueprob.evaluate(d["y"], logits=d["z"], sample_weight=d["w"]).to_dict()
        for r in results:
            assert_dicts_close(r["torchmetrics"], full)
            assert_dicts_close(r["torchmetrics_scalars"],
                               {k: v for k, v in full.items() if isinstance(v, float)
                                and k != "weight"})

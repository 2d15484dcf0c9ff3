"""Several processes with torchrun: the engine under DistributedDataParallel (gloo, CPU).

The tests start ``torchrun --standalone --nproc_per_node=2`` in a subprocess, on
this file (``python tests/test_distributed.py tiny|stage1 OUT ...``, the ``__main__``
block below) or on ``-m matsed_lite`` (the command line a user types).

* 2 processes reach the weights of 1 process for the same global batch (a tiny
  regression model, MSE, Adam, EMA teacher, validation);
* a smoke-preset stage 1 (mixed batches, EMA teacher, PSDS validation) under 2
  processes writes one log line per epoch, and ``--resume`` after an interruption
  gives the same weights as the uninterrupted 2-process run, bit for bit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.training.distributed import (DistributedContext, ShardedBatchSampler,
                                              check_split, rank_slice)
from matsed_lite.training.engine import EpochSampler, fit
from matsed_lite.training.finetune import finetune
from matsed_lite.training.mixed_batches import MixedBatches

ROOT = Path(__file__).resolve().parents[1]
HAS_GLOO = dist.is_available() and dist.is_gloo_available()
# `-m "not distributed"` leaves them out; without gloo they skip themselves.
pytestmark = pytest.mark.distributed
needs_gloo = pytest.mark.skipif(not HAS_GLOO, reason="torch.distributed with gloo is unavailable")
# 2 processes vs 1: the gradient of a global batch is (g0 + g1) / 2 instead of the
# mean over all its items, which differs by float32 rounding only; after 12 Adam
# steps the weights differed by at most 6e-8 (measured); the bound leaves room.
ATOL, RTOL = 1e-5, 1e-4


def _torchrun(*args, timeout=240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *map(str, args)]
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


# ---------------------------------------------------------------------------
# the work the processes do (also run in-process for the 1-process reference)

def tiny_run(out_dir, epochs: int = 2) -> None:
    """A 2-layer regression net, 48 items, global batch 8, Adam, EMA teacher, validation."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 6, generator=g)
    y = torch.tanh(x @ torch.randn(6, 2, generator=g))
    data = torch.utils.data.TensorDataset(x, y)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))

    def step(net, batch, state):
        xb, yb = batch
        return nn.functional.mse_loss(net(xb), yb), {}

    def evaluate(net, state):
        return {"val/mse": nn.functional.mse_loss(net(x), y)}

    res = fit(model, step, data, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
              epochs=epochs, out_dir=out_dir, evaluate=evaluate, batch_size=8, seed=3,
              ema_max_alpha=0.9, monitor="val/mse", mode="min", progress=False, device="cpu")
    if res["state"].dist.is_main:
        torch.save({"model": model.state_dict(), "teacher": res["state"].teacher.state_dict(),
                    "history": res["history"]}, Path(out_dir) / "final.pt")


def stage1_run(data_root, out_dir, stop_after_epoch=None) -> None:
    finetune(data_root, "smoke", out_dir, stage=1, epochs=2, progress=False, device="cpu",
             stop_after_epoch=stop_after_epoch)


# ---------------------------------------------------------------------------
# pieces, in one process

def test_single_process_context_does_nothing():
    ctx = DistributedContext.from_env({})
    assert not ctx.enabled and ctx.is_main and ctx.seed(7) == 7
    m = nn.Linear(2, 2)
    assert ctx.wrap(m) is m and ctx.broadcast({"a": 1}) == {"a": 1}
    assert ctx.mean({"x": 2.0}) == {"x": 2.0} and ctx.all_true(True)


def test_sharded_batches_partition_the_global_batches():
    sampler = EpochSampler(22, seed=5)
    whole = torch.utils.data.BatchSampler(sampler, batch_size=8, drop_last=False)
    parts = [ShardedBatchSampler(torch.utils.data.BatchSampler(EpochSampler(22, seed=5), 8, False),
                                 r, 2) for r in range(2)]
    for p in parts + [whole]:
        p.set_epoch(4) if hasattr(p, "set_epoch") else p.sampler.set_epoch(4)
    glob, a, b = list(whole), list(parts[0]), list(parts[1])
    assert len(a) == len(b) == len(parts[0]) == 3
    for full, x, y in zip(glob, a, b):
        assert x + y == full and len(x) == len(y)
    # a last batch of 6 splits 3 + 3 (above); one of 1 item is dropped on every rank
    short = [ShardedBatchSampler(torch.utils.data.BatchSampler(EpochSampler(17), 8, False), r, 2)
             for r in range(2)]
    assert [len(list(s)) for s in short] == [len(s) for s in short] == [2, 2]
    with pytest.raises(ValueError, match="batch size 6 does not split over 4 processes"):
        check_split(6, 4)


def test_mixed_batches_shard_each_kind():
    class Store:
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

    mb = MixedBatches({"strong": Store(8), "weak": Store(6), "unlabeled": Store(8)},
                      {"strong": 4, "weak": 2, "unlabeled": 4}, seed=0)
    p0, p1 = mb.shard(0, 2), mb.shard(1, 2)
    assert p0.plan(1) == mb.plan(1) and len(p0) == len(mb)
    # the two ranks' slices of every batch split each kind's clips between them
    for entry in mb.plan(1):
        for kind, idx in entry.items():
            a = rank_slice(idx, p0.rank, p0.world_size)
            b = rank_slice(idx, p1.rank, p1.world_size)
            assert a + b == list(idx) and len(a) == len(b) == len(idx) // 2, kind
    with pytest.raises(ValueError, match="batch_weak 2 does not split over 4 processes"):
        mb.shard(0, 4)


# ---------------------------------------------------------------------------
# 2 processes

@needs_gloo
def test_two_processes_reach_the_weights_of_one(tmp_path):
    tiny_run(tmp_path / "one")
    _torchrun(Path(__file__), "tiny", tmp_path / "two")
    one = torch.load(tmp_path / "one" / "final.pt")
    two = torch.load(tmp_path / "two" / "final.pt")
    for which in ("model", "teacher"):
        for k in one[which]:
            torch.testing.assert_close(two[which][k], one[which][k], atol=ATOL, rtol=RTOL)
    assert not torch.equal(one["model"]["0.weight"], two["teacher"]["0.weight"])
    # validation ran once and every rank logged the same best epoch; one line per epoch
    log = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in log] == [1, 2]
    for h1, h2 in zip(one["history"], two["history"]):
        assert h1["best_epoch"] == h2["best_epoch"]
        assert abs(h1["val/mse"] - h2["val/mse"]) < 1e-5
        assert abs(h1["train/loss"] - h2["train/loss"]) < 1e-5


def _metrics(run) -> list[dict]:
    """The log's lines without the times."""
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k}
            for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist_data")
    generate_desed_lite(root, "smoke", seed=0, progress=False,
                        splits=["synth_train", "weak", "unlabeled", "validation"])
    return root


@needs_gloo
def test_stage1_under_torchrun_logs_once_and_resumes_exactly(data_root, tmp_path):
    # the command a user types: torchrun ... -m matsed_lite finetune
    cli = ["-m", "matsed_lite", "finetune", "--stage", "1", "--data", data_root,
           "--preset", "smoke", "--epochs", "2", "--seed", "0"]
    res = _torchrun(*cli, "--out", tmp_path / "a")
    assert res.stdout.count("stage 1:") == 1, res.stdout  # the summary printed once
    log = (tmp_path / "a" / "log.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in log] == [1, 2]
    # interrupted after epoch 1, then `--resume` from the command line
    _torchrun(Path(__file__), "stage1", data_root, tmp_path / "b", 1)
    assert len((tmp_path / "b" / "log.jsonl").read_text().splitlines()) == 1
    _torchrun(*cli, "--out", tmp_path / "b", "--resume")
    assert _metrics(tmp_path / "b") == _metrics(tmp_path / "a")
    a = torch.load(tmp_path / "a" / "last.pt")
    b = torch.load(tmp_path / "b" / "last.pt")
    assert len(a["rng_ranks"]) == 2
    for which in ("model", "teacher"):
        assert all(torch.equal(a[which][k], b[which][k]) for k in a[which]), which


if __name__ == "__main__":  # a torchrun worker: tiny OUT | stage1 DATA OUT [STOP_AFTER]
    what, *rest = sys.argv[1:]
    if what == "tiny":
        tiny_run(rest[0])
    else:
        stage1_run(rest[0], rest[1], int(rest[2]) if len(rest) > 2 else None)

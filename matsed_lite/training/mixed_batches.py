"""Mixed batches: every fine-tuning step sees strong, weak and unlabeled clips in fixed shares (chapter 05).

An epoch is one pass over the strong split (or ``min_steps`` steps if that is more:
the cpu preset's floor for folders smaller than DESED-lite); the other pools wrap
around. The whole plan of an epoch depends only on (seed, epoch), so a resumed
run sees exactly the batches the uninterrupted one would have seen.
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch

from ..data.stores import collate_items
from ..data.layout import KINDS
from .data_order import epoch_seed
from .distributed import check_split, rank_slice


def epoch_steps(n_strong: int, batch_strong: int, min_steps: int = 0) -> int:
    """Steps in one epoch: a pass over the strong clips, at least one and at least ``min_steps``."""
    return max(1, int(n_strong) // int(batch_strong), int(min_steps))


def mixed_batch_plan(pool_sizes: Mapping[str, int], batch_sizes: Mapping[str, int],
                     seed: int, epoch: int, min_steps: int = 0) -> list[dict[str, list[int]]]:
    """Indices of every batch of one epoch: [{"strong": [...], "weak": [...], "unlabeled": [...]}].

    An epoch is one pass over the strong split: ``n_strong // batch_strong``
    batches (at least one, and at least ``min_steps``), each with exactly the
    preset's mix. Every pool is walked in its own shuffled order and wraps around
    (reshuffled) when it is used up, so every clip is seen about equally often
    (the strong pool wraps only when ``min_steps`` lengthens the epoch).
    Everything depends only on (seed, epoch): resuming is exact."""
    n_strong, b_strong = int(pool_sizes.get("strong", 0)), int(batch_sizes.get("strong", 0))
    if n_strong < 1 or b_strong < 1:
        raise ValueError("mean-teacher batches need a non-empty strong split and batch_strong >= 1")
    if int(min_steps) < 0:
        raise ValueError(f"min_steps must be >= 0, got {min_steps}")
    steps = epoch_steps(n_strong, b_strong, min_steps)
    plan: list[dict[str, list[int]]] = [{} for _ in range(steps)]
    for k, kind in enumerate(KINDS):
        n, b = int(pool_sizes.get(kind, 0)), int(batch_sizes.get(kind, 0))
        if n == 0 or b == 0:
            for batch in plan:
                batch[kind] = []
            continue
        g = torch.Generator().manual_seed(epoch_seed(seed * 3 + k, epoch))
        need = steps * b
        order = torch.cat([torch.randperm(n, generator=g) for _ in range(-(-need // n))])
        order = order[:need].tolist()
        for i, batch in enumerate(plan):
            batch[kind] = order[i * b:(i + 1) * b]
    return plan


class MixedBatches:
    """The engine's ``train_data``: ``batches(epoch)`` yields mixed batches, in
    the order strong | weak | unlabeled inside each batch; ``len()`` is the
    number of steps per epoch (at least ``min_steps``: see ``mixed_batch_plan``)."""

    def __init__(self, stores: Mapping[str, object], batch_sizes: Mapping[str, int], seed: int,
                 min_steps: int = 0):
        self.stores = {k: stores[k] for k in KINDS if k in stores and stores[k] is not None}
        self.batch_sizes = {k: int(batch_sizes.get(k, 0)) for k in KINDS}
        self.pool_sizes = {k: len(s) for k, s in self.stores.items()}
        self.seed, self.min_steps = int(seed), int(min_steps)
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int) -> "MixedBatches":
        """The same batches for process ``rank`` of ``world_size`` (torchrun): its slice
        of each kind's clips, so the global batch is the same for any number of
        processes. Each kind's batch size must be a multiple of ``world_size``."""
        for kind, b in self.batch_sizes.items():
            if self.pool_sizes.get(kind, 0):
                check_split(b, world_size, f"batch_{kind}")
        part = copy.copy(self)
        part.rank, part.world_size = int(rank), int(world_size)
        return part

    def plan(self, epoch: int):
        return mixed_batch_plan(self.pool_sizes, self.batch_sizes, self.seed, epoch, self.min_steps)

    def __len__(self) -> int:
        return len(self.plan(1))

    def __call__(self, epoch: int):
        for entry in self.plan(epoch):
            items = [self.stores[kind].item(i) for kind in KINDS
                     for i in rank_slice(entry.get(kind, []), self.rank, self.world_size)]
            yield collate_items(items)


"""The seeded data order (chapter 05): the shuffle of epoch e comes from (seed, e) alone.

``epoch_seed`` and ``EpochSampler`` live here, below the engine, so that the data
pieces (``mixed_batches``, ``distributed``) and the engine share them; the engine
re-exports both.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["EpochSampler", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed derived from (seed, epoch): each epoch its own, repeatable, order."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


class EpochSampler(Sampler):
    """Shuffles 0..n-1 with a generator seeded from (seed, epoch).

    Unlike ``RandomSampler`` it holds no hidden state between epochs: the order
    of epoch ``e`` depends on nothing but (seed, e), which is what makes resuming
    exact. The engine calls ``set_epoch`` before each epoch."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n

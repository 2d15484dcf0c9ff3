"""In-memory stores of training inputs: log-mels or cached encoder frames, one item per clip.

The mean-teacher stages and validation read clips through a store's
``item(i)`` (a dict of tensors and flags) and ``filenames``. A ``MelStore``
computes a split's log-mels once and keeps them; a ``FrameStore`` serves the
encoder frames of a ``models.frame_cache.FrameCache``; ``pool_stores`` joins
the splits of one kind (e.g. synthetic + real strong clips) into one pool.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..presets import Preset
from .features import LogMel


class MelStore:
    """Log-mels of one split, computed on first use and kept in memory (float16).

    Stage 2 and the CRNN read every clip once per epoch; decoding audio and
    computing the STFT once, not every epoch, makes CPU training several times
    faster. float16 log-mels of a lite clip take 64 KB."""

    def __init__(self, dataset, preset: Preset):
        self.dataset = dataset
        self.logmel = LogMel(preset)
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def filenames(self) -> list[str]:
        return list(self.dataset.filenames)

    def item(self, i: int) -> dict:
        if i not in self._cache:
            it = self.dataset[i]
            with torch.no_grad():
                mel = self.logmel(it["waveform"]).to(torch.float16)
            self._cache[i] = {"mel": mel, "frame_mask": it["frame_mask"], "strong": it["strong"],
                              "weak": it["weak"], "has_strong": bool(it["has_strong"]),
                              "has_weak": bool(it["has_weak"]), "filename": it["filename"]}
        return self._cache[i]


class FrameStore:
    """One split of a ``frame_cache.FrameCache``, with ``item(i)`` like ``MelStore``."""

    def __init__(self, cache):
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    @property
    def filenames(self) -> list[str]:
        return list(self.cache.filenames)

    def item(self, i: int) -> dict:
        it = self.cache[i]
        return {"frames": it["frames"], "clip_embedding": it["clip_embedding"],
                "frame_mask": it["frame_mask"], "strong": it["strong"], "weak": it["weak"],
                "has_strong": bool(it["has_strong"]), "has_weak": bool(it["has_weak"]),
                "filename": self.cache.filenames[i]}


def collate_items(items: Sequence[dict]) -> dict:
    """Stack store items into a batch dict (inputs as float32)."""
    out = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if key == "filename":
            out[key] = vals
        elif torch.is_tensor(vals[0]):
            v = torch.stack(vals)
            out[key] = v.float() if v.is_floating_point() else v
        else:
            out[key] = torch.tensor(vals)
    return out



class ConcatStore:
    """Several stores as one pool (e.g. synthetic + real strong clips)."""

    def __init__(self, stores: Sequence):
        self.stores = list(stores)
        self.offsets = np.cumsum([0] + [len(s) for s in self.stores])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def filenames(self) -> list[str]:
        return [n for s in self.stores for n in s.filenames]

    def item(self, i: int) -> dict:
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.stores[k].item(i - int(self.offsets[k]))


def pool_stores(stores: list):
    """One store for several (None for none; the store itself for one)."""
    if not stores:
        return None
    return stores[0] if len(stores) == 1 else ConcatStore(stores)


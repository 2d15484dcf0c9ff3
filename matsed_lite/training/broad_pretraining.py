"""The broad corpus in encoder pre-training: streamed training clips and a held-out set (chapter 01).

``pretrain_encoder(..., corpus="broad")`` trains PaSST-lite on the streamed
tagging corpus of ``data.tagging_corpus`` (the ten DESED classes and 44 other
sound types) instead of DESED-lite's fixed ``tagging`` split:

* epoch ``e`` trains on ``clips_per_epoch`` FRESH clips, indices
  ``e * clips_per_epoch`` onwards of stream ``seed``; nothing is written to
  disk, and DataLoader workers render and featurise the next batches while the
  model trains (``broad_train_data``);
* the tagging head has one output per ``FAMILY_CLASSES`` entry;
* every epoch is scored on DESED-lite's ``tagging_eval`` split over the DESED
  columns (``val/mAP``, the monitored metric, comparable with a DESED-lite
  encoder) and on a fixed held-out set of streamed clips from another stream
  seed (``val/broad_mAP``, ``broad_validation_mels``).

Every batch depends only on (seed, epoch) and every item only on (seed,
index), so a resumed run, or one with another number of workers, trains on the
same data in the same order.
"""
from __future__ import annotations

import torch

from ..data.tagging_corpus import (FAMILY_CLASSES, FAMILY_VERSION, StreamedEpochs,
                                   StreamedTaggingClips)
from ..presets import ENCODER_BROAD_VAL_SEED_OFFSET, Preset, get_preset

CORPORA = ("desed", "broad")


def check_corpus(corpus: str) -> str:
    if corpus not in CORPORA:
        raise ValueError(f"unknown pre-training corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    return corpus


def broad_val_seed(seed: int) -> int:
    """The stream seed of the held-out broad clips of a run with seed ``seed``."""
    return int(seed) + ENCODER_BROAD_VAL_SEED_OFFSET


def broad_train_data(preset: "Preset | str", seed: int, clips_per_epoch: int, batch_size: int,
                     num_workers: int = 1, strong: bool = False) -> StreamedEpochs:
    """``epoch -> DataLoader`` of fresh broad-corpus clips ({"mel", "weak", "index"},
    and "strong" frame labels if asked),
    the ``train_data`` that ``engine.fit`` takes; ``len()`` is the steps per epoch
    (the last batch may be short)."""
    if clips_per_epoch < 1:
        raise ValueError(f"clips_per_epoch must be at least 1, got {clips_per_epoch}")
    return StreamedEpochs(clips_per_epoch, seed, preset, batch_size, num_workers=num_workers,
                          strong=strong, drop_last=False)


@torch.no_grad()
def broad_validation_mels(preset: "Preset | str", seed: int, n: int, num_workers: int = 1,
                          batch_size: int = 32):
    """Log-mels (n, n_mels, n_frames) and targets (n, len(FAMILY_CLASSES)) of the
    held-out broad clips 0..n-1 of stream ``broad_val_seed(seed)``, kept in memory."""
    ds = StreamedTaggingClips(n, broad_val_seed(seed), get_preset(preset), epoch=0, strong=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(0))
    mels, targets = [], []
    for b in loader:
        mels.append(b["mel"])
        targets.append(b["weak"])
    return torch.cat(mels), torch.cat(targets)


def broad_recipe_fields(seed: int, epochs: int, clips_per_epoch: int,
                        num_workers: int, val_targets: torch.Tensor, broad_score: dict) -> dict:
    """What a broad-corpus recipe.json adds to (or replaces in) the DESED-lite one."""
    prevalence = val_targets.mean(0)
    return {
        "corpus": "broad",
        "clips_per_epoch": clips_per_epoch,
        "workers": num_workers,
        "data": {"broad_train_clips": epochs * clips_per_epoch, "broad_train_seed": seed,
                 "broad_val_clips": len(val_targets), "broad_val_seed": broad_val_seed(seed),
                 "corpus_version": FAMILY_VERSION,
                 "train_prevalence": {c: float(v) for c, v in zip(FAMILY_CLASSES, prevalence)}},
        "broad_mAP": broad_score["mAP"],
        "broad_per_class_ap": broad_score["per_class_ap"],
        "classes": list(FAMILY_CLASSES),
    }

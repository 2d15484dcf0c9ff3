"""The torch Datasets that feed training: one split of a DESED-format folder each (chapter 00).

A *split* is a folder of audio plus (usually) a TSV of labels (``layout``
finds them). MAT-SED, like the DCASE baseline, trains on three kinds at once:

========== ============================================ ==========================
kind       labels                                        item fields filled
========== ============================================ ==========================
strong     onset/offset/label per event (strong TSV)     ``strong`` and ``weak``
weak       clip labels only (weak TSV)                   ``weak``
unlabeled  none (unlabeled TSV, or just the folder)      neither (zeros)
========== ============================================ ==========================

Every Dataset validates its split when it is built, with the same checks as
``matsed-lite check`` (``data_check.scan_split``), so bad data fails at once
with a message naming the TSV, the row and the problem, not hours into a run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..presets import Preset, get_preset
from .audio import load_audio, valid_frame_mask
from .data_check import scan_split
from .desed_format import DataError
from .labels import events_to_frames, labels_to_vector
from .layout import SplitSpec, infer_classes, layout_for

# ---------------------------------------------------------------------------
# torch Datasets

class SEDDataset(Dataset):
    """One split as a torch Dataset of fixed-size items.

    Each item is a dict:

    ``waveform``    float32 (clip_samples,) mono at preset.sample_rate, zero-padded
    ``frame_mask``  bool (n_frames,) True where the frame holds real audio
    ``strong``      float32 (n_frames, K) frame labels at preset.frame_hop_seconds
                    (zeros unless has_strong)
    ``weak``        float32 (K,) clip labels; for strong clips, the classes active
                    in some frame (zeros for unlabeled)
    ``has_strong``, ``has_weak``  bool, which targets are real
    ``filename``    the clip's name as in the TSV

    Building it runs ``data_check.scan_split``: any problem raises ``DataError``.
    With ``skip_missing=True`` clips whose audio file is missing are dropped
    instead (real DESED always lacks a few); ``n_missing`` and ``missing_files``
    say which. Reading is deterministic: no shuffling, cropping or random state
    (augmentation belongs to the training loop).
    """

    kind: str | None = None  # subclasses fix it

    def __init__(self, spec: SplitSpec, preset: "Preset | str",
                 classes: Sequence[str] | None = None, skip_missing: bool = False):
        if self.kind is not None and spec.kind != self.kind:
            raise ValueError(f"{type(self).__name__} needs a {self.kind} split; "
                             f"split {spec.name!r} is {spec.kind}")
        self.spec = spec
        self.preset = get_preset(preset)
        if classes is None:
            if spec.kind == "unlabeled":
                raise ValueError(f"split {spec.name!r} is unlabeled: pass the class list "
                                 "(e.g. infer_classes(layout)) so its items match the others")
            classes = infer_classes(spec)
        self.classes = list(classes)
        contents, report = scan_split(spec, self.classes, skip_missing=skip_missing)
        if report.problems:
            raise DataError(report.problems)
        self.report = report
        self.filenames: list[str] = list(contents.filenames)
        self._events = contents.events
        self._weak = contents.weak
        self.n_missing = report.missing
        self.missing_files = list(report.missing_files)

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index: int) -> dict:
        name = self.filenames[index]
        p = self.preset
        wav, n_valid = load_audio(self.spec.audio_dir / name, p.sample_rate, p.clip_samples)
        mask = valid_frame_mask(n_valid, p.n_frames, p.hop_length)
        K = len(self.classes)
        if self.spec.kind == "strong":
            strong = events_to_frames(self._events.get(name, ()), self.classes,
                                      p.n_frames, p.frame_hop_seconds)
            weak = strong.max(axis=0) if p.n_frames else np.zeros(K, np.float32)
        else:
            strong = np.zeros((p.n_frames, K), dtype=np.float32)
            if self.spec.kind == "weak":
                weak = labels_to_vector(self._weak.get(name, ()), self.classes)
            else:
                weak = np.zeros(K, dtype=np.float32)
        return {
            "waveform": torch.from_numpy(wav),
            "frame_mask": torch.from_numpy(mask),
            "strong": torch.from_numpy(np.ascontiguousarray(strong, dtype=np.float32)),
            "weak": torch.from_numpy(np.ascontiguousarray(weak, dtype=np.float32)),
            "has_strong": self.spec.kind == "strong",
            "has_weak": self.spec.kind in ("strong", "weak"),
            "filename": name,
        }

    def __repr__(self) -> str:
        miss = f", {self.n_missing} missing skipped" if self.n_missing else ""
        return (f"{type(self).__name__}({self.spec.name!r}, {len(self)} clips, "
                f"{len(self.classes)} classes, preset={self.preset.name!r}{miss})")


class StrongDataset(SEDDataset):
    """A strongly labelled split (synthetic soundscapes, validation)."""
    kind = "strong"


class WeakDataset(SEDDataset):
    """A weakly labelled split: clip labels only."""
    kind = "weak"


class UnlabeledDataset(SEDDataset):
    """An unlabeled split: audio only, for the mean-teacher consistency loss."""
    kind = "unlabeled"


def make_dataset(spec: SplitSpec, preset, classes: Sequence[str] | None = None,
                 skip_missing: bool = False) -> SEDDataset:
    """The Dataset class matching ``spec.kind``."""
    cls = {"strong": StrongDataset, "weak": WeakDataset, "unlabeled": UnlabeledDataset}[spec.kind]
    return cls(spec, preset, classes, skip_missing=skip_missing)


def make_datasets(layout: Mapping[str, SplitSpec] | str | Path, preset,
                  classes: Sequence[str] | None = None, skip_missing: bool = False,
                  splits: Iterable[str] | None = None) -> dict[str, SEDDataset]:
    """Datasets for (some) splits of a layout, all with one class list.

    ``classes`` defaults to ``infer_classes`` over the whole layout, so every
    split gets the same list in the same order.
    """
    if isinstance(layout, (str, Path)):
        layout = layout_for(layout)
    if classes is None:
        classes = infer_classes(layout)
    names = list(layout) if splits is None else list(splits)
    return {n: make_dataset(layout[n], preset, classes, skip_missing) for n in names}

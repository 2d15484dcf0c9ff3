"""Labels: events <-> frame matrices, and clip labels <-> multi-hot vectors (chapter 00).

Frame i covers [i * hop, (i + 1) * hop). An event is active in every frame it
touches: its onset frame is floor(onset / hop) and its end frame (exclusive)
ceil(offset / hop). Decoding a frame matrix turns each run of active frames
back into (onset, offset) at frame boundaries, so a round trip moves each
boundary outward by less than one frame. Two events of one class less than a
frame apart share a frame and merge into one.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# Guards floor/ceil against float noise (0.3 / 0.02 = 14.999999...).
_EPS = 1e-6


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    return {c: i for i, c in enumerate(classes)}


def events_to_frames(events: Iterable, classes: Sequence[str], n_frames: int,
                     frame_hop: float) -> np.ndarray:
    """(onset, offset, label) triples (or objects with those attributes) ->
    float32 matrix (n_frames, n_classes) of 0/1."""
    if frame_hop <= 0:
        raise ValueError(f"frame_hop must be positive, got {frame_hop}")
    index = _class_index(classes)
    out = np.zeros((n_frames, len(classes)), dtype=np.float32)
    for ev in events:
        onset, offset, label = event_tuple(ev)
        if label not in index:
            raise ValueError(f"label {label!r} is not in the class list ({', '.join(classes)})")
        start = int(np.floor(onset / frame_hop + _EPS))
        stop = int(np.ceil(offset / frame_hop - _EPS))
        start, stop = max(start, 0), min(stop, n_frames)
        if stop > start:
            out[start:stop, index[label]] = 1.0
    return out


def frames_to_events(frames: np.ndarray, classes: Sequence[str], frame_hop: float,
                     threshold: float = 0.5) -> list[tuple[float, float, str]]:
    """Frame matrix (n_frames, n_classes) -> sorted (onset, offset, label) triples.

    A frame is active where its value is >= threshold (so 0/1 matrices and
    probabilities both work)."""
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.shape[1] != len(classes):
        raise ValueError(f"frames must be (n_frames, {len(classes)}), got {frames.shape}")
    events = []
    active = frames >= threshold
    for k, label in enumerate(classes):
        col = np.concatenate([[False], active[:, k], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(col))
        for start, stop in zip(edges[::2], edges[1::2]):
            events.append((float(start * frame_hop), float(stop * frame_hop), label))
    events.sort(key=lambda e: (e[0], e[2]))
    return events


def labels_to_vector(labels: Iterable[str], classes: Sequence[str]) -> np.ndarray:
    """Clip labels -> multi-hot float32 vector (n_classes,)."""
    index = _class_index(classes)
    out = np.zeros(len(classes), dtype=np.float32)
    for label in labels:
        if label not in index:
            raise ValueError(f"label {label!r} is not in the class list ({', '.join(classes)})")
        out[index[label]] = 1.0
    return out


def event_tuple(ev) -> tuple[float, float, str]:
    """(onset, offset, label) of an Event-like object or of a triple."""
    if hasattr(ev, "onset"):
        return float(ev.onset), float(ev.offset), ev.label
    onset, offset, label = ev
    return float(onset), float(offset), label


def pool_time(x: torch.Tensor, factor: int, how: str = "max") -> torch.Tensor:
    """(B, T, ...) -> (B, T // factor, ...): labels and masks at a coarser frame
    rate (the CRNN's 4x, a context network at 5 frames per token's 2x).
    "max": an event (or valid audio) anywhere in the group counts."""
    if factor == 1:
        return x
    dtype = x.dtype
    y = x.float()
    shape = y.shape
    y = y.reshape(shape[0], shape[1], -1).transpose(1, 2)        # (B, C, T)
    y = F.max_pool1d(y, factor, factor) if how == "max" else F.avg_pool1d(y, factor, factor)
    y = y.transpose(1, 2).reshape(shape[0], -1, *shape[2:])
    return y.to(dtype) if dtype == torch.bool else y

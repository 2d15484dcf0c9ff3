"""Post-processing of frame scores, and decoding them into events (chapter 07).

MAT-SED's chain, per clip:

1. soft weak mask: frame scores (T, K) times the clip-level scores (K,), so a
   class the clip-level head rules out cannot fire in any frame;
2. per-class median filter along time: 0.32 s for short, impulsive classes,
   1.28 s for long, stationary ones (``PAPER_MEDIAN_SECONDS``), which removes
   flicker without erasing short events;
3. (for event lists only) a threshold, and each run of active frames becomes
   an event.

PSDS is threshold-free, so steps 1-2 feed ``evaluation.scores_to_dataframes``
directly; step 3 is for F1 at a fixed threshold and for writing detections.

Windows are given in seconds and turned into frames for the hop of the scores
at hand: the models here emit 40 ms frames (cpu preset), 20 ms (gpu) or
10 ms (the paper), and nothing in this module assumes one of them.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from ..data.desed_format import Event, write_strong
from ..data.labels import event_tuple, frames_to_events

PAPER_MEDIAN_SECONDS: dict[str, float] = {
    "Alarm_bell_ringing": 0.32,
    "Blender": 1.28,
    "Cat": 0.32,
    "Dishes": 0.32,
    "Dog": 0.32,
    "Electric_shaver_toothbrush": 1.28,
    "Frying": 1.28,
    "Running_water": 1.28,
    "Speech": 0.32,
    "Vacuum_cleaner": 1.28,
}

# Classes the paper does not cover get the shorter of its two windows: a
# window longer than an event erases it, while one that is too short only
# leaves some flicker, so the short window is the safer guess. Pass
# ``seconds`` to choose otherwise.
DEFAULT_MEDIAN_SECONDS = 0.32

FILTERS = ("median", "max", "none")

# Decoded times are rounded to this many decimals: frame multiples carry float
# noise (3 * 0.04 = 0.12000000000000001) that means nothing.
_TIME_DECIMALS = 6
# An event shorter than this after clipping at the clip's end is a sliver of a
# frame that starts just before the end; it would be written with onset ==
# offset at 3 decimals, which DESED readers reject.
_MIN_EVENT_S = 1e-3


def _check_hop(frame_hop) -> float:
    try:
        hop = float(frame_hop)
    except (TypeError, ValueError):
        raise ValueError(f"frame_hop must be a number of seconds, got {frame_hop!r}") from None
    if not (math.isfinite(hop) and hop > 0):
        raise ValueError(f"frame_hop must be positive seconds, got {frame_hop!r}")
    return hop


def _as_array(x, name: str) -> np.ndarray:
    """numpy float32 (torch tensors are detached and moved to the CPU first)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from None


def soft_weak_mask(frame_probs, clip_probs) -> np.ndarray:
    """Frame scores times clip scores: (T, K) x (K,) or, for a batch, (B, T, K) x (B, K).

    The "soft" mask of MAT-SED: instead of zeroing classes whose clip score
    is under a threshold (the DCASE baseline's hard weak mask), every frame is
    scaled by the clip score, which keeps PSDS threshold-free."""
    frames = _as_array(frame_probs, "frame_probs")
    clips = _as_array(clip_probs, "clip_probs")
    if frames.ndim not in (2, 3):
        raise ValueError(f"frame_probs must be (T, K) or (B, T, K), got shape {frames.shape}")
    expected = frames.shape[:-2] + frames.shape[-1:]
    if clips.shape != expected:
        raise ValueError(f"clip_probs must have shape {expected} to match frame_probs "
                         f"{frames.shape}, got {clips.shape}")
    return (frames * clips[..., None, :]).astype(np.float32)


def _check_seconds(value, what: str) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"seconds for {what} must be a number, got {value!r}") from None
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"seconds for {what} must be finite and >= 0, got {value!r}")
    return s


def filter_windows(classes: Sequence[str], frame_hop: float,
                   seconds: float | Mapping[str, float] | None = None) -> tuple[int, ...]:
    """Per-class filter lengths in frames, in the order of ``classes``.

    seconds  None: the paper's windows (``PAPER_MEDIAN_SECONDS``), and
             ``DEFAULT_MEDIAN_SECONDS`` for classes it does not list;
             a number: that many seconds for every class;
             a dict class -> seconds: overrides for the classes it names (the
             rest as for None); a name not in ``classes`` is an error, since a
             misspelt class would otherwise silently keep its default.
    Each window is seconds / frame_hop rounded half up, and at least 1 frame
    (1 = no filtering), so 0 s turns filtering off for a class."""
    hop = _check_hop(frame_hop)
    classes = list(classes)
    if not classes:
        raise ValueError("classes must not be empty")
    per_class = {c: PAPER_MEDIAN_SECONDS.get(c, DEFAULT_MEDIAN_SECONDS) for c in classes}
    if isinstance(seconds, Mapping):
        unknown = sorted(set(seconds) - set(classes))
        if unknown:
            raise ValueError(f"seconds names classes that are not in classes: {', '.join(map(str, unknown))}")
        per_class.update({c: _check_seconds(s, c) for c, s in seconds.items()})
    elif seconds is not None:
        s = _check_seconds(seconds, "all classes")
        per_class = {c: s for c in classes}
    # Half up, with a little slack for float noise (0.1 / 0.04 = 2.5000000000000004).
    return tuple(max(1, int(math.floor(per_class[c] / hop + 0.5 + 1e-9))) for c in classes)


def _check_windows(windows, n_classes: int) -> tuple[int, ...]:
    if np.isscalar(windows):
        windows = [windows] * n_classes
    windows = list(windows)
    if len(windows) != n_classes:
        raise ValueError(f"windows must give one length per class ({n_classes}), got {len(windows)}")
    out = []
    for w in windows:
        try:
            whole = not isinstance(w, bool) and float(w).is_integer() and w >= 1
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise ValueError(f"windows must be whole numbers of frames >= 1, got {windows}")
        out.append(int(w))
    return tuple(out)


def _check_probs(probs, name: str = "probs") -> np.ndarray:
    x = _as_array(probs, name)
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must be (T, K) or (B, T, K), got shape {x.shape}")
    if x.shape[-2] == 0:
        raise ValueError(f"{name} has no frames (shape {x.shape})")
    return x


def _filter_per_class(probs, windows, filter_one) -> np.ndarray:
    """Apply ``filter_one(column (..., T), window)`` to each class along time."""
    x = _check_probs(probs)
    windows = _check_windows(windows, x.shape[-1])
    out = x.copy()
    for k, w in enumerate(windows):
        if w > 1:
            out[..., k] = filter_one(np.ascontiguousarray(x[..., k]), w)
    return out


def median_filter(probs, windows) -> np.ndarray:
    """Per-class median filter along time of (T, K) or (B, T, K) scores.

    windows  one length in frames per class (e.g. from ``filter_windows``) or
             one int for all; 1 leaves a class as it is. Edges repeat the
             first/last frame (mode "nearest"), so a clip's ends are not
             pulled towards zero. Returns float32 of the input's shape."""

    def one(col, w):
        size = (1,) * (col.ndim - 1) + (w,)
        return ndimage.median_filter(col, size=size, mode="nearest")

    return _filter_per_class(probs, windows, one)


def max_filter(probs, windows) -> np.ndarray:
    """Per-class maximum filter along time, as ``median_filter``: fills gaps
    shorter than the window and widens events by about half a window each side."""

    def one(col, w):
        return ndimage.maximum_filter1d(col, size=w, axis=-1, mode="nearest")

    return _filter_per_class(probs, windows, one)


def postprocess(frame_probs, clip_probs, classes: Sequence[str], frame_hop: float,
                filter: str = "median", seconds: float | Mapping[str, float] | None = None,
                weak_mask: bool = True) -> np.ndarray:
    """The whole chain for one clip: weak mask, then a per-class filter.

    frame_probs (T, K), clip_probs (K,) (may be None when weak_mask is False).
    filter   "median" (MAT-SED), "max", or "none".
    seconds  window lengths, as for ``filter_windows``.
    Returns float32 (T, K)."""
    windows = _chain_windows(classes, frame_hop, filter, seconds)
    return _postprocess_one(frame_probs, clip_probs, len(classes), windows, filter, weak_mask, "")


def postprocess_all(frame_probs: Mapping[str, object], clip_probs: Mapping[str, object] | None,
                    classes: Sequence[str], frame_hop: float, filter: str = "median",
                    seconds: float | Mapping[str, float] | None = None,
                    weak_mask: bool = True) -> dict[str, np.ndarray]:
    """``postprocess`` for every clip: {name: (T, K)} and {name: (K,)} -> {name: (T, K)}.

    Both dicts must name the same clips (a clip without its clip score would
    otherwise be silently left unmasked)."""
    windows = _chain_windows(classes, frame_hop, filter, seconds)
    if weak_mask:
        if clip_probs is None:
            raise ValueError("clip_probs is None but weak_mask is True: pass the clip-level "
                             "scores or weak_mask=False")
        missing, extra = set(frame_probs) - set(clip_probs), set(clip_probs) - set(frame_probs)
        if missing or extra:
            raise ValueError("frame_probs and clip_probs must name the same clips; "
                             f"without clip scores: {_few(missing)}; without frame scores: {_few(extra)}")
    return {name: _postprocess_one(p, clip_probs[name] if weak_mask else None, len(classes),
                                   windows, filter, weak_mask, f" of {name!r}")
            for name, p in frame_probs.items()}


def _few(names, n: int = 5) -> str:
    names = sorted(map(str, names))
    if not names:
        return "none"
    return ", ".join(names[:n]) + (f" ... and {len(names) - n} more" if len(names) > n else "")


def _chain_windows(classes, frame_hop, filter, seconds):
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {', '.join(FILTERS)}, got {filter!r}")
    _check_hop(frame_hop)
    return None if filter == "none" else filter_windows(classes, frame_hop, seconds)


def _postprocess_one(frame_probs, clip_probs, n_classes, windows, filter, weak_mask, where):
    x = _as_array(frame_probs, f"frame_probs{where}")
    if x.ndim != 2 or x.shape[1] != n_classes or x.shape[0] == 0:
        raise ValueError(f"frame_probs{where} must be (T, {n_classes}) with T > 0, got {x.shape}")
    if weak_mask:
        if clip_probs is None:
            raise ValueError("clip_probs is None but weak_mask is True: pass the clip-level "
                             "scores or weak_mask=False")
        x = soft_weak_mask(x, clip_probs)
    if filter == "median":
        x = median_filter(x, windows)
    elif filter == "max":
        x = max_filter(x, windows)
    return x.astype(np.float32, copy=False)


def decode_events(probs, classes: Sequence[str], frame_hop: float, threshold: float = 0.5,
                  duration: float | None = None) -> list[tuple[float, float, str]]:
    """Scores (T, K) -> sorted (onset, offset, label) events at one threshold.

    A frame is active where its score is >= threshold; each run of active
    frames is an event from its first frame's start to its last frame's end
    (``labels.frames_to_events``). With ``duration`` (seconds), frames of
    padding past the clip's end are ignored: offsets are clipped to it and
    events starting at or after it dropped.

    Note: sed_scores_eval's F1 counts a frame active only where its score is
    strictly above the threshold, so a score exactly at it decodes here but
    not there."""
    hop = _check_hop(frame_hop)
    x = _as_array(probs, "probs")
    if x.ndim != 2 or x.shape[1] != len(classes):
        raise ValueError(f"probs must be (T, {len(classes)}) for the {len(classes)} classes, "
                         f"got shape {x.shape}")
    if not isinstance(threshold, (int, float, np.number)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if duration is not None and (not isinstance(duration, (int, float, np.number))
                                 or not math.isfinite(duration) or duration <= 0):
        raise ValueError(f"duration must be positive seconds, got {duration!r}")
    events = []
    for onset, offset, label in frames_to_events(x, classes, hop, threshold):
        onset, offset = round(onset, _TIME_DECIMALS), round(offset, _TIME_DECIMALS)
        if duration is not None:
            offset = min(offset, float(duration))
            if offset - onset < _MIN_EVENT_S:
                continue
        events.append((onset, offset, label))
    events.sort(key=lambda e: (e[0], e[2], e[1]))
    return events


def write_events_tsv(path, events_by_file: Mapping[str, Sequence]) -> None:
    """Write detections in DESED's strong format (filename onset offset event_label).

    events_by_file  clip name -> [(onset, offset, label), ...]; a clip with no
                    events is written as an empty row, so the file still lists
                    it. Names get ".wav" unless they end in .wav, .flac or .ogg: DESED lists files,
                    and tools take the id by cutting the last extension, which
                    would cut "Y..._0.000_10.000" in the middle.
    Times have 3 decimals; the file is written to a temporary name and renamed
    (``desed_format.write_strong``), so it is complete or absent."""
    events, empty = [], []
    for name, clip_events in events_by_file.items():
        name = str(name)
        if not name.strip():
            raise ValueError("events_by_file has an empty clip name")
        filename = name if name.lower().endswith((".wav", ".flac", ".ogg")) else name + ".wav"
        rows = []
        for ev in clip_events:
            onset, offset, label = event_tuple(ev)
            if not (math.isfinite(onset) and math.isfinite(offset)) or onset < 0:
                raise ValueError(f"events_by_file[{name!r}]: bad times ({onset}, {offset}) for {label!r}")
            if round(offset, 3) <= round(onset, 3):
                raise ValueError(f"events_by_file[{name!r}]: onset {onset} is not before offset "
                                 f"{offset} at 3 decimals ({label!r})")
            if not isinstance(label, str) or not label or any(c in label for c in "\t\n"):
                raise ValueError(f"events_by_file[{name!r}]: bad label {label!r}")
            rows.append(Event(filename, onset, offset, label))
        rows.sort(key=lambda e: (e.onset, e.label, e.offset))
        events += rows
        if not rows:
            empty.append(filename)
    write_strong(path, events, empty_files=empty)

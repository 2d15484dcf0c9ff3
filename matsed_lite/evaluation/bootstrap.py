"""How sure is a score? Bootstrap intervals over clips, and frame AP per class (chapter 08).

One evaluation set gives one PSDS; a second set of clips from the same source
would give another. Resampling the clips with replacement (the bootstrap)
estimates that spread: score ``n_resamples`` sets of N clips drawn from the N we
have and report the central ``level`` of the scores. Two systems whose
intervals do not overlap differ by more than the choice of clips explains.

Frame AP per class ranks every valid frame of every clip by its raw score
against the frame labels: a threshold-free diagnostic that moves before PSDS
does (PSDS needs whole events to cross its tolerance criteria).
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np

from ..data.labels import events_to_frames
from .ground_truth import audio_id
from .sed_metrics import ResampledPSDS, scores_to_dataframes
from .tagging import average_precision_per_class


def resample_clips(ids: Sequence[str], rng: np.random.Generator) -> list[tuple[str, str]]:
    """N (new id, original id) pairs drawn with replacement from N ids; a clip drawn
    k times appears as k distinct ids ("id", "id#2", ...), so each copy counts."""
    drawn = rng.integers(0, len(ids), len(ids))
    seen: dict[str, int] = {}
    out = []
    for i in drawn:
        cid = ids[int(i)]
        seen[cid] = seen.get(cid, 0) + 1
        out.append((cid if seen[cid] == 1 else f"{cid}#{seen[cid]}", cid))
    return out


def bootstrap_intervals(scores: Mapping[str, np.ndarray], frame_hop: float,
                        classes: Sequence[str], ground_truth: Mapping, durations: Mapping,
                        n_resamples: int = 50, level: float = 0.95, seed: int = 0,
                        settings: Sequence[str] = ("psds1", "psds2")) -> dict:
    """{setting: (low, high)}: percentile intervals of each PSDS over clip resamples.

    scores are post-processed frame scores keyed like the ground truth (".wav" or
    not); every resample is scored exactly like the full set (``evaluate_sed``)."""
    return paired_bootstrap({"system": scores}, frame_hop, classes, ground_truth, durations,
                            n_resamples, level, seed, settings)["intervals"]["system"]


def paired_bootstrap(systems: Mapping[str, Mapping[str, np.ndarray]],
                     frame_hop: "float | Mapping[str, float]",
                     classes: Sequence[str], ground_truth: Mapping, durations: Mapping,
                     n_resamples: int = 50, level: float = 0.95, seed: int = 0,
                     settings: Sequence[str] = ("psds1", "psds2")) -> dict:
    """Intervals of several systems scored on the SAME clip resamples, and of their
    differences from the first system (the reference).

    Two systems' own intervals can overlap while one beats the other on almost
    every resample: the clips that are hard for one are hard for both. The
    interval of the paired difference is the fair test: if it excludes 0, the
    gap is larger than the choice of clips explains.

    Returns {"full": {system: {setting: psds() result on all the clips}},
             "intervals": {system: {setting: (lo, hi)}},
             "differences": {system: {setting: (lo, hi)}}} (system minus the
    reference, for every system but the reference). ``frame_hop`` is one hop for
    all systems or {system: hop} (a CRNN and MAT-SED-lite have different ones)."""
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not systems:
        raise ValueError("paired_bootstrap needs at least one system")
    by_system = {name: {audio_id(k): v for k, v in s.items()} for name, s in systems.items()}
    names = list(by_system)
    hops = {n: float(frame_hop[n] if isinstance(frame_hop, Mapping) else frame_hop) for n in names}
    ids = sorted(by_system[names[0]])
    for name in names[1:]:
        if sorted(by_system[name]) != ids:
            raise ValueError(f"system {name!r} scores other clips than {names[0]!r}: "
                             "a paired bootstrap needs the same clips")
    gt = {audio_id(k): v for k, v in ground_truth.items()}
    dur = {audio_id(k): v for k, v in durations.items()}
    # Each system's score DataFrames and per-clip detection counts are built once
    # (most of a PSDS evaluation's time): a resample only re-sums the counts.
    frames = {n: scores_to_dataframes(by_system[n], hops[n], classes, dur) for n in names}
    scorers = {n: {s: ResampledPSDS(frames[n], gt, dur, s) for s in settings} for n in names}
    rng = np.random.default_rng(seed)
    values = {n: {s: [] for s in settings} for n in names}
    for _ in range(n_resamples):
        pairs = resample_clips(ids, rng)
        for name in names:
            for s in settings:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a resample can miss a rare class
                    values[name][s].append(scorers[name][s](pairs))
    tail = 100 * (1 - level) / 2

    def interval(v) -> tuple[float, float]:
        v = np.asarray(v, dtype=float)
        v = v[~np.isnan(v)]
        return (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) \
            if len(v) else (float("nan"), float("nan"))

    ref = names[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evaluate_sed warns about classes without events
        full = {n: {s: scorers[n][s].full() for s in settings} for n in names}
    return {"full": full,
            "intervals": {n: {s: interval(values[n][s]) for s in settings} for n in names},
            "differences": {n: {s: interval(np.subtract(values[n][s], values[ref][s]))
                                for s in settings} for n in names[1:]}}


def frame_ap_per_class(frames: Mapping[str, np.ndarray], frame_hop: float,
                       classes: Sequence[str], ground_truth: Mapping,
                       durations: Mapping) -> dict[str, float]:
    """AP of the raw frame scores (T, K) of every clip against frame labels made from
    the ground-truth events at the same hop; frames past a clip's duration are left
    out. NaN for a class without any active frame."""
    gt = {audio_id(k): v for k, v in ground_truth.items()}
    dur = {audio_id(k): float(v) for k, v in durations.items()}
    xs, ys = [], []
    for name, x in frames.items():
        cid = audio_id(name)
        n = min(len(x), int(np.ceil(dur[cid] / frame_hop - 1e-6)))
        y = events_to_frames(gt[cid], classes, n, frame_hop)
        xs.append(np.asarray(x)[:n])
        ys.append(np.asarray(y)[:n])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap = average_precision_per_class(np.concatenate(xs), np.concatenate(ys))
    return {c: float(a) for c, a in zip(classes, ap)}

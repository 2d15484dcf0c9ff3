"""Evaluation metrics.

Two families:

* Audio tagging: average precision (AP) and macro mean AP (mAP), the metric
  AudioSet pre-training (and so PaSST) is judged by.
* Sound event detection: the polyphonic sound detection score (PSDS) of
  DCASE Task 4, computed threshold-free with ``sed_scores_eval`` (the tool the
  DCASE baselines and MAT-SED report with). Model selection uses PSDS1.

AP summarises a ranking: sort the clips by score, and at every distinct score
threshold record precision and recall; AP = sum over thresholds of
(recall gain) x (precision there). Tied scores form one threshold (they are
all in or all out together), so AP does not depend on how ties are ordered.
This is the same definition as scikit-learn's ``average_precision_score``
(no interpolation).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch


def _as_numpy(x) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def average_precision(scores, targets) -> float:
    """AP of one class: scores (N,), binary targets (N,). NaN if there is no positive
    (AP is undefined: recall never moves)."""
    s, t = _as_numpy(scores).ravel(), _as_numpy(targets).ravel() > 0.5
    if s.shape != t.shape:
        raise ValueError(f"scores and targets differ in shape: {s.shape} vs {t.shape}")
    n_pos = int(t.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    tp = np.cumsum(t)
    fp = np.cumsum(~t)
    # The last index of each run of equal scores is where a threshold takes effect.
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    gains = np.diff(np.r_[0.0, recall])
    return float(np.sum(gains * precision))


def average_precision_per_class(scores, targets) -> np.ndarray:
    """AP of each column of scores (N, K) against targets (N, K); NaN for classes
    with no positive."""
    s, t = _as_numpy(scores), _as_numpy(targets)
    if s.ndim != 2 or s.shape != t.shape:
        raise ValueError(f"scores and targets must both be (N, K); got {s.shape} and {t.shape}")
    return np.array([average_precision(s[:, k], t[:, k]) for k in range(s.shape[1])])


def mean_average_precision(scores, targets) -> float:
    """Macro mAP: the mean of the per-class APs over classes with at least one
    positive clip (AP is undefined without positives, and counting such a class
    as 0 or 1 would reward or punish the model for the data, not its ranking).
    NaN if no class has a positive."""
    ap = average_precision_per_class(scores, targets)
    ap = ap[~np.isnan(ap)]
    return float(ap.mean()) if len(ap) else float("nan")


# ---------------------------------------------------------------------------
# Sound event detection: PSDS with sed_scores_eval
#
# PSDS sweeps the decision threshold over every score value, matches detected
# events to ground-truth events by intersection (detection / ground-truth
# tolerance criteria, DTC / GTC, and optionally a cross-trigger criterion,
# CTTC), and integrates the resulting ROC (effective TPR against false
# positives per hour) up to ``max_efpr``, normalised so a perfect system gets
# 1. ``alpha_st`` penalises classes that differ (TPR std across classes),
# ``alpha_ct`` penalises cross-triggers (detecting class A on a class-B event).
#
# sed_scores_eval 0.0.4 quirks handled here: it needs pandas < 3 (read-only
# buffer error otherwise), ``psds`` returns FOUR values, and it raises when
# alpha_ct == 0 while a cttc threshold is given (PSDS1 must pass cttc=None).

PSDS_SETTINGS = {
    # DCASE Task 4 scenario 1: tight localisation, no cross-trigger penalty.
    "psds1": dict(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None,
                  alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0),
    # Scenario 2: loose localisation, cross-triggers penalised (class confusion).
    "psds2": dict(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3,
                  alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0),
}

# Frames starting within this much of the duration are treated as starting at it
# (float noise in hop multiples: 0.02 * 500 = 10.000000000000002).
_TIME_EPS = 1e-6


def audio_id(name: str) -> str:
    """The id sed_scores_eval keys clips by: the file name without ".wav"
    (and without any folder), so "val_001.wav", "audio/val_001.wav" and
    "val_001" are the same clip."""
    name = Path(str(name)).name
    return name[:-4] if name.lower().endswith(".wav") else name


def _rekey(d: Mapping, what: str) -> dict:
    """Strip ".wav" from the keys; two keys naming one clip are an error."""
    out = {}
    for k, v in d.items():
        i = audio_id(k)
        if i in out:
            raise ValueError(f"{what}: {k!r} and another key both name clip {i!r}")
        out[i] = v
    return out


def _few(names, n: int = 5) -> str:
    names = sorted(names)
    more = f" ... and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def scores_to_dataframes(frame_probs: Mapping[str, np.ndarray], frame_hop: float,
                         classes: Sequence[str],
                         durations: Mapping[str, float] | None = None) -> dict:
    """Frame scores -> sed_scores_eval's score DataFrames, one per clip.

    frame_probs  clip name -> (T, K) scores (numpy or torch); frame i covers
                 [i * hop, (i + 1) * hop), as in ``labels``.
    frame_hop    seconds per frame *of these scores* (a CRNN that downsamples
                 time by 4 has 4x the log-mel hop).
    durations    clip name -> seconds. A clip shorter than the padded input
                 has scores for padding too; those must never be scored (they
                 would add false positives, or hide misses, in audio that does
                 not exist): frames starting at or after the duration are cut
                 and the last frame ends at the duration. Without durations
                 every frame is kept.

    Keys of the result are audio ids (no ".wav"), as sed_scores_eval expects.
    """
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    if not frame_hop or frame_hop <= 0:
        raise ValueError(f"frame_hop must be positive seconds, got {frame_hop}")
    classes = list(classes)
    durs = None if durations is None else _rekey(durations, "durations")
    out = {}
    for name, probs in frame_probs.items():
        cid = audio_id(name)
        if cid in out:
            raise ValueError(f"scores: {name!r} and another key both name clip {cid!r}")
        x = _as_numpy(probs)
        if x.ndim != 2 or x.shape[1] != len(classes):
            raise ValueError(f"scores of {name!r} have shape {x.shape}; expected (T, {len(classes)}) "
                             f"for the {len(classes)} classes")
        if x.shape[0] == 0:
            raise ValueError(f"scores of {name!r} have no frames")
        if not np.isfinite(x).all():
            raise ValueError(f"scores of {name!r} contain NaN or inf "
                             f"({int((~np.isfinite(x)).sum())} values)")
        n = x.shape[0]
        timestamps = np.arange(n + 1, dtype=np.float64) * frame_hop
        if durs is not None:
            if cid not in durs:
                raise ValueError(f"no duration for clip {cid!r}")
            dur = float(durs[cid])
            if not dur > 0:
                raise ValueError(f"duration of {cid!r} is {dur}; it must be positive")
            # Frames that start before the duration are kept.
            keep = int(math.ceil(dur / frame_hop - _TIME_EPS))
            if keep < n:
                x, n = x[:keep], keep
                timestamps = timestamps[:keep + 1]
            if dur - timestamps[-1] > frame_hop + _TIME_EPS:
                raise ValueError(
                    f"scores of {cid!r} cover {timestamps[-1]:.3f} s but the clip lasts {dur:.3f} s: "
                    f"is frame_hop ({frame_hop} s) the hop of these scores?")
            # The last frame ends at the clip's end: cut short where padding
            # followed, stretched by less than a hop where frames fall short
            # (e.g. 156 frames of 64 ms = 9.984 s for a 10 s clip).
            timestamps[-1] = dur
        out[cid] = create_score_dataframe(x, timestamps, event_classes=classes)
    return out


def ground_truth_from_tsv(strong_tsv, durations_tsv=None, classes: Sequence[str] | None = None,
                          durations: Mapping[str, float] | None = None):
    """A strong TSV -> (ground_truth, durations) as sed_scores_eval wants them.

    ground_truth  audio id -> [(onset, offset, label), ...]; a clip without
                  events has an empty list (it still counts: false positives
                  there cost). Overlapping events of a class are merged.
    durations     audio id -> seconds.

    PSDS needs each clip's length (false positives are counted per hour of
    audio), and a TSV of events does not give it. So durations are required:
    from ``durations_tsv`` (DESED's ``*_durations.tsv``) or the ``durations``
    dict. No 10 s default: DESED validation has ~100 shorter clips, and
    guessing would count their missing audio. The clip set is the strong TSV's
    clips plus every clip of the durations (real DESED lists event-free clips
    only in the durations file).
    """
    from .desed_format import read_durations, read_strong

    if durations_tsv is not None and durations is not None:
        raise ValueError("pass durations_tsv or durations, not both")
    if durations_tsv is not None:
        durations = read_durations(durations_tsv)
    if durations is None:
        raise ValueError("PSDS needs each clip's duration: pass durations_tsv "
                         "(e.g. metadata/validation_durations.tsv) or a durations dict")
    durs = {k: float(v) for k, v in _rekey(durations, "durations").items()}
    strong = read_strong(strong_tsv, classes=classes)
    gt: dict[str, list] = {cid: [] for cid in durs}
    missing = []
    for name in strong.filenames:
        cid = audio_id(name)
        if cid not in durs:
            missing.append(cid)
        gt.setdefault(cid, [])
    if missing:
        raise ValueError(f"{len(missing)} clip(s) of {strong_tsv} have no duration: {_few(missing)}")
    for ev in strong.events:
        gt[audio_id(ev.filename)].append((ev.onset, ev.offset, ev.label))
    gt = {k: merge_overlapping_events(v) for k, v in gt.items()}
    return gt, durs


def merge_overlapping_events(events) -> list[tuple[float, float, str]]:
    """Merge events of one class that overlap or touch into one event.

    sed_scores_eval refuses ground truth with connected or overlapping events
    of a class (AssertionError), and synthetic soundscapes can contain them
    (two dog barks drawn on top of each other). What a detector can see is
    the union, "class active", so that is what is scored."""
    by_class: dict[str, list] = {}
    for on, off, label in events:
        by_class.setdefault(label, []).append([float(on), float(off)])
    out = []
    for label, spans in by_class.items():
        spans.sort()
        merged = [spans[0]]
        for on, off in spans[1:]:
            if on <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], off)
            else:
                merged.append([on, off])
        out += [(on, off, label) for on, off in merged]
    out.sort(key=lambda e: (e[0], e[2]))
    return out


def _check_ids(scores: Mapping, ground_truth: Mapping, durations: Mapping) -> None:
    s, g, d = set(scores), set(ground_truth), set(durations)
    problems = []
    if s - g:
        problems.append(f"{len(s - g)} scored clip(s) missing from the ground truth: {_few(s - g)}")
    if g - s:
        problems.append(f"{len(g - s)} ground-truth clip(s) have no scores: {_few(g - s)}")
    if g - d:
        problems.append(f"{len(g - d)} ground-truth clip(s) have no duration: {_few(g - d)}")
    if problems:
        raise ValueError("scores, ground truth and durations must name the same clips; "
                         + "; ".join(problems))


def psds(scores: Mapping, ground_truth: Mapping, durations: Mapping,
         setting: str = "psds1", num_jobs: int = 1) -> dict:
    """PSDS of score DataFrames (from ``scores_to_dataframes``) with the DCASE settings.

    setting  "psds1" or "psds2" (see ``PSDS_SETTINGS``).
    Returns {"psds": float, "per_class": {class: psds}, "roc": (etpr, efpr)}.
    Classes with no ground-truth event cannot be scored (their TPR is
    undefined; sed_scores_eval refuses them): they are left out with a
    warning, listed in "classes_without_events", NaN in "per_class" (and
    their cross-triggers no longer count in PSDS2); with no event at all the
    PSDS is NaN.
    Keys may carry ".wav"; they are compared as audio ids. Overlapping
    events of one class in the ground truth are merged first
    (``merge_overlapping_events``).
    """
    from sed_scores_eval import intersection_based

    if setting not in PSDS_SETTINGS:
        raise ValueError(f"unknown PSDS setting {setting!r}; choose one of {', '.join(PSDS_SETTINGS)}")
    scores = _rekey(scores, "scores")
    ground_truth = _rekey(ground_truth, "ground truth")
    durations = {k: float(v) for k, v in _rekey(durations, "durations").items()}
    if not scores:
        raise ValueError("no clips to evaluate: scores are empty")
    _check_ids(scores, ground_truth, durations)
    durations = {k: durations[k] for k in ground_truth}
    ground_truth = {k: merge_overlapping_events(v) for k, v in ground_truth.items()}
    classes = [c for c in next(iter(scores.values())).columns if c not in ("onset", "offset")]
    present = {label for events in ground_truth.values() for _, _, label in events}
    unknown = present - set(classes)
    if unknown:
        raise ValueError(f"ground-truth labels not among the scored classes: {_few(unknown)}")
    absent = [c for c in classes if c not in present]
    if absent:
        # sed_scores_eval asserts every class has a ground-truth event (TPR is
        # undefined without one). Tiny sets (the smoke preset) can miss a
        # class: score the others and say so.
        warnings.warn(f"PSDS over {len(classes) - len(absent)} of {len(classes)} classes: "
                      f"no ground-truth events for {', '.join(absent)}", stacklevel=2)
        kept = ["onset", "offset"] + [c for c in classes if c in present]
        scores = {k: df[kept] for k, df in scores.items()}
    nan_classes = {c: float("nan") for c in absent}
    if len(absent) == len(classes):
        return {"psds": float("nan"), "per_class": nan_classes,
                "roc": (np.zeros(0), np.zeros(0)), "classes_without_events": absent}
    value, per_class, (etpr, efpr), _ = intersection_based.psds(
        scores, ground_truth, durations, num_jobs=num_jobs, **PSDS_SETTINGS[setting])
    per_class = {c: float(per_class[c]) if c in per_class else float("nan") for c in classes}
    return {"psds": float(value), "per_class": per_class,
            "roc": (np.asarray(etpr), np.asarray(efpr)), "classes_without_events": absent}


def evaluate_sed(frame_probs: Mapping[str, np.ndarray], frame_hop: float, classes: Sequence[str],
                 ground_truth: Mapping, durations: Mapping[str, float],
                 settings: Sequence[str] = ("psds1", "psds2")) -> dict:
    """Frame scores -> {"psds1": float, "psds2": float, "per_class": {setting: {class: psds}}}.

    The convenience a validation loop calls: cuts padding at each clip's
    duration, then runs every PSDS setting on the same DataFrames."""
    dfs = scores_to_dataframes(frame_probs, frame_hop, classes, durations)
    out: dict = {"per_class": {}}
    for setting in settings:
        r = psds(dfs, ground_truth, durations, setting)
        out[setting] = r["psds"]
        out["per_class"][setting] = r["per_class"]
    return out

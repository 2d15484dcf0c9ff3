"""Evaluation metrics.

Two families:

* Audio tagging: average precision (AP) and macro mean AP (mAP), the metric
  AudioSet pre-training (and so PaSST) is judged by.
* Sound event detection: the polyphonic sound detection score (PSDS) of
  DCASE Task 4, computed threshold-free with ``sed_scores_eval`` (the tool the
  DCASE baselines and MAT-SED report with). Model selection uses PSDS1.
  At one decision threshold: collar-based and intersection-based F1.
  Score DataFrames can be written to / read from sed_scores_eval's TSV files
  so the numbers can be recomputed independently.

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


def _prepare_for_scoring(scores: Mapping, ground_truth: Mapping, durations: Mapping, metric: str):
    """What every sed_scores_eval metric needs first.

    Rekeys to audio ids, checks that scores, ground truth and durations name
    the same clips, merges overlapping ground-truth events of a class, and
    drops the score columns of classes without any ground-truth event (with a
    warning naming them). Returns (scores, ground_truth, durations, classes,
    absent): classes are all the scored classes, absent those dropped.
    """
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
        # sed_scores_eval asserts every class has a ground-truth event (TPR and
        # recall are undefined without one). Tiny sets (the smoke preset) can
        # miss a class: score the others and say so.
        warnings.warn(f"{metric} over {len(classes) - len(absent)} of {len(classes)} classes: "
                      f"no ground-truth events for {', '.join(absent)}", stacklevel=3)
        kept = ["onset", "offset"] + [c for c in classes if c in present]
        scores = {k: df[kept] for k, df in scores.items()}
    return scores, ground_truth, durations, classes, absent


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
    scores, ground_truth, durations, classes, absent = _prepare_for_scoring(
        scores, ground_truth, durations, "PSDS")
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
                 settings: Sequence[str] = ("psds1", "psds2"), f1: bool = False) -> dict:
    """Frame scores -> {"psds1": float, "psds2": float, "per_class": {setting: {class: psds}},
    "roc": {setting: (etpr, efpr)}}.

    The convenience a validation loop calls: cuts padding at each clip's
    duration, then runs every PSDS setting on the same DataFrames. "roc"
    holds each setting's PSD-ROC (effective TPR against effective FPR per
    hour) for plotting.

    f1  also add "collar_f1" and "intersection_f1" (macro F1 at threshold 0.5
        with the DCASE settings, see ``collar_f1`` and ``intersection_f1``),
        and their per-class values, both under "per_class" (like PSDS) and
        as "collar_f1_per_class" / "intersection_f1_per_class" (what
        ``inference.format_table`` reads); off by default because
        a validation loop selects on PSDS and F1 costs two more passes."""
    dfs = scores_to_dataframes(frame_probs, frame_hop, classes, durations)
    out: dict = {"per_class": {}, "roc": {}}
    for setting in settings:
        r = psds(dfs, ground_truth, durations, setting)
        out[setting] = r["psds"]
        out["per_class"][setting] = r["per_class"]
        out["roc"][setting] = r["roc"]
    if f1:
        for name, metric in (("collar_f1", collar_f1), ("intersection_f1", intersection_f1)):
            r = metric(dfs, ground_truth, durations)
            out[name] = r["f1"]
            out["per_class"][name] = r["per_class"]
            out[f"{name}_per_class"] = r["per_class"]
    return out


# ---------------------------------------------------------------------------
# Sound event detection at one threshold: event-based F1
#
# F1 needs a decision threshold (0.5 in DCASE), so it says how a system does at
# one operating point where PSDS integrates over all of them. Both variants
# here count per class: a detection either matches a ground-truth event of its
# class (true positive) or is a false positive; unmatched ground truth events
# are misses. Averages are MACRO (the mean over classes of the per-class
# values), as DCASE reports them; sed_scores_eval's micro average is returned
# too. A class with no detection has precision 1 (sed_scores_eval's convention).


def _f1_result(f: Mapping, p: Mapping, r: Mapping, classes: Sequence[str], absent: Sequence[str]) -> dict:
    per = lambda d: {c: float(d[c]) if c in d else float("nan") for c in classes}
    return {"f1": float(f["macro_average"]), "precision": float(p["macro_average"]),
            "recall": float(r["macro_average"]), "micro_f1": float(f["micro_average"]),
            "per_class": per(f), "per_class_precision": per(p), "per_class_recall": per(r),
            "classes_without_events": list(absent)}


def _nan_f1_result(classes: Sequence[str]) -> dict:
    nan = float("nan")
    per = {c: nan for c in classes}
    return {"f1": nan, "precision": nan, "recall": nan, "micro_f1": nan, "per_class": per,
            "per_class_precision": dict(per), "per_class_recall": dict(per),
            "classes_without_events": list(classes)}


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _check_nonnegative(**values) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) \
                or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


def collar_f1(scores: Mapping, ground_truth: Mapping, durations: Mapping, threshold: float = 0.5,
              onset_collar: float = 0.2, offset_collar: float = 0.2,
              offset_collar_rate: float = 0.2, num_jobs: int = 1) -> dict:
    """Collar-based (event-based) F1 of score DataFrames at one threshold.

    The classic DCASE event-based F1 (sed_eval's, as computed by
    ``sed_scores_eval.collar_based.fscore``): a detection matches a
    ground-truth event of its class when its onset is within
    ``onset_collar`` seconds and its offset within max(``offset_collar``,
    ``offset_collar_rate`` x event length). DCASE: 0.2 s, 0.2 s, 20 %.
    A frame is active where its score exceeds ``threshold``.

    Returns {"f1": macro F1, "precision": macro precision, "recall": macro
    recall, "micro_f1", "per_class": {class: F1}, "per_class_precision",
    "per_class_recall", "classes_without_events"}. Classes with no
    ground-truth event are left out with a warning and are NaN (recall is
    undefined), as in ``psds``."""
    from sed_scores_eval import collar_based

    threshold = _check_threshold(threshold)
    _check_nonnegative(onset_collar=onset_collar, offset_collar=offset_collar,
                       offset_collar_rate=offset_collar_rate)
    scores, ground_truth, _, classes, absent = _prepare_for_scoring(
        scores, ground_truth, durations, "collar F1")
    if len(absent) == len(classes):
        return _nan_f1_result(classes)
    f, p, r, _ = collar_based.fscore(
        scores, ground_truth, threshold, onset_collar=onset_collar, offset_collar=offset_collar,
        offset_collar_rate=offset_collar_rate, num_jobs=num_jobs)
    return _f1_result(f, p, r, classes, absent)


def intersection_f1(scores: Mapping, ground_truth: Mapping, durations: Mapping,
                    threshold: float = 0.5, dtc: float = 0.5, gtc: float = 0.5,
                    cttc: float | None = None, num_jobs: int = 1) -> dict:
    """Intersection-based F1 of score DataFrames at one threshold.

    Matching as in PSDS (``sed_scores_eval.intersection_based.fscore``): a
    detection is relevant if at least ``dtc`` of its length lies in
    ground-truth events of its class (else a false positive), and a
    ground-truth event is found if relevant detections cover at least ``gtc``
    of it. The DCASE baseline reports it at threshold 0.5, dtc = gtc = 0.5,
    cttc 0.3.

    cttc  sed_scores_eval 0.0.4's F1 has no cross-trigger criterion: every
          unmatched detection is a false positive. The DCASE baseline's
          number came from psds_eval, where a detection that cross-triggers
          (>= cttc on another class's event) is not counted as a false
          positive, so that F1 can be a little higher. Any cttc other than
          None is refused rather than silently ignored.

    Returns the same dict as ``collar_f1`` (macro averages)."""
    from sed_scores_eval import intersection_based

    if cttc is not None:
        raise ValueError(f"cttc={cttc!r}: sed_scores_eval's intersection-based F1 has no "
                         "cross-trigger criterion (every unmatched detection is a false "
                         "positive); pass cttc=None")
    threshold = _check_threshold(threshold)
    _check_nonnegative(dtc=dtc, gtc=gtc)
    if not (0 < dtc <= 1 and 0 < gtc <= 1):
        raise ValueError(f"dtc and gtc must be in (0, 1], got dtc={dtc!r}, gtc={gtc!r}")
    scores, ground_truth, _, classes, absent = _prepare_for_scoring(
        scores, ground_truth, durations, "intersection F1")
    if len(absent) == len(classes):
        return _nan_f1_result(classes)
    f, p, r, _ = intersection_based.fscore(
        scores, ground_truth, threshold, dtc_threshold=dtc, gtc_threshold=gtc, num_jobs=num_jobs)
    return _f1_result(f, p, r, classes, absent)


# ---------------------------------------------------------------------------
# Score files: the DataFrames on disk, one TSV per clip, in sed_scores_eval's
# format (columns onset, offset, <classes>), so anyone can recompute every
# metric from them (sed_scores_eval also accepts the directory path directly).


def write_score_files(directory, score_dataframes: Mapping) -> list[Path]:
    """Write each clip's score DataFrame to ``directory/<audio id>.tsv``.

    Uses ``sed_scores_eval.base_modules.io.write_sed_scores`` (which checks
    the format). sed_scores_eval reads a directory as the whole evaluation
    set, so a directory already holding score files of other clips, or
    anything that is not a .tsv, is refused: stale files would be scored too.
    Files of the same clips are overwritten. Returns the paths written."""
    from sed_scores_eval.base_modules.io import write_sed_scores

    dfs = _rekey(score_dataframes, "score_dataframes")
    if not dfs:
        raise ValueError("score_dataframes is empty: nothing to write")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"directory {directory} exists and is not a directory")
    if directory.is_dir():
        others = [p.name for p in directory.iterdir()
                  if not (p.is_file() and p.suffix == ".tsv" and p.stem in dfs)]
        if others:
            raise ValueError(f"directory {directory} already holds {len(others)} other file(s) "
                             f"({_few(others)}); sed_scores_eval would read them as part of the "
                             "set: use an empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    write_sed_scores(dfs, directory)
    return [directory / f"{cid}.tsv" for cid in dfs]


def read_score_files(directory) -> dict:
    """Read a directory written by ``write_score_files`` (or by any tool in
    sed_scores_eval's format): audio id -> score DataFrame.

    Uses ``sed_scores_eval.base_modules.io.read_sed_scores``, so these are
    the DataFrames anyone else recomputing the metrics gets (pandas may read
    a score back 1 ulp off; no metric here notices)."""
    from sed_scores_eval.base_modules.io import read_sed_scores

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"directory {directory} is not a directory")
    if not any(directory.iterdir()):
        raise ValueError(f"directory {directory} holds no score files")
    return read_sed_scores(directory)

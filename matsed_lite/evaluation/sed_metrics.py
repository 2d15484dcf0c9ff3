"""Sound event detection metrics: PSDS (threshold-free) and F1 at one threshold (chapter 07).

The polyphonic sound detection score (PSDS) of DCASE Task 4 is computed with
``sed_scores_eval`` (the tool the DCASE baselines and MAT-SED report with);
model selection uses PSDS1. At one decision threshold: collar-based and
intersection-based F1. Frame probabilities become sed_scores_eval's score
DataFrames with ``scores_to_dataframes``.
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np

from .ground_truth import audio_id, by_audio_id, list_some, merge_overlapping_events
from .tagging import to_numpy

# sed_scores_eval is imported inside the functions that use it: importing it pulls
# in pandas and dcase_util (seconds of start-up), which training code that imports
# this module for model selection should pay only when it scores.

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
    durs = None if durations is None else by_audio_id(durations, "durations")
    out = {}
    for name, probs in frame_probs.items():
        cid = audio_id(name)
        if cid in out:
            raise ValueError(f"scores: {name!r} and another key both name clip {cid!r}")
        x = to_numpy(probs)
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


def _check_ids(scores: Mapping, ground_truth: Mapping, durations: Mapping) -> None:
    s, g, d = set(scores), set(ground_truth), set(durations)
    problems = []
    if s - g:
        problems.append(f"{len(s - g)} scored clip(s) missing from the ground truth: {list_some(s - g)}")
    if g - s:
        problems.append(f"{len(g - s)} ground-truth clip(s) have no scores: {list_some(g - s)}")
    if g - d:
        problems.append(f"{len(g - d)} ground-truth clip(s) have no duration: {list_some(g - d)}")
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
    scores = by_audio_id(scores, "scores")
    ground_truth = by_audio_id(ground_truth, "ground truth")
    durations = {k: float(v) for k, v in by_audio_id(durations, "durations").items()}
    if not scores:
        raise ValueError("no clips to evaluate: scores are empty")
    _check_ids(scores, ground_truth, durations)
    durations = {k: durations[k] for k in ground_truth}
    ground_truth = {k: merge_overlapping_events(v) for k, v in ground_truth.items()}
    classes = [c for c in next(iter(scores.values())).columns if c not in ("onset", "offset")]
    present = {label for events in ground_truth.values() for _, _, label in events}
    unknown = present - set(classes)
    if unknown:
        raise ValueError(f"ground-truth labels not among the scored classes: {list_some(unknown)}")
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


def _settings_for(setting: str, n_scored: int) -> dict:
    """The setting's sed_scores_eval arguments for ``n_scored`` classes with events.
    A cross-trigger is a detection of one class on another class's event: with
    a single class there is none to count (the mean over the other classes is
    empty, so the term is 0), and sed_scores_eval fails instead of returning it."""
    kw = dict(PSDS_SETTINGS[setting])
    if n_scored == 1 and kw["alpha_ct"]:
        kw.update(alpha_ct=0.0, cttc_threshold=None)
    return kw


def psds(scores: Mapping, ground_truth: Mapping, durations: Mapping,
         setting: str = "psds1", num_jobs: int = 1, deltas: Mapping | None = None) -> dict:
    """PSDS of score DataFrames (from ``scores_to_dataframes``) with the DCASE settings
    (chapter 07 checks it against a toy counted by hand).

    setting  "psds1" or "psds2" (see ``PSDS_SETTINGS``).
    Returns {"psds": float, "per_class": {class: psds}, "roc": (etpr, efpr)}.
    Classes with no ground-truth event cannot be scored (their TPR is
    undefined; sed_scores_eval refuses them): they are left out with a
    warning, listed in "classes_without_events", NaN in "per_class" (and
    their cross-triggers no longer count in PSDS2); with no event at all the
    PSDS is NaN. With events of a single class PSDS2 has no cross-trigger
    term (there is no other class to confuse it with).
    Keys may carry ".wav"; they are compared as audio ids. Overlapping
    events of one class in the ground truth are merged first
    (``merge_overlapping_events``). ``deltas``: these clips' detection counts for
    this setting, already computed (``ResampledPSDS.full``).
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
        scores, ground_truth, durations, deltas=deltas, num_jobs=num_jobs,
        **_settings_for(setting, len(classes) - len(absent)))
    per_class = {c: float(per_class[c]) if c in per_class else float("nan") for c in classes}
    return {"psds": float(value), "per_class": per_class,
            "roc": (np.asarray(etpr), np.asarray(efpr)), "classes_without_events": absent}


class ResampledPSDS:
    """PSDS of any resample of a fixed set of clips, each clip's detections counted once.

    sed_scores_eval counts, per clip and class, how the true positives, false
    positives and cross-triggers change as the threshold falls (its "deltas");
    PSDS then only sums them over clips and integrates the ROC. A clip drawn k
    times by a bootstrap contributes its deltas k times, so a resample costs the
    sum and the integral, not the detection matching: 10-20x faster than scoring
    renamed DataFrames, with the same value (``tests/test_bootstrap.py``).

    ``ResampledPSDS(scores, ground_truth, durations, "psds1")(pairs)`` takes
    (new id, original id) pairs as ``bootstrap.resample_clips`` draws them.
    A resample that misses a class the full set has is scored the slow way
    (``psds`` leaves the class out, as it would for those clips).
    """

    def __init__(self, scores: Mapping, ground_truth: Mapping, durations: Mapping,
                 setting: str = "psds1"):
        from sed_scores_eval import intersection_based

        if setting not in PSDS_SETTINGS:
            raise ValueError(f"unknown PSDS setting {setting!r}; choose one of {', '.join(PSDS_SETTINGS)}")
        self.setting = setting
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # psds() on the full set says which classes are absent
            self.scores, self.ground_truth, self.durations, classes, absent = _prepare_for_scoring(
                scores, ground_truth, durations, "PSDS")
        self.present = set(classes) - set(absent)
        s = _settings_for(setting, len(self.present))
        self._criteria = {k: s[k] for k in ("dtc_threshold", "gtc_threshold", "cttc_threshold")}
        self._rest = {k: v for k, v in s.items() if k not in self._criteria}
        self.deltas = (intersection_based.intermediate_statistics_deltas(
            self.scores, self.ground_truth, **self._criteria) if self.present else None)

    def full(self) -> dict:
        """``psds`` of all the clips, from the counts already made."""
        return psds(self.scores, self.ground_truth, self.durations, self.setting,
                    deltas=self.deltas)

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> float:
        from sed_scores_eval import intersection_based

        gt = {new: self.ground_truth[audio_id(old)] for new, old in pairs}
        dur = {new: self.durations[audio_id(old)] for new, old in pairs}
        if not self.present:
            return float("nan")
        if {label for events in gt.values() for _, _, label in events} != self.present:
            return psds({new: self.scores[audio_id(old)] for new, old in pairs}, gt, dur,
                        self.setting)["psds"]
        deltas = {new: self.deltas[audio_id(old)] for new, old in pairs}
        value = intersection_based.psds(scores=None, ground_truth=gt, audio_durations=dur,
                                        deltas=deltas, **self._criteria, **self._rest)[0]
        return float(value)


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




def operating_points(scores: Mapping, ground_truth: Mapping, durations: Mapping,
                     thresholds: Sequence[float], setting: str = "psds1") -> dict:
    """Where single thresholds sit on the PSD-ROC (chapter 07's explorer).

    For each threshold: {class: (FPR per hour, TPR)} counted with the setting's
    detection and ground-truth tolerance criteria (DTC, GTC), no cross-triggers,
    as sed_scores_eval counts them (a frame is active where its score is strictly
    above the threshold). Classes without ground-truth events are left out, as
    in ``psds``. One pass over the scores for all thresholds."""
    from sed_scores_eval.base_modules.precision_recall import single_fscore_from_intermediate_statistics
    from sed_scores_eval.intersection_based.intermediate_statistics import accumulated_intermediate_statistics

    if setting not in PSDS_SETTINGS:
        raise ValueError(f"unknown PSDS setting {setting!r}; choose one of {', '.join(PSDS_SETTINGS)}")
    scores, ground_truth, durations, classes, absent = _prepare_for_scoring(
        scores, ground_truth, durations, "PSD-ROC points")
    s = PSDS_SETTINGS[setting]
    stats, _ = accumulated_intermediate_statistics(
        scores=scores, ground_truth=ground_truth, dtc_threshold=s["dtc_threshold"],
        gtc_threshold=s["gtc_threshold"])
    hours = sum(durations.values()) / 3600.0
    out = {}
    for t in thresholds:
        *_, counts = single_fscore_from_intermediate_statistics(stats, threshold=float(t))
        out[float(t)] = {c: (float(counts[c]["fps"]) / hours,
                             float(counts[c]["tps"]) / max(int(counts[c]["n_ref"]), 1))
                         for c in classes if c not in absent}
    return out

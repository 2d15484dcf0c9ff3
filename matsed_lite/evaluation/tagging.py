"""Audio tagging metrics: average precision per class and macro mAP (chapter 01).

AudioSet pre-training (and so PaSST) is judged by mAP; chapter 01 scores the
PaSST-lite tagger with it.

AP summarises a ranking: sort the clips by score, and at every distinct score
threshold record precision and recall; AP = sum over thresholds of
(recall gain) x (precision there). Tied scores form one threshold (they are
all in or all out together), so AP does not depend on how ties are ordered.
This is the same definition as scikit-learn's ``average_precision_score``
(no interpolation).
"""
from __future__ import annotations

import numpy as np
import torch


def to_numpy(x) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def average_precision(scores, targets) -> float:
    """AP of one class: scores (N,), binary targets (N,). NaN if there is no positive
    (AP is undefined: recall never moves)."""
    s, t = to_numpy(scores).ravel(), to_numpy(targets).ravel() > 0.5
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
    s, t = to_numpy(scores), to_numpy(targets)
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



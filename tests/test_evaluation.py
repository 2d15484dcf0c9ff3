"""Average precision and macro mAP against hand-computed values."""
import math

import numpy as np
import pytest
import torch

from matsed_lite.evaluation.tagging import (average_precision, average_precision_per_class,
                                            mean_average_precision)


def test_ap_hand_example():
    # Ranked: + - + - : P@1 = 1 at recall 0.5, P@3 = 2/3 at recall 1.
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # Order of the input does not matter.
    assert average_precision([0.6, 0.7, 0.8, 0.9], [0, 1, 0, 1]) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ap_perfect_and_worst():
    assert average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == pytest.approx(1.0)
    # Positive ranked last of 4: precision 1/4 at recall 1.
    assert average_precision([0.9, 0.8, 0.7, 0.1], [0, 0, 0, 1]) == pytest.approx(0.25)
    assert average_precision([0.3, 0.2], [1, 1]) == pytest.approx(1.0)


def test_ap_ties_form_one_threshold():
    # Scores 0.5, 0.5 tie (one +, one -): precision 1/2 at recall 1/2, then 2/3 at 1.
    expected = 0.5 * 0.5 + 0.5 * 2 / 3
    assert average_precision([0.5, 0.5, 0.2], [1, 0, 1]) == pytest.approx(expected)
    assert average_precision([0.5, 0.5, 0.2], [0, 1, 1]) == pytest.approx(expected)
    # All scores equal: AP = prevalence.
    assert average_precision([0.1] * 5, [1, 0, 0, 1, 0]) == pytest.approx(0.4)


def test_class_without_positives_is_nan_and_excluded_from_map():
    assert math.isnan(average_precision([0.2, 0.4], [0, 0]))
    scores = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.4], [0.7, 0.3, 0.3], [0.6, 0.4, 0.2]])
    targets = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
    ap = average_precision_per_class(scores, targets)
    assert ap[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert math.isnan(ap[1])
    assert ap[2] == pytest.approx(0.25)
    assert mean_average_precision(scores, targets) == pytest.approx((ap[0] + ap[2]) / 2)
    assert math.isnan(mean_average_precision(scores, np.zeros_like(targets)))


def test_accepts_tensors_and_checks_shapes():
    s, t = torch.tensor([[0.9], [0.1]]), torch.tensor([[1.0], [0.0]])
    assert mean_average_precision(s, t) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        average_precision([0.1, 0.2], [1])


def test_matches_brute_force_definition():
    """AP = mean over positives of the precision at that positive's threshold."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.integers(0, 6, 30) / 5.0   # many ties
        t = rng.random(30) < 0.3
        if not t.any():
            continue
        brute = np.mean([(t & (s >= s[i])).sum() / (s >= s[i]).sum() for i in np.nonzero(t)[0]])
        assert average_precision(s, t) == pytest.approx(brute)


# ---------------------------------------------------------------------------
# Event-based F1 and score files (sed_scores_eval)

import warnings as _warnings

from matsed_lite.evaluation.score_files import read_score_files, write_score_files
from matsed_lite.evaluation.sed_metrics import (collar_f1, evaluate_sed, intersection_f1, psds,
                                                scores_to_dataframes)
from matsed_lite.data.labels import events_to_frames

HOP = 0.05                       # 200 frames per 10 s; any hop works, this one is exact
CLASSES = ["Cat", "Dog"]
DURS = {"a": 10.0, "b": 10.0, "c": 8.0}
GT = {"a": [(1.0, 3.0, "Cat"), (5.0, 6.0, "Dog")],
      "b": [(6.0, 8.0, "Cat"), (2.0, 4.0, "Dog")],
      "c": []}


def _dfs(detections, durations=DURS):
    """Binary frame scores that are 1 exactly on the given events."""
    frames = {k: events_to_frames(detections.get(k, []), CLASSES, 200, HOP) for k in durations}
    return scores_to_dataframes(frames, HOP, CLASSES, durations)


def test_f1_perfect_detections():
    dfs = _dfs(GT)
    for metric in (collar_f1, intersection_f1):
        r = metric(dfs, GT, DURS)
        assert r["f1"] == pytest.approx(1.0) and r["micro_f1"] == pytest.approx(1.0)
        assert r["precision"] == pytest.approx(1.0) and r["recall"] == pytest.approx(1.0)
        assert r["per_class"] == pytest.approx({"Cat": 1.0, "Dog": 1.0})
        assert r["classes_without_events"] == []


def test_f1_partial_case_by_hand():
    # Cat: one of two events found -> P 1, R 1/2, F 2/3.
    # Dog: both found plus one false alarm in clip c -> P 2/3, R 1, F 0.8.
    det = {"a": [(1.0, 3.0, "Cat"), (5.0, 6.0, "Dog")],
           "b": [(2.0, 4.0, "Dog")],
           "c": [(7.0, 8.0, "Dog")]}
    for metric in (collar_f1, intersection_f1):
        r = metric(_dfs(det), GT, DURS)
        assert r["per_class_recall"] == pytest.approx({"Cat": 0.5, "Dog": 1.0})
        assert r["per_class_precision"] == pytest.approx({"Cat": 1.0, "Dog": 2 / 3})
        assert r["per_class"] == pytest.approx({"Cat": 2 / 3, "Dog": 0.8})
        assert r["f1"] == pytest.approx((2 / 3 + 0.8) / 2)          # macro
        assert r["recall"] == pytest.approx(0.75) and r["precision"] == pytest.approx(5 / 6)
        assert r["micro_f1"] == pytest.approx(0.75)                 # 3 TP, 1 FP, 1 FN


def _cat_only(onset, offset):
    """Clip a's Cat event (1.0-3.0 s, 2 s long) detected as onset-offset; Dog perfect."""
    det = {k: [e for e in v if e[2] == "Dog"] for k, v in GT.items()}
    det["b"] = GT["b"]
    det["a"] = det["a"] + [(onset, offset, "Cat")]
    return _dfs(det)


def test_collar_behaviour():
    cat = lambda r: r["per_class"]["Cat"]
    # Onset 0.15 s late passes the 0.2 s collar; 0.3 s late fails.
    assert cat(collar_f1(_cat_only(1.15, 3.0), GT, DURS)) == pytest.approx(1.0)
    assert cat(collar_f1(_cat_only(1.3, 3.0), GT, DURS)) == pytest.approx(0.5)   # 1 TP, 1 FP, 1 FN
    assert cat(collar_f1(_cat_only(1.3, 3.0), GT, DURS, onset_collar=0.35)) == pytest.approx(1.0)
    # Offset collar is max(0.2 s, 20 % of 2 s = 0.4 s): 0.35 s late passes, 0.5 s fails.
    assert cat(collar_f1(_cat_only(1.0, 3.35), GT, DURS)) == pytest.approx(1.0)
    assert cat(collar_f1(_cat_only(1.0, 3.5), GT, DURS)) == pytest.approx(0.5)
    assert cat(collar_f1(_cat_only(1.0, 3.35), GT, DURS, offset_collar_rate=0.0)) == pytest.approx(0.5)
    # Intersection-based matching does not care about the 0.3 s: 85 % of the event is covered.
    assert cat(intersection_f1(_cat_only(1.3, 3.0), GT, DURS)) == pytest.approx(1.0)
    # ... until coverage drops under gtc = 0.5: the event is missed, but the detection lies
    # inside it (dtc met), so it is no false positive: P 1, R 1/2.
    assert cat(intersection_f1(_cat_only(2.1, 3.0), GT, DURS)) == pytest.approx(2 / 3)


def test_f1_class_without_events_and_errors():
    gt = {k: [e for e in v if e[2] != "Cat"] for k, v in GT.items()}
    with pytest.warns(UserWarning, match="Cat"):
        r = collar_f1(_dfs(gt), gt, DURS)
    assert math.isnan(r["per_class"]["Cat"]) and r["f1"] == pytest.approx(1.0)
    assert r["classes_without_events"] == ["Cat"]
    with pytest.raises(ValueError, match="cttc"):
        intersection_f1(_dfs(GT), GT, DURS, cttc=0.3)
    with pytest.raises(ValueError, match="threshold"):
        collar_f1(_dfs(GT), GT, DURS, threshold=float("nan"))
    with pytest.raises(ValueError, match="onset_collar"):
        collar_f1(_dfs(GT), GT, DURS, onset_collar=-0.1)
    with pytest.raises(ValueError, match="c"):
        collar_f1({k: v for k, v in _dfs(GT).items() if k != "c"}, GT, DURS)


def _noisy_frames(seed=0):
    rng = np.random.default_rng(seed)
    return {k: np.clip(events_to_frames(GT[k], CLASSES, 200, HOP) * 0.6 + rng.random((200, 2)) * 0.5,
                       0, 1).astype(np.float32) for k in DURS}


def test_evaluate_sed_with_f1_and_roc():
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        r = evaluate_sed(_noisy_frames(), HOP, CLASSES, GT, DURS, f1=True)
        plain = evaluate_sed(_noisy_frames(), HOP, CLASSES, GT, DURS)
    assert plain["psds1"] == pytest.approx(r["psds1"]) and "collar_f1" not in plain
    dfs = scores_to_dataframes(_noisy_frames(), HOP, CLASSES, DURS)
    assert r["collar_f1"] == pytest.approx(collar_f1(dfs, GT, DURS)["f1"])
    assert r["intersection_f1"] == pytest.approx(intersection_f1(dfs, GT, DURS)["f1"])
    assert set(r["per_class"]) == {"psds1", "psds2", "collar_f1", "intersection_f1"}
    assert set(r["per_class"]["collar_f1"]) == set(CLASSES)
    assert r["collar_f1_per_class"] == r["per_class"]["collar_f1"]
    for setting in ("psds1", "psds2"):
        etpr, efpr = r["roc"][setting]
        assert etpr.shape == efpr.shape and len(etpr) > 1


def test_score_files_round_trip(tmp_path):
    dfs = scores_to_dataframes({k + ".wav": v for k, v in _noisy_frames(1).items()}, HOP, CLASSES, DURS)
    paths = write_score_files(tmp_path / "scores", dfs)
    assert sorted(p.name for p in paths) == ["a.tsv", "b.tsv", "c.tsv"]
    back = read_score_files(tmp_path / "scores")
    assert set(back) == set(dfs)
    for k in dfs:
        assert list(back[k].columns) == ["onset", "offset"] + CLASSES
        np.testing.assert_allclose(back[k].to_numpy(), dfs[k].to_numpy(), rtol=1e-12, atol=0)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        for setting in ("psds1", "psds2"):
            assert psds(back, GT, DURS, setting)["psds"] == pytest.approx(
                psds(dfs, GT, DURS, setting)["psds"], rel=1e-12)
    # Rewriting the same clips is fine; a directory with other files is not.
    write_score_files(tmp_path / "scores", dfs)
    (tmp_path / "scores" / "stale_clip.tsv").write_text("x")
    with pytest.raises(ValueError, match="stale_clip"):
        write_score_files(tmp_path / "scores", dfs)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no score files"):
        read_score_files(tmp_path / "empty")

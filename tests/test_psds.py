"""PSDS through sed_scores_eval: perfect vs random vs shuffled scores, padding, ids, errors."""

import numpy as np
import pytest

from matsed_lite.data.desed_format import Event, write_durations, write_strong
from matsed_lite.evaluation.ground_truth import (audio_id, ground_truth_from_tsv,
                                                 merge_overlapping_events)
from matsed_lite.evaluation.sed_metrics import evaluate_sed, psds, scores_to_dataframes
from matsed_lite.data.labels import events_to_frames
from matsed_lite.presets import DESED_CLASSES as C

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

HOP = 0.08   # the CRNN's rate on the lite presets: 125 frames per 10 s
T = 125


@pytest.fixture(scope="module")
def data():
    """16 clips, every class present, every 4th clip 7.3 s long, one clip silent."""
    rng = np.random.default_rng(0)
    gt, durs = {}, {}
    for i in range(16):
        d = 7.3 if i % 4 == 0 else 10.0
        events = []
        if i != 5:
            for j in range(2):
                on = rng.uniform(0, d - 1.5)
                off = min(d, on + rng.uniform(0.5, 4.0))
                events.append((round(on, 3), round(off, 3), C[(2 * i + j) % 10]))
        gt[f"clip_{i:02d}"] = events
        durs[f"clip_{i:02d}"] = d
    return gt, durs


def _perfect(gt):
    return {k: events_to_frames(v, C, T, HOP) for k, v in gt.items()}


def test_perfect_beats_random(data):
    gt, durs = data
    perfect = evaluate_sed(_perfect(gt), HOP, C, gt, durs)
    rng = np.random.default_rng(1)
    rand = evaluate_sed({k: rng.random((T, 10)) for k in gt}, HOP, C, gt, durs)
    assert perfect["psds1"] > 0.95 and perfect["psds2"] > 0.95
    assert rand["psds1"] < 0.2 and rand["psds2"] < 0.3
    assert set(perfect["per_class"]["psds1"]) == set(C)


def test_shuffled_classes_score_low(data):
    gt, durs = data
    shuffled = {k: v[:, np.roll(np.arange(10), 3)] for k, v in _perfect(gt).items()}
    r = evaluate_sed(shuffled, HOP, C, gt, durs)
    assert r["psds1"] < 0.2 and r["psds2"] < 0.2


def test_padding_is_never_scored(data):
    gt, durs = data
    probs = _perfect(gt)
    noisy = {k: v.copy() for k, v in probs.items()}
    for k, v in noisy.items():
        start = int(np.ceil(durs[k] / HOP))
        v[start:] = 1.0  # every class "active" in the padding
    a = evaluate_sed(probs, HOP, C, gt, durs)
    b = evaluate_sed(noisy, HOP, C, gt, durs)
    assert a["psds1"] == pytest.approx(b["psds1"]) and a["psds2"] == pytest.approx(b["psds2"])
    df = scores_to_dataframes(noisy, HOP, C, durs)["clip_00"]
    assert df["offset"].iloc[-1] == pytest.approx(7.3)
    assert len(df) == int(np.ceil(7.3 / HOP))
    # Gapless, non-zero frames.
    assert np.allclose(df["onset"].values[1:], df["offset"].values[:-1])
    assert (df["offset"] > df["onset"]).all()


def test_psds_result_structure(data):
    gt, durs = data
    dfs = scores_to_dataframes(_perfect(gt), HOP, C, durs)
    r = psds(dfs, gt, durs, "psds2")
    etpr, efpr = r["roc"]
    assert etpr.shape == efpr.shape and len(etpr) > 0
    assert r["classes_without_events"] == []
    with pytest.raises(ValueError, match="unknown PSDS setting"):
        psds(dfs, gt, durs, "psds3")


def test_wav_suffix_is_ignored(data):
    gt, durs = data
    probs = {k + ".wav": v for k, v in _perfect(gt).items()}
    durs_wav = {k + ".wav": d for k, d in durs.items()}
    r = evaluate_sed(probs, HOP, C, gt, durs_wav)
    assert r["psds1"] > 0.95
    assert audio_id("audio/validation/x_1.wav") == "x_1" and audio_id("x_1") == "x_1"
    assert set(scores_to_dataframes(probs, HOP, C)) == set(gt)


def test_id_mismatch_errors_name_clips(data):
    gt, durs = data
    probs = _perfect(gt)
    extra = dict(probs, stray_clip=probs["clip_01"])
    with pytest.raises(ValueError, match="stray_clip"):
        evaluate_sed(extra, HOP, C, gt, dict(durs, stray_clip=10.0))
    fewer = {k: v for k, v in probs.items() if k != "clip_03"}
    with pytest.raises(ValueError, match="clip_03"):
        evaluate_sed(fewer, HOP, C, gt, durs)
    with pytest.raises(ValueError, match="no duration"):
        scores_to_dataframes(probs, HOP, C, {k: d for k, d in durs.items() if k != "clip_02"})


def test_shape_and_nan_errors(data):
    gt, durs = data
    probs = _perfect(gt)
    with pytest.raises(ValueError, match=r"expected \(T, 10\)"):
        scores_to_dataframes({"clip_00": probs["clip_00"][:, :9]}, HOP, C)
    bad = probs["clip_00"].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        scores_to_dataframes({"clip_00": bad}, HOP, C)
    # Scores covering far less than the clip: the hop must be wrong.
    with pytest.raises(ValueError, match="frame_hop"):
        scores_to_dataframes({"clip_01": probs["clip_01"]}, HOP / 4, C, durs)


def test_missing_class_is_left_out_with_warning(data):
    gt, durs = data
    gt2 = {k: [e for e in v if e[2] != "Cat"] for k, v in gt.items()}
    with pytest.warns(UserWarning, match="Cat"):
        r = evaluate_sed(_perfect(gt2), HOP, C, gt2, durs)
    assert r["psds1"] > 0.95 and np.isnan(r["per_class"]["psds1"]["Cat"])


def test_merge_overlapping_events():
    ev = [(1.0, 3.0, "Dog"), (2.0, 4.0, "Dog"), (4.0, 5.0, "Dog"), (6.0, 7.0, "Dog"),
          (2.5, 3.5, "Cat")]
    assert merge_overlapping_events(ev) == [(1.0, 5.0, "Dog"), (2.5, 3.5, "Cat"), (6.0, 7.0, "Dog")]


def test_ground_truth_from_tsv(tmp_path, data):
    gt, durs = data
    events = [Event(k + ".wav", on, off, lab) for k, v in gt.items() for on, off, lab in v]
    write_strong(tmp_path / "val.tsv", events, empty_files=["clip_05.wav"])
    write_durations(tmp_path / "dur.tsv", {k + ".wav": d for k, d in durs.items()})
    gt2, durs2 = ground_truth_from_tsv(tmp_path / "val.tsv", tmp_path / "dur.tsv", classes=C)
    assert set(gt2) == set(gt) and gt2["clip_05"] == []
    assert durs2["clip_00"] == pytest.approx(7.3)
    assert sorted(gt2["clip_01"]) == sorted(merge_overlapping_events(gt["clip_01"]))
    with pytest.raises(ValueError, match="duration"):
        ground_truth_from_tsv(tmp_path / "val.tsv")
    with pytest.raises(ValueError, match="no duration"):
        ground_truth_from_tsv(tmp_path / "val.tsv", durations={"clip_00.wav": 7.3})


def test_operating_points_on_a_toy_counted_by_hand():
    """Chapter 07's toy: one hour of audio, so one false positive is 1 per hour."""
    from sed_scores_eval.base_modules.scores import create_score_dataframe
    from matsed_lite.evaluation.sed_metrics import operating_points

    classes = ["Cat", "Dog"]
    segs = {"A": [(10, 20, "Dog", 0.80), (300, 310, "Dog", 0.95), (1000, 1010, "Dog", 0.60),
                  (1200, 1210, "Cat", 0.40)],
            "B": [(100, 110, "Cat", 0.90), (200, 210, "Cat", 0.50), (500, 510, "Dog", 0.85)]}
    truth = {"A": [(10.0, 20.0, "Dog"), (300.0, 310.0, "Dog")],
             "B": [(100.0, 110.0, "Cat"), (200.0, 210.0, "Cat")]}
    durations = {"A": 1800.0, "B": 1800.0}

    def frame(s):
        edges = sorted({0.0, 1800.0} | {float(t) for x in s for t in x[:2]})
        v = np.zeros((len(edges) - 1, 2))
        for on, off, c, p in s:
            v[edges.index(on), classes.index(c)] = p
        return create_score_dataframe(v, np.array(edges), classes)

    scores = {k: frame(v) for k, v in segs.items()}
    pts = operating_points(scores, truth, durations, [0.7, 0.45])
    assert pts[0.7]["Dog"] == pytest.approx((1.0, 1.0)) and pts[0.7]["Cat"] == pytest.approx((0.0, 0.5))
    assert pts[0.45]["Dog"] == pytest.approx((2.0, 1.0)) and pts[0.45]["Cat"] == pytest.approx((0.0, 1.0))
    assert psds(scores, truth, durations, "psds1")["psds"] == pytest.approx(0.995, abs=1e-6)

"""Bootstrap intervals over clips and frame AP per class."""
import numpy as np
import pytest

from matsed_lite.data.labels import events_to_frames
from matsed_lite.evaluation.bootstrap import (bootstrap_intervals, frame_ap_per_class,
                                              paired_bootstrap,
                                              resample_clips)
from matsed_lite.evaluation.sed_metrics import evaluate_sed

CLASSES = ["a", "b"]
HOP = 0.1


def _set(n=24, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    gt, durations, scores = {}, {}, {}
    for i in range(n):
        name = f"clip_{i:02d}.wav"
        on = float(rng.uniform(0, 6))
        events = [(on, on + float(rng.uniform(1, 3)), CLASSES[i % 2])]
        gt[name], durations[name] = events, 10.0
        y = events_to_frames(events, CLASSES, 100, HOP)
        scores[name] = np.clip(y * (1 - noise) + noise * rng.random(y.shape), 0, 1)
    return scores, gt, durations


def test_resampling_keeps_the_count_and_names_copies_apart():
    pairs = resample_clips(["x", "y", "z"], np.random.default_rng(1))
    assert len(pairs) == 3
    assert len({new for new, _ in pairs}) == 3
    assert all(new.split("#")[0] == old for new, old in pairs)


def test_intervals_bracket_the_score_and_widen_with_noise():
    scores, gt, dur = _set(noise=0.6)
    full = evaluate_sed(scores, HOP, CLASSES, gt, dur)
    iv = bootstrap_intervals(scores, HOP, CLASSES, gt, dur, n_resamples=30, seed=0)
    lo, hi = iv["psds1"]
    assert lo < hi and lo - 0.05 <= full["psds1"] <= hi + 0.05
    assert iv == bootstrap_intervals(scores, HOP, CLASSES, gt, dur, n_resamples=30, seed=0)
    s0, g0, d0 = _set(noise=0.0)
    clean = bootstrap_intervals(s0, HOP, CLASSES, g0, d0, n_resamples=30, seed=0)
    assert clean["psds1"][1] - clean["psds1"][0] < hi - lo
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_intervals(scores, HOP, CLASSES, gt, dur, n_resamples=1)


def test_frame_ap_is_one_for_perfect_scores_and_lower_for_noise():
    s, g, d = _set(noise=0.0)
    assert frame_ap_per_class(s, HOP, CLASSES, g, d) == {"a": pytest.approx(1.0),
                                                         "b": pytest.approx(1.0)}
    s, g, d = _set(noise=0.9, seed=2)
    ap = frame_ap_per_class(s, HOP, CLASSES, g, d)
    assert all(0 < v < 0.95 for v in ap.values())


def test_paired_bootstrap_keeps_single_intervals_and_sees_a_paired_gap():
    scores, gt, dur = _set(noise=0.3)
    # misses every event of one clip in three: lower on every resample that draws one
    worse = {k: v * (i % 3 != 0) for i, (k, v) in enumerate(scores.items())}
    res = paired_bootstrap({"a": scores, "same": dict(scores), "worse": worse}, HOP, CLASSES,
                           gt, dur, n_resamples=30, seed=0)
    # the reference's interval is bootstrap_intervals' (same draws)
    assert res["intervals"]["a"] == bootstrap_intervals(scores, HOP, CLASSES, gt, dur,
                                                        n_resamples=30, seed=0)
    assert res["differences"]["same"] == {"psds1": (0.0, 0.0), "psds2": (0.0, 0.0)}
    lo, hi = res["differences"]["worse"]["psds1"]
    a, w = evaluate_sed(scores, HOP, CLASSES, gt, dur), evaluate_sed(worse, HOP, CLASSES, gt, dur)
    assert 0 < a["psds1"] - w["psds1"] < 1
    assert hi < 0 and lo <= w["psds1"] - a["psds1"] <= hi
    assert "a" not in res["differences"]


def test_paired_bootstrap_refuses_systems_on_other_clips():
    scores, gt, dur = _set()
    fewer = dict(list(scores.items())[:-1])
    with pytest.raises(ValueError, match="'short' scores other clips than 'full'"):
        paired_bootstrap({"full": scores, "short": fewer}, HOP, CLASSES, gt, dur, n_resamples=2)


def test_resampled_psds_equals_scoring_the_renamed_clips():
    from matsed_lite.evaluation.sed_metrics import ResampledPSDS, psds, scores_to_dataframes

    scores, gt, dur = _set(n=30, noise=0.5, seed=3)
    # overlapping events of one class: psds merges them; the resampler must too
    gt["clip_00.wav"] = gt["clip_00.wav"] + [(gt["clip_00.wav"][0][0] + 0.5, 9.0, "a")]
    dfs = scores_to_dataframes({k[:-4]: v for k, v in scores.items()}, HOP, CLASSES,
                               {k[:-4]: v for k, v in dur.items()})
    ids = sorted(dfs)
    rng = np.random.default_rng(0)
    for setting in ("psds1", "psds2"):
        fast = ResampledPSDS(dfs, gt, dur, setting)
        assert fast(list(zip(ids, ids))) == pytest.approx(psds(dfs, gt, dur, setting)["psds"], abs=1e-12)
        for _ in range(3):
            pairs = resample_clips(ids, rng)
            slow = psds({n: dfs[o] for n, o in pairs}, {n: gt[o + ".wav"] for n, o in pairs},
                        {n: dur[o + ".wav"] for n, o in pairs}, setting)["psds"]
            assert fast(pairs) == pytest.approx(slow, abs=1e-12)
    # a resample of class-"a" clips only has no "b" event: scored without "b", like psds does
    only_a = [(i, i) for i in ids if gt[i + ".wav"][0][2] == "a"]
    for setting in ("psds1", "psds2"):
        fast = ResampledPSDS(dfs, gt, dur, setting)
        with pytest.warns(UserWarning, match="1 of 2 classes"):
            expect = psds({n: dfs[o] for n, o in only_a}, {n: gt[o + ".wav"] for n, o in only_a},
                          {n: dur[o + ".wav"] for n, o in only_a}, setting)["psds"]
        with pytest.warns(UserWarning, match="1 of 2 classes"):
            assert fast(only_a) == pytest.approx(expect, abs=1e-12)
        assert 0 < expect <= 1
    with pytest.raises(ValueError, match="unknown PSDS setting"):
        ResampledPSDS(dfs, gt, dur, "psds3")


def test_psds2_of_a_single_class_has_no_cross_trigger_term():
    """With one class there is nothing to cross-trigger on: PSDS2 is the same
    computation without its CT term (sed_scores_eval alone fails here), both
    for a one-class set and for the counts-once resampler."""
    from sed_scores_eval import intersection_based

    from matsed_lite.evaluation.sed_metrics import PSDS_SETTINGS, ResampledPSDS, psds, scores_to_dataframes

    scores, gt, dur = _set(n=20, noise=0.5, seed=7)
    keep = [k for k in sorted(scores) if gt[k][0][2] == "a"]
    one = {k[:-4]: scores[k][:, :1] for k in keep}
    dfs = scores_to_dataframes(one, HOP, CLASSES[:1], {k[:-4]: dur[k] for k in keep})
    gt1, dur1 = {k: gt[k] for k in keep}, {k: dur[k] for k in keep}
    got = psds(dfs, gt1, dur1, "psds2")
    no_ct = {**PSDS_SETTINGS["psds2"], "alpha_ct": 0.0, "cttc_threshold": None}
    expect = intersection_based.psds(dfs, {k[:-4]: v for k, v in gt1.items()},
                                     {k[:-4]: v for k, v in dur1.items()}, **no_ct)[0]
    assert got["psds"] == pytest.approx(float(expect), abs=1e-12) and 0 < got["psds"] <= 1
    ids = sorted(dfs)
    assert ResampledPSDS(dfs, gt1, dur1, "psds2")(list(zip(ids, ids))) == pytest.approx(got["psds"], abs=1e-12)


def test_full_set_from_the_counts_equals_psds():
    from matsed_lite.evaluation.sed_metrics import ResampledPSDS, psds, scores_to_dataframes

    scores, gt, dur = _set(n=20, noise=0.4, seed=5)
    dfs = scores_to_dataframes(scores, HOP, CLASSES, dur)
    for setting in ("psds1", "psds2"):
        full, direct = ResampledPSDS(dfs, gt, dur, setting).full(), psds(dfs, gt, dur, setting)
        assert full["psds"] == pytest.approx(direct["psds"], abs=1e-12)
        assert full["per_class"] == pytest.approx(direct["per_class"], abs=1e-12)

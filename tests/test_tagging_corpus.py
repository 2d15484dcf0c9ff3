"""The broad tagging corpus (data/tagging_corpus.py and its sound families)."""
import time

import numpy as np
import pytest
import torch

from matsed_lite.data.desed_lite import PEAK_LIMIT, active_rms
from matsed_lite.data.event_sounds import MIN_EVENT_SECONDS, synthesize_event
from matsed_lite.data.features import LogMel
from matsed_lite.data.tagging_corpus import (
    DESED_INDICES,
    FAMILY_CLASSES,
    FAMILY_SECONDS,
    StreamedTaggingClips,
    draw_family_duration,
    render_tagging_clip,
    streamed_epochs,
    synthesize_family_event,
    tagging_clip_events,
)
from matsed_lite.presets import DESED_CLASSES, get_preset

SR = 16000
NEW_CLASSES = [c for c in FAMILY_CLASSES if c not in DESED_CLASSES]


def _rng(seed):
    return np.random.default_rng(seed)


def test_class_list_is_broad_and_holds_the_desed_classes():
    assert len(FAMILY_CLASSES) >= 40
    assert len(set(FAMILY_CLASSES)) == len(FAMILY_CLASSES)
    assert list(FAMILY_CLASSES) == sorted(FAMILY_CLASSES)
    assert set(DESED_CLASSES) <= set(FAMILY_CLASSES)
    assert [FAMILY_CLASSES[i] for i in DESED_INDICES] == list(DESED_CLASSES)
    assert set(NEW_CLASSES) == set(FAMILY_SECONDS)


def test_desed_classes_are_the_event_sounds_models():
    for label in DESED_CLASSES:
        a = synthesize_family_event(label, _rng(3), SR, 1.1)
        b = synthesize_event(label, _rng(3), SR, 1.1)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("label", FAMILY_CLASSES)
def test_every_class_renders_sound_of_the_requested_length(label):
    for seed in range(4):
        for duration in (MIN_EVENT_SECONDS, 1.337, 5.0):
            x = synthesize_family_event(label, _rng(seed), SR, duration)
            assert x.dtype == np.float32 and x.ndim == 1
            assert len(x) == round(duration * SR)
            assert np.isfinite(x).all()
            assert np.abs(x).max() == pytest.approx(1.0, abs=1e-5)  # peak-normalised
            # not near-silent while it sounds (a crest factor under 40 dB; plain RMS
            # would fail sparse classes, and DESED's Frying goes down to about 0.02)
            assert active_rms(x, SR) > 0.01, (label, seed, duration)
    # also at a class-typical length, and at other sample rates
    x = synthesize_family_event(label, _rng(11), SR)
    assert MIN_EVENT_SECONDS * SR - 1 <= len(x) <= 10.0 * SR + 1 and np.isfinite(x).all()
    for sr in (22050, 32000):
        x = synthesize_family_event(label, _rng(5), sr, 0.8)
        assert len(x) == round(0.8 * sr) and np.isfinite(x).all()


def test_events_are_deterministic_and_vary():
    for label in NEW_CLASSES:
        a = synthesize_family_event(label, _rng(7), SR, 1.0)
        b = synthesize_family_event(label, _rng(7), SR, 1.0)
        c = synthesize_family_event(label, _rng(8), SR, 1.0)
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).max() > 0.1, label


def test_default_lengths_are_class_typical_and_vary():
    for label in NEW_CLASSES:
        lo, hi = FAMILY_SECONDS[label]
        d = [draw_family_duration(label, _rng(s)) for s in range(8)]
        assert all(max(lo, MIN_EVENT_SECONDS) - 1e-9 <= v <= hi + 1e-9 for v in d), (label, d)
        assert len(set(d)) > 1


def test_unknown_label_and_too_short_event_raise():
    with pytest.raises(ValueError, match="Doorbell"):
        synthesize_family_event("Doorbell", _rng(0), SR)
    with pytest.raises(ValueError, match="shorter"):
        synthesize_family_event("Bell", _rng(0), SR, 0.1)


# ---------------------------------------------------------------------------
# clips

def test_clip_is_deterministic_and_independent_of_call_order():
    a = render_tagging_clip(5, seed=1)
    render_tagging_clip(9, seed=1)  # other clips in between change nothing
    render_tagging_clip(2, seed=4)
    b = render_tagging_clip(5, seed=1)
    assert a[0].tobytes() == b[0].tobytes()
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    for other in (render_tagging_clip(6, seed=1), render_tagging_clip(5, seed=2)):
        assert other[0].shape == a[0].shape and np.abs(other[0] - a[0]).max() > 1e-3


def test_clip_conventions_and_labels_match_events():
    counts = np.zeros(len(FAMILY_CLASSES))
    n_events, shorter = [], 0
    for i in range(40):
        audio, target, events = render_tagging_clip(i, seed=0)
        assert audio.dtype == np.float32 and audio.shape == (10 * SR,)
        assert np.isfinite(audio).all() and 0 < np.abs(audio).max() <= PEAK_LIMIT + 1e-6
        assert target.dtype == np.float32 and target.shape == (len(FAMILY_CLASSES),)
        assert set(np.unique(target)) <= {0.0, 1.0}
        labels = {c for _, _, c in events}
        assert {FAMILY_CLASSES[k] for k in np.flatnonzero(target)} == labels
        assert 1 <= len(events) <= 4
        assert events == sorted(events, key=lambda e: (e[0], e[2]))
        for onset, offset, label in events:
            assert 0.0 <= onset < offset <= 10.0
            assert offset - onset >= MIN_EVENT_SECONDS - 1e-9
            assert round(onset * 1000) == pytest.approx(onset * 1000, abs=1e-6)  # whole ms
        spec = tagging_clip_events(i, seed=0)  # labels without audio: the same events
        assert sorted((a, b, c) for a, b, c, _ in spec) == sorted(events)
        assert all(6.0 <= snr <= 30.0 for *_, snr in spec)
        counts += target
        n_events.append(len(events))
        shorter += sum(off - on < 1.0 for on, off, _ in events)
    assert len(set(n_events)) >= 3          # 1-4 events, not a constant count
    assert (counts > 0).sum() >= 30         # many classes drawn in 40 clips
    assert shorter > 0


def test_clip_events_are_audible_in_the_mix():
    # The mix is louder than the background-only stretches where an event sounds.
    for i in range(10):
        audio, _, events = render_tagging_clip(i, seed=3)
        on, off, _ = events[0]
        inside = audio[int(on * SR):int(off * SR)]
        assert active_rms(inside, SR) > 0


def test_other_clip_lengths_and_rates():
    audio, target, events = render_tagging_clip(0, seed=0, sample_rate=32000, clip_seconds=4.0)
    assert audio.shape == (4 * 32000,)
    assert all(off <= 4.0 for _, off, _ in events)


def test_rendering_speed_sanity_bound():
    # Not a benchmark (see benchmarks/bench_tagging_corpus.py): a generous bound
    # that catches an accidental per-sample Python loop.
    t = time.perf_counter()
    for i in range(50):
        render_tagging_clip(1000 + i, seed=0)
    assert time.perf_counter() - t < 30.0


# ---------------------------------------------------------------------------
# distinctness: the classes differ in sound, not just in name

def _features(logmel, label, seeds):
    feats = []
    for s in seeds:
        x = synthesize_family_event(label, _rng(s), SR, 2.0)
        m = logmel(torch.from_numpy(x)).numpy()  # (n_mels, T)
        m = m - m.max()  # level-independent
        feats.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    return np.array(feats)


def test_classes_are_distinct():
    torch.set_num_threads(1)
    logmel = LogMel("cpu")
    train = {c: _features(logmel, c, range(10)) for c in FAMILY_CLASSES}
    test = {c: _features(logmel, c, range(100, 110)) for c in FAMILY_CLASSES}
    centroids = np.array([train[c].mean(axis=0) for c in FAMILY_CLASSES])
    # 1. no two classes have (nearly) the same mean spectrum and texture
    d = np.sqrt(((centroids[:, None] - centroids[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    i, j = np.unravel_index(np.argmin(d), d.shape)
    assert d.min() > 0.3, (FAMILY_CLASSES[i], FAMILY_CLASSES[j], d.min())
    # 2. a nearest-centroid classifier on unseen draws is far above chance
    correct = 0
    for k, c in enumerate(FAMILY_CLASSES):
        dist = ((test[c][:, None] - centroids[None]) ** 2).sum(-1)
        correct += (dist.argmin(axis=1) == k).sum()
    acc = correct / (10 * len(FAMILY_CLASSES))
    # Chance is 1/len(FAMILY_CLASSES) (about 0.02); these crude features score
    # 0.57 at this commit. Classes collapsing into each other would drop it fast.
    assert acc > 0.4, acc


# ---------------------------------------------------------------------------
# the torch dataset

def test_streamed_dataset_items():
    torch.set_num_threads(1)
    p = get_preset("smoke")
    ds = StreamedTaggingClips(4, seed=2, preset=p)
    assert len(ds) == 4
    item = ds[1]
    K = len(FAMILY_CLASSES)
    assert item["mel"].shape == (p.n_mels, p.n_frames) and item["mel"].dtype == torch.float32
    assert torch.isfinite(item["mel"]).all()
    assert item["weak"].shape == (K,) and item["strong"].shape == (p.n_frames, K)
    # strong labels agree with the clip labels
    torch.testing.assert_close(item["strong"].amax(dim=0), item["weak"])
    audio, target, events = render_tagging_clip(item["index"], 2, p.sample_rate, p.clip_seconds)
    torch.testing.assert_close(item["mel"], LogMel(p)(torch.from_numpy(audio)))
    np.testing.assert_array_equal(item["weak"].numpy(), target)
    on, off, label = events[0]
    k = FAMILY_CLASSES.index(label)
    hop = p.frame_hop_seconds
    assert item["strong"][int(on / hop + 1e-6), k] == 1
    assert item["strong"][min(p.n_frames, int(np.ceil(off / hop - 1e-6))) - 1, k] == 1
    with pytest.raises(IndexError):
        ds[4]


def test_epochs_draw_fresh_clips_reproducibly():
    ds = StreamedTaggingClips(3, seed=0, preset="smoke", strong=False)
    first = [ds[i]["index"] for i in range(3)]
    ds.set_epoch(2)
    later = [ds[i]["index"] for i in range(3)]
    assert first == [0, 1, 2] and later == [6, 7, 8]
    assert "strong" not in ds[0]
    torch.testing.assert_close(ds[0]["mel"], StreamedTaggingClips(3, 0, "smoke", epoch=2)[0]["mel"])
    loader = streamed_epochs(4, seed=0, preset="smoke", batch_size=2)
    batches = list(loader(1))
    assert len(batches) == 2 and batches[0]["mel"].shape[0] == 2
    assert batches[0]["index"].tolist() == [4, 5]

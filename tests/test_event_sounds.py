"""The procedural sound models: lengths, determinism, variety, separability."""
import numpy as np
import pytest
from scipy import signal

from matsed_lite.data.event_sounds import (
    EVENT_SECONDS,
    LONG_CLASSES,
    MIN_EVENT_SECONDS,
    SHORT_CLASSES,
    draw_event_duration,
    synthesize_event,
)
from matsed_lite.data.sound_synthesis import synthesize_background
from matsed_lite.presets import DESED_CLASSES

SR = 16000


def _frame_db(x, sr=SR, frame_s=0.02):
    hop = int(frame_s * sr)
    m = len(x) // hop
    e = np.square(x[:m * hop].astype(np.float64)).reshape(m, hop).mean(axis=1)
    return 10 * np.log10(e + 1e-20)


def _rng(seed):
    return np.random.default_rng(seed)


def test_class_groups_cover_the_ten_desed_classes():
    assert sorted(SHORT_CLASSES + LONG_CLASSES) == sorted(DESED_CLASSES)
    assert not set(SHORT_CLASSES) & set(LONG_CLASSES)


@pytest.mark.parametrize("label", DESED_CLASSES)
@pytest.mark.parametrize("duration", [MIN_EVENT_SECONDS, 1.337, 4.0])
def test_event_has_requested_length_and_is_sound(label, duration):
    for seed in range(3):
        x = synthesize_event(label, _rng(seed), SR, duration)
        assert x.dtype == np.float32 and x.ndim == 1
        assert len(x) == round(duration * SR)
        assert np.isfinite(x).all()
        assert np.abs(x).max() == pytest.approx(1.0, abs=1e-5)  # peak-normalised
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 0.01  # not near-silent


@pytest.mark.parametrize("sr", [32000, 22050])
def test_other_sample_rates(sr):
    for label in DESED_CLASSES:
        x = synthesize_event(label, _rng(1), sr, 0.8)
        assert len(x) == round(0.8 * sr) and np.isfinite(x).all()


def test_default_lengths_are_class_typical():
    for label in DESED_CLASSES:
        lengths = [len(synthesize_event(label, _rng(s), SR)) / SR for s in range(6)]
        lo, hi = EVENT_SECONDS[label]
        assert all(max(lo, MIN_EVENT_SECONDS) - 1e-3 <= d <= hi + 1e-3 for d in lengths), (label, lengths)
        assert len(set(lengths)) > 1, f"{label}: every event has the same length"
    short = [draw_event_duration(c, _rng(s)) for c in SHORT_CLASSES for s in range(50)]
    long = [draw_event_duration(c, _rng(s)) for c in LONG_CLASSES for s in range(50)]
    assert max(short) <= 3.0 and min(short) >= MIN_EVENT_SECONDS
    assert min(long) >= 3.0 and max(long) <= 10.0
    assert np.median(long) > 2 * np.median(short)


def test_same_seed_same_audio_other_seed_other_audio():
    for label in DESED_CLASSES:
        a = synthesize_event(label, _rng(7), SR, 1.0)
        b = synthesize_event(label, _rng(7), SR, 1.0)
        c = synthesize_event(label, _rng(8), SR, 1.0)
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).max() > 0.1, label


def test_unknown_label_and_too_short_event_raise():
    with pytest.raises(ValueError, match="Doorbell"):
        synthesize_event("Doorbell", _rng(0), SR)
    with pytest.raises(ValueError, match="Doorbell"):
        draw_event_duration("Doorbell", _rng(0))
    with pytest.raises(ValueError, match="shorter than"):
        synthesize_event("Dog", _rng(0), SR, 0.1)


def test_events_are_audible_up_to_both_edges():
    # The array's extent is the labelled extent, so neither end may be a
    # silent tail: the first and last 20 ms sit within 40 dB of the loudest frame.
    for label in DESED_CLASSES:
        for seed in range(5):
            db = _frame_db(synthesize_event(label, _rng(seed), SR))
            assert db[0] > db.max() - 40 and db[-1] > db.max() - 40, (label, seed, db[0], db[-1], db.max())


def _features(x):
    """Mean and spread over time of 16 log-spaced band energies (dB, max-relative)."""
    f, _, z = signal.stft(x, SR, nperseg=512, noverlap=256)
    p = np.abs(z) ** 2
    b = np.searchsorted(f, np.geomspace(60, 8000, 17))
    bands = np.log10(np.stack([p[b[i]:b[i + 1]].sum(0) for i in range(16)]) + 1e-10)
    bands -= bands.max()
    return np.concatenate([bands.mean(1), bands.std(1)])


def test_classes_are_told_apart_by_their_sound():
    # A nearest-centroid classifier on crude spectral features, trained on a few
    # events per class, must beat chance (10%) by a wide margin on new events.
    n_train, n_test = 6, 6
    feats, labels = [], []
    for c, label in enumerate(DESED_CLASSES):
        for s in range(n_train + n_test):
            dur = 3.0 if label in LONG_CLASSES else None
            feats.append(_features(synthesize_event(label, _rng(1000 * c + s), SR, dur)))
            labels.append(c)
    x, y = np.array(feats), np.array(labels)
    train = np.tile(np.arange(n_train + n_test) < n_train, len(DESED_CLASSES))
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    z = (x - mu) / sd
    centroids = np.stack([z[train & (y == c)].mean(0) for c in range(len(DESED_CLASSES))])
    pred = np.argmin(((z[~train][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = (pred == y[~train]).mean()
    assert accuracy >= 0.5, accuracy


def test_large_variety_within_each_class():
    # Spectral centroids of events of one class spread out: no class is a
    # single template with noise on top.
    for label in DESED_CLASSES:
        cents = []
        for s in range(8):
            x = synthesize_event(label, _rng(s), SR, 1.0)
            f, p = signal.welch(x, SR, nperseg=512)
            cents.append((f * p).sum() / p.sum())
        cents = np.array(cents)
        assert cents.std() / cents.mean() > 0.1, (label, cents)


def test_background_is_varied_deterministic_and_sized():
    n = 3 * SR + 17  # an awkward length must work too
    a = synthesize_background(_rng(3), SR, n)
    b = synthesize_background(_rng(3), SR, n)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and len(a) == n and np.isfinite(a).all()
    assert np.abs(a).max() == pytest.approx(1.0, abs=1e-5)
    slopes = []
    for s in range(12):
        x = synthesize_background(_rng(s), SR, 2 * SR)
        f, p = signal.welch(x, SR, nperseg=1024)
        band = (f > 100) & (f < 6000)
        slopes.append(np.polyfit(np.log10(f[band]), 10 * np.log10(p[band]), 1)[0])
    # white-ish to brown-ish: slopes from about 0 to about -20 dB/decade
    assert max(slopes) - min(slopes) > 8, slopes
    assert len(synthesize_background(_rng(0), SR, 0)) == 0


def test_background_is_stationary_unlike_events():
    # Backgrounds must not contain events: their level stays within a narrow
    # range over time, while short events come and go.
    for s in range(10):
        db = _frame_db(synthesize_background(_rng(s), SR, 4 * SR), frame_s=0.1)
        assert db.max() - np.median(db) < 8, (s, db.max() - np.median(db))

"""Post-processing: weak mask, per-class windows and filters, decoding, writing events."""
import numpy as np
import pytest

from matsed_lite.data.desed_format import read_strong
from matsed_lite.evaluation.postprocessing import (DEFAULT_MEDIAN_SECONDS, PAPER_MEDIAN_SECONDS, decode_events,
                                        filter_windows, max_filter, median_filter, postprocess,
                                        postprocess_all, soft_weak_mask, write_events_tsv)
from matsed_lite.presets import DESED_CLASSES as C


def test_paper_windows_cover_desed_and_scale_with_hop():
    assert set(PAPER_MEDIAN_SECONDS) == set(C)
    short = {"Alarm_bell_ringing", "Cat", "Dishes", "Dog", "Speech"}
    assert all(PAPER_MEDIAN_SECONDS[c] == (0.32 if c in short else 1.28) for c in C)
    # 10 ms (paper): 32 / 128 frames; 20 ms: 16 / 64; 40 ms: 8 / 32.
    for hop, (n_short, n_long) in ((0.01, (32, 128)), (0.02, (16, 64)), (0.04, (8, 32))):
        w = dict(zip(C, filter_windows(C, hop)))
        assert all(w[c] == (n_short if c in short else n_long) for c in C)


def test_windows_overrides_defaults_and_minimum():
    assert filter_windows(["Cat", "Dog"], 0.04, seconds={"Dog": 0.2}) == (8, 5)
    assert filter_windows(["Cat", "Dog"], 0.04, seconds=0.12) == (3, 3)
    assert filter_windows(["Cat", "Dog"], 0.04, seconds=0.0) == (1, 1)   # at least one frame
    assert filter_windows(["Cat"], 0.04, seconds=0.1) == (3,)            # 2.5 rounds up
    assert filter_windows(["Cat"], 0.5) == (1,)                          # 0.64 -> 1
    assert filter_windows(["Mystery"], 0.04) == (round(DEFAULT_MEDIAN_SECONDS / 0.04),)
    with pytest.raises(ValueError, match="Dgo"):
        filter_windows(["Cat", "Dog"], 0.04, seconds={"Dgo": 0.2})
    with pytest.raises(ValueError, match="seconds"):
        filter_windows(["Cat"], 0.04, seconds=-0.1)
    with pytest.raises(ValueError, match="frame_hop"):
        filter_windows(["Cat"], 0.0)


def test_median_filter_per_class_known_values():
    col = np.array([0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0], dtype=np.float32)
    x = np.stack([col, col, col], axis=1)
    out = median_filter(x, (1, 3, 5))
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out[:, 0], col)                          # window 1: identity
    np.testing.assert_array_equal(out[:, 1], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(out[:, 2], [0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0])
    assert not np.array_equal(out[:, 1], out[:, 2])   # different windows really differ
    # A batch gives the same per clip.
    np.testing.assert_array_equal(median_filter(np.stack([x, x]), (1, 3, 5))[1], out)


def test_max_filter_per_class_known_values():
    col = np.array([0, 0, 0, 0.9, 0, 0, 0, 0, 0.2, 0], dtype=np.float32)
    x = np.stack([col, col], axis=1)
    out = max_filter(x, [3, 1])
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out[:, 0], [0, 0, 0.9, 0.9, 0.9, 0, 0, 0.2, 0.2, 0.2])
    np.testing.assert_array_equal(out[:, 1], col)
    np.testing.assert_allclose(max_filter(x, 5)[:, 0], [0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.2, 0.2, 0.2, 0.2])


def test_filter_errors():
    x = np.zeros((10, 2), np.float32)
    with pytest.raises(ValueError, match="windows"):
        median_filter(x, (3, -1))
    with pytest.raises(ValueError, match="windows"):
        max_filter(x, (0, 3))
    with pytest.raises(ValueError, match="one length per class"):
        median_filter(x, (3, 3, 3))
    with pytest.raises(ValueError, match="probs"):
        median_filter(np.zeros(10), 3)


def test_soft_weak_mask_multiplies():
    frames = np.array([[0.5, 1.0], [1.0, 0.2]], dtype=np.float32)
    np.testing.assert_allclose(soft_weak_mask(frames, [0.5, 0.1]), [[0.25, 0.1], [0.5, 0.02]], rtol=1e-6)
    batch = np.stack([frames, frames])
    out = soft_weak_mask(batch, [[1.0, 1.0], [0.0, 0.5]])
    np.testing.assert_allclose(out[0], frames)
    np.testing.assert_allclose(out[1], [[0, 0.5], [0, 0.1]], rtol=1e-6)
    with pytest.raises(ValueError, match="clip_probs"):
        soft_weak_mask(frames, [0.5, 0.1, 0.3])
    with pytest.raises(ValueError, match="clip_probs"):
        soft_weak_mask(batch, [0.5, 0.1])
    with pytest.raises(ValueError, match="frame_probs"):
        soft_weak_mask(np.zeros(4), np.zeros(4))


def test_postprocess_chain():
    classes = ["Dog", "Frying"]
    rng = np.random.default_rng(0)
    frames = rng.random((50, 2)).astype(np.float32)
    clip = np.array([0.5, 0.8], np.float32)
    out = postprocess(frames, clip, classes, 0.04)
    expected = median_filter(frames * clip, filter_windows(classes, 0.04))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(postprocess(frames, None, classes, 0.04, filter="none", weak_mask=False),
                               frames)
    np.testing.assert_allclose(postprocess(frames, clip, classes, 0.04, filter="max", seconds=0.12),
                               max_filter(frames * clip, 3), rtol=1e-6)
    with pytest.raises(ValueError, match="filter"):
        postprocess(frames, clip, classes, 0.04, filter="mean")
    with pytest.raises(ValueError, match="clip_probs"):
        postprocess(frames, None, classes, 0.04)
    with pytest.raises(ValueError, match="frame_probs"):
        postprocess(frames[:, :1], clip, classes, 0.04)
    with pytest.raises(ValueError, match="Cta"):
        postprocess(frames, clip, classes, 0.04, seconds={"Cta": 1.0})

    both = postprocess_all({"a.wav": frames, "b.wav": frames[::-1]},
                           {"a.wav": clip, "b.wav": clip}, classes, 0.04)
    np.testing.assert_allclose(both["a.wav"], out)
    with pytest.raises(ValueError, match="b.wav"):
        postprocess_all({"a.wav": frames, "b.wav": frames}, {"a.wav": clip}, classes, 0.04)


def test_decode_events_at_40ms_hop():
    classes = ["Cat", "Dog"]
    x = np.zeros((25, 2), np.float32)   # 25 frames of 40 ms = 1.0 s
    x[3:7, 0] = 0.9                      # 0.12 - 0.28 s
    x[10, 0] = 0.5                       # exactly at the threshold counts: 0.40 - 0.44
    x[20:, 1] = 0.7                      # to the end: 0.80 - 1.00, clipped to 0.93
    events = decode_events(x, classes, 0.04, threshold=0.5, duration=0.93)
    assert [e[2] for e in events] == ["Cat", "Cat", "Dog"]
    np.testing.assert_allclose([e[:2] for e in events], [[0.12, 0.28], [0.40, 0.44], [0.80, 0.93]])
    assert decode_events(x, classes, 0.04)[-1][1] == pytest.approx(1.0)
    assert decode_events(x, classes, 0.04, threshold=0.95) == []
    # Padding past the end: a Dog run starting after 0.70 s is dropped entirely.
    assert [e[2] for e in decode_events(x, classes, 0.04, duration=0.7)] == ["Cat", "Cat"]
    with pytest.raises(ValueError, match="probs"):
        decode_events(x[:, :1], classes, 0.04)
    with pytest.raises(ValueError, match="duration"):
        decode_events(x, classes, 0.04, duration=-1.0)


def test_write_events_round_trip(tmp_path):
    events = {
        "Y00_0.000_10.000.wav": [(0.12, 0.28, "Cat"), (0.8, 0.93, "Dog")],
        "clip_b": [(1.0 / 3.0, 2.0, "Speech")],
        "clip_silent.wav": [],
    }
    path = tmp_path / "out" / "detections.tsv"
    write_events_tsv(path, events)
    lines = path.read_text().splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label"
    assert "clip_b.wav\t0.333\t2.000\tSpeech" in lines
    strong = read_strong(path, classes=C)
    assert set(strong.filenames) == {"Y00_0.000_10.000.wav", "clip_b.wav", "clip_silent.wav"}
    got = strong.events_by_file()
    assert got["clip_silent.wav"] == []
    assert [(e.onset, e.offset, e.label) for e in got["Y00_0.000_10.000.wav"]] == \
        [(0.12, 0.28, "Cat"), (0.8, 0.93, "Dog")]
    assert not list(tmp_path.joinpath("out").glob("*.part"))   # no temp file left
    with pytest.raises(ValueError, match="not before"):
        write_events_tsv(tmp_path / "bad.tsv", {"x": [(2.0, 1.0, "Cat")]})
    assert not (tmp_path / "bad.tsv").exists()

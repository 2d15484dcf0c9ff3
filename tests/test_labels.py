"""labels.py: events <-> frame matrices and clip labels -> vectors."""
import numpy as np
import pytest

from matsed_lite.data.desed_format import Event
from matsed_lite.data.labels import events_to_frames, frames_to_events, labels_to_vector

CLASSES = ["Cat", "Dog", "Speech"]


def rounded(events):
    return [(round(on, 9), round(off, 9), label) for on, off, label in events]


def random_events(rng, hop, clip=10.0):
    """Non-overlapping events per class, at least 2 frames apart (closer ones merge)."""
    events = []
    for label in CLASSES:
        t = rng.uniform(0, 1.0)
        while True:
            dur = rng.uniform(hop, 2.0)
            if t + dur > clip:
                break
            events.append((t, t + dur, label))
            t = t + dur + rng.uniform(2 * hop + 1e-3, 1.5)
    return events


@pytest.mark.parametrize("hop", [0.01, 0.02, 0.064, 0.1])
def test_round_trip_within_one_frame(hop):
    rng = np.random.default_rng(int(hop * 1000))
    n_frames = int(round(10.0 / hop))
    for _ in range(5):
        events = random_events(rng, hop)
        frames = events_to_frames(events, CLASSES, n_frames, hop)
        assert frames.dtype == np.float32 and frames.shape == (n_frames, 3)
        decoded = frames_to_events(frames, CLASSES, hop)
        assert len(decoded) == len(events)
        for label in CLASSES:
            want = sorted(e for e in events if e[2] == label)
            got = sorted(e for e in decoded if e[2] == label)
            for (on, off, _), (don, doff, _) in zip(want, got):
                # Frames cover the event, so decoding widens it by < 1 frame each side.
                assert on - hop < don <= on + 1e-9
                assert off - 1e-9 <= doff < off + hop


def test_known_frame_indices():
    hop = 0.1
    events = [
        (0.25, 0.61, "Cat"),                    # frames 2..6 (floor 2.5, ceil 6.1)
        Event("x.wav", 0.3, 0.5, "Dog"),        # 0.3/0.1 = 2.999..: frames 3, 4
        (0.9, 1.5, "Speech"),                   # past the end: cut to frame 9
    ]
    frames = events_to_frames(events, CLASSES, 10, hop)
    assert np.flatnonzero(frames[:, 0]).tolist() == [2, 3, 4, 5, 6]
    assert np.flatnonzero(frames[:, 1]).tolist() == [3, 4]
    assert np.flatnonzero(frames[:, 2]).tolist() == [9]
    decoded = frames_to_events(frames, CLASSES, hop)
    assert rounded(decoded) == [(0.2, 0.7, "Cat"), (0.3, 0.5, "Dog"), (0.9, 1.0, "Speech")]


def test_probabilities_are_thresholded_and_touching_events_merge():
    probs = np.array([[0.2], [0.6], [0.5], [0.49], [0.9]], dtype=np.float32)
    assert frames_to_events(probs, ["Cat"], 0.5) == [(0.5, 1.5, "Cat"), (2.0, 2.5, "Cat")]
    frames = events_to_frames([(0.0, 0.2, "Cat"), (0.2, 0.4, "Cat")], ["Cat"], 5, 0.1)
    assert rounded(frames_to_events(frames, ["Cat"], 0.1)) == [(0.0, 0.4, "Cat")]


def test_unknown_label_and_bad_arguments():
    with pytest.raises(ValueError, match="'Cow' is not in the class list"):
        events_to_frames([(0.0, 1.0, "Cow")], CLASSES, 10, 0.1)
    with pytest.raises(ValueError, match="'Cow'"):
        labels_to_vector(["Cat", "Cow"], CLASSES)
    with pytest.raises(ValueError, match="frame_hop"):
        events_to_frames([], CLASSES, 10, 0.0)
    with pytest.raises(ValueError, match="frames must be"):
        frames_to_events(np.zeros((10, 2)), CLASSES, 0.1)


def test_labels_to_vector():
    v = labels_to_vector(["Speech", "Cat", "Cat"], CLASSES)
    assert v.dtype == np.float32 and v.tolist() == [1.0, 0.0, 1.0]
    assert labels_to_vector([], CLASSES).tolist() == [0.0, 0.0, 0.0]

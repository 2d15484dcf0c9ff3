"""Procedural sounds for the ten DESED classes, and backgrounds without them (chapter 00).

DESED itself cannot be downloaded here, so DESED-lite builds its clips from
these models. A detector trained on them should have to learn what real data
asks of it: classes that differ by their *sound* (pitch, harmonicity,
spectral shape, temporal texture), and large variety inside each class, so
that memorising a few waveforms is useless. Every model therefore draws its
own pitch, length, envelope, timbre and repetition pattern from the random
generator it is given; no two events are alike, and the same generator state
always gives the same event.

Conventions
-----------
* ``synthesize_event`` returns float32 mono audio **peak-normalised to 1.0**
  (max |x| == 1). The level in a mixture is set later, by the soundscape
  mixer, from the event's RMS (see ``desed_lite``); peak 1 only makes events
  directly listenable.
* An event's audio is its *whole* audible extent: it is audible from its first
  to its last sample (edges are only softened by 5 ms fades, and decays end
  about 20 dB below the peak, not in silence), so a label's onset and offset
  are where the array starts and ends.
* Everything is vectorised numpy (no per-sample Python loops): a 10 s clip
  must take a few milliseconds, so that data generation never dominates a
  course session.
"""
from __future__ import annotations

import numpy as np

from ..presets import DESED_CLASSES
from .impulsive_sounds import alarm, cat, dishes, dog, speech
from .sound_synthesis import finish, logu
from .stationary_sounds import blender, frying, running_water, shaver, vacuum

# Impulsive / short events and stationary / long ones, as DESED groups them.
SHORT_CLASSES = ("Alarm_bell_ringing", "Cat", "Dishes", "Dog", "Speech")
LONG_CLASSES = ("Blender", "Electric_shaver_toothbrush", "Frying", "Running_water",
                "Vacuum_cleaner")
assert sorted(SHORT_CLASSES + LONG_CLASSES) == sorted(DESED_CLASSES)

# DESED's shortest events are 250 ms; shorter ones are hardly annotatable.
MIN_EVENT_SECONDS = 0.25

# Class-typical length ranges (seconds), drawn log-uniformly: short classes are
# one or a few bursts, long classes are stationary sounds that last.
EVENT_SECONDS = {
    "Alarm_bell_ringing": (0.5, 3.0),
    "Cat": (0.4, 2.5),
    "Dishes": (0.25, 1.5),
    "Dog": (0.3, 2.5),
    "Speech": (0.6, 3.0),
    "Blender": (3.0, 10.0),
    "Electric_shaver_toothbrush": (3.0, 10.0),
    "Frying": (3.0, 10.0),
    "Running_water": (3.0, 10.0),
    "Vacuum_cleaner": (3.0, 10.0),
}


_MODELS = {
    "Alarm_bell_ringing": alarm,
    "Blender": blender,
    "Cat": cat,
    "Dishes": dishes,
    "Dog": dog,
    "Electric_shaver_toothbrush": shaver,
    "Frying": frying,
    "Running_water": running_water,
    "Speech": speech,
    "Vacuum_cleaner": vacuum,
}


def _check_label(label):
    if label not in _MODELS:
        raise ValueError(f"unknown sound event label {label!r}; DESED-lite knows "
                         f"{', '.join(DESED_CLASSES)}")


def draw_event_duration(label: str, rng: np.random.Generator) -> float:
    """A class-typical event length in seconds (log-uniform in ``EVENT_SECONDS``).

    Kept apart from synthesis so a soundscape can fix its labels and timings
    from one random stream without rendering any audio."""
    _check_label(label)
    lo, hi = EVENT_SECONDS[label]
    return float(max(MIN_EVENT_SECONDS, logu(rng, lo, hi)))


def synthesize_event(label: str, rng: np.random.Generator, sample_rate: int,
                     duration: float | None = None) -> np.ndarray:
    """Synthesise one event of class ``label``: float32 mono, peak-normalised to 1.

    ``duration`` (seconds) fixes the length to ``round(duration * sample_rate)``
    samples; ``None`` draws a class-typical length (``draw_event_duration``).
    The sound is audible from the first to the last sample, so the array's
    extent is the event's onset-to-offset extent. Raises ``ValueError`` for an
    unknown label or a duration under ``MIN_EVENT_SECONDS``.
    """
    _check_label(label)
    if duration is None:
        duration = draw_event_duration(label, rng)
    return render_event(_MODELS[label], label, rng, sample_rate, duration)


def render_event(model, label: str, rng: np.random.Generator, sample_rate: int,
                 duration: float) -> np.ndarray:
    """Run a sound model ``model(rng, n, sr)`` for ``duration`` seconds and finish it
    (DC removed, edges faded, peak 1); an event under ``MIN_EVENT_SECONDS`` is an
    error naming the label. Every procedural class is rendered through here."""
    n = int(round(duration * sample_rate))
    if n < int(round(MIN_EVENT_SECONDS * sample_rate)):
        raise ValueError(f"{label} event of {duration:.3f} s is shorter than the minimum "
                         f"{MIN_EVENT_SECONDS} s")
    x = model(rng, n, sample_rate)
    assert len(x) == n, (label, len(x), n)
    return finish(x, sample_rate)

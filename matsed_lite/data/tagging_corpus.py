"""The broad tagging corpus: 54 sound classes, streamed 10 s soundscapes, the encoder's stand-in for AudioSet.

MAT-SED starts from PaSST trained on AudioSet's 527 classes, whose features
are general. PaSST-lite trained on DESED-lite's ten classes only learns those
ten. This corpus widens encoder pre-training: ``FAMILY_CLASSES`` holds the
ten DESED classes (rendered by ``event_sounds.synthesize_event``, so the
encoder still learns them) plus 44 other procedural sound types, from
``tonal_sounds`` (tones, glides and sweeps, birds, signals, synthesiser
timbres, voices, insects and frogs), ``noise_sounds`` (noises of several
colours, wind, rain, fire, bubbles, engines and hums) and ``impulse_sounds``
(impacts and click trains, applause, bells and chimes, plucked strings,
drums).

The corpus is *streamed*: ``render_tagging_clip(index, seed)`` mixes a
10 s soundscape from fresh random streams, so pre-training can draw as many
new clips as it has steps, and nothing is written to disk.

Conventions (as in ``event_sounds``)
-----------------------------------
* ``synthesize_family_event`` returns float32 mono audio peak-normalised to
  1.0, audible from its first to its last sample, so the array's extent is
  the event's labelled extent.
* Every model draws its pitch, length, envelope, timbre and repetition from
  the ``numpy.random.Generator`` it is given: the same generator state gives
  the same audio.
* Vectorised numpy only (no per-sample Python loops): a 10 s clip renders in
  milliseconds.
* A clip is determined by ``(seed, index)`` through ``numpy.random.SeedSequence``:
  clips can be drawn in any order, in parallel, or again after a resume, and
  come out the same.
"""
from __future__ import annotations

import numpy as np
import torch

from ..presets import DESED_CLASSES, Preset, get_preset
from .desed_lite import BACKGROUND_DBFS, EVENT_COUNTS, EVENT_COUNT_P, PEAK_LIMIT, SNR_DB, active_rms
from .event_sounds import MIN_EVENT_SECONDS, draw_event_duration, render_event, synthesize_event
from .features import LogMel
from .impulse_sounds import (applause, bell, clock_tick, creak, drum, footsteps, hammering,
                             heartbeat, knock, plucked_string, rattle, sawing, snare, typing,
                             wind_chimes)
from .labels import events_to_frames
from .noise_sounds import (band_noise, bubbles, engine, fire_crackle, hiss, motor_hum, noise_burst,
                           rain, rumble, wind)
from .sound_synthesis import logu, rms, synthesize_background
from .tonal_sounds import (babble, beeps, bird_song, bird_trill, buzz, chirp_sweep, dtmf, fm_tone,
                           frog, glide_tone, harmonic_tone, insect, organ_chord, ringtone, singing,
                           siren, synth_saw, tremolo_tone, whistle)

# Bump when a change makes the same (seed, index) give different audio or labels.
FAMILY_VERSION = "1"
# The clip streams' middle entropy word: disjoint from DESED-lite's split offsets (0-11).
STREAM_ID = 100
SHORTENED_P = 0.25      # share of events cut shorter than their class-typical length


# ---------------------------------------------------------------------------
# the class list

_FAMILY_MODELS = {
    "Applause": applause,
    "Babble": babble,
    "Band_noise": band_noise,
    "Beeps": beeps,
    "Bell": bell,
    "Bird_song": bird_song,
    "Bird_trill": bird_trill,
    "Bubbles": bubbles,
    "Buzz": buzz,
    "Chirp_sweep": chirp_sweep,
    "Clock_tick": clock_tick,
    "Creak": creak,
    "DTMF": dtmf,
    "Drum": drum,
    "Engine": engine,
    "FM_tone": fm_tone,
    "Fire_crackle": fire_crackle,
    "Footsteps": footsteps,
    "Frog": frog,
    "Glide_tone": glide_tone,
    "Hammering": hammering,
    "Harmonic_tone": harmonic_tone,
    "Heartbeat": heartbeat,
    "Hiss": hiss,
    "Insect": insect,
    "Knock": knock,
    "Motor_hum": motor_hum,
    "Noise_burst": noise_burst,
    "Organ_chord": organ_chord,
    "Plucked_string": plucked_string,
    "Rain": rain,
    "Rattle": rattle,
    "Ringtone": ringtone,
    "Rumble": rumble,
    "Sawing": sawing,
    "Singing": singing,
    "Siren": siren,
    "Snare_drum": snare,
    "Synth_saw": synth_saw,
    "Tremolo_tone": tremolo_tone,
    "Typing": typing,
    "Whistle": whistle,
    "Wind": wind,
    "Wind_chimes": wind_chimes,
}

# Class-typical lengths (seconds, drawn log-uniformly) of the non-DESED types.
FAMILY_SECONDS = {
    "Applause": (2.0, 10.0), "Babble": (2.0, 10.0), "Band_noise": (1.0, 8.0),
    "Beeps": (0.5, 5.0), "Bell": (1.0, 6.0), "Bird_song": (0.6, 4.0),
    "Bird_trill": (0.5, 4.0), "Bubbles": (1.0, 8.0), "Buzz": (0.5, 5.0),
    "Chirp_sweep": (0.3, 4.0), "Clock_tick": (2.0, 10.0), "Creak": (0.5, 3.0),
    "DTMF": (0.5, 3.0), "Drum": (1.0, 6.0), "Engine": (2.0, 10.0),
    "FM_tone": (0.3, 4.0), "Fire_crackle": (3.0, 10.0), "Footsteps": (1.5, 8.0),
    "Frog": (0.5, 4.0), "Glide_tone": (0.3, 3.0), "Hammering": (1.0, 6.0),
    "Harmonic_tone": (0.3, 4.0), "Heartbeat": (2.0, 8.0), "Hiss": (1.0, 8.0),
    "Insect": (1.0, 8.0), "Knock": (0.4, 3.0), "Motor_hum": (2.0, 10.0),
    "Noise_burst": (0.25, 2.0), "Organ_chord": (1.0, 6.0), "Plucked_string": (0.5, 5.0),
    "Rain": (3.0, 10.0), "Rattle": (0.5, 4.0), "Ringtone": (1.0, 8.0),
    "Rumble": (2.0, 10.0), "Sawing": (1.5, 8.0), "Singing": (1.0, 6.0),
    "Siren": (2.0, 10.0), "Snare_drum": (0.5, 5.0), "Synth_saw": (1.0, 6.0),
    "Tremolo_tone": (0.5, 4.0), "Typing": (1.0, 6.0), "Whistle": (0.5, 4.0),
    "Wind": (3.0, 10.0), "Wind_chimes": (2.0, 10.0),
}
assert set(FAMILY_SECONDS) == set(_FAMILY_MODELS)
assert not set(_FAMILY_MODELS) & set(DESED_CLASSES)

# Every tagging class, sorted: the ten DESED classes (under their DESED names)
# and the broad family. The label vector's order.
FAMILY_CLASSES: tuple[str, ...] = tuple(sorted(DESED_CLASSES + tuple(_FAMILY_MODELS)))
# Indices of the DESED classes in FAMILY_CLASSES, in DESED_CLASSES order.
DESED_INDICES: tuple[int, ...] = tuple(FAMILY_CLASSES.index(c) for c in DESED_CLASSES)


def tagger_classes(n_outputs: int) -> tuple[str, ...]:
    """The class list of a tagging head with ``n_outputs`` outputs: the ten DESED
    classes (a DESED-lite tagger) or ``FAMILY_CLASSES`` (a broad-corpus tagger)."""
    for classes in (DESED_CLASSES, FAMILY_CLASSES):
        if n_outputs == len(classes):
            return tuple(classes)
    raise ValueError(f"a tagging head of {n_outputs} outputs matches neither the "
                     f"{len(DESED_CLASSES)} DESED classes nor the {len(FAMILY_CLASSES)} "
                     f"broad-corpus classes")


def _check_label(label):
    if label not in FAMILY_CLASSES:
        raise ValueError(f"unknown sound family {label!r}; known: {', '.join(FAMILY_CLASSES)}")


def draw_family_duration(label: str, rng: np.random.Generator) -> float:
    """A class-typical event length in seconds (DESED classes: their own ranges)."""
    _check_label(label)
    if label in DESED_CLASSES:
        return draw_event_duration(label, rng)
    lo, hi = FAMILY_SECONDS[label]
    return float(max(MIN_EVENT_SECONDS, logu(rng, lo, hi)))


def synthesize_family_event(label: str, rng: np.random.Generator, sample_rate: int,
                            duration: float | None = None) -> np.ndarray:
    """One event of tagging class ``label``: float32 mono, peak-normalised to 1.

    DESED classes come from ``event_sounds.synthesize_event``. ``duration``
    (seconds) fixes the length to ``round(duration * sample_rate)`` samples;
    ``None`` draws a class-typical one. Raises ``ValueError`` for an unknown
    label or a duration under ``MIN_EVENT_SECONDS``."""
    _check_label(label)
    if label in DESED_CLASSES:
        return synthesize_event(label, rng, sample_rate, duration)
    if duration is None:
        duration = draw_family_duration(label, rng)
    return render_event(_FAMILY_MODELS[label], label, rng, sample_rate, duration)


# ---------------------------------------------------------------------------
# streamed soundscapes

def _clip_streams(seed: int, index: int):
    """(specification, rendering) SeedSequences of clip ``index`` of stream ``seed``."""
    if index < 0:
        raise ValueError(f"clip index must be >= 0, got {index}")
    return np.random.SeedSequence([int(seed), STREAM_ID, int(index)]).spawn(2)


def _clip_spec(index: int, seed: int, clip_seconds: float):
    """(events, background dBFS) of a clip, from its specification stream."""
    rng = np.random.default_rng(_clip_streams(seed, index)[0])
    clip_ms = int(round(clip_seconds * 1000))
    min_ms = int(round(MIN_EVENT_SECONDS * 1000))
    if clip_ms < min_ms:
        raise ValueError(f"clip_seconds must be at least {MIN_EVENT_SECONDS}, got {clip_seconds}")
    events = []
    for _ in range(int(rng.choice(EVENT_COUNTS, p=EVENT_COUNT_P))):
        label = FAMILY_CLASSES[int(rng.integers(len(FAMILY_CLASSES)))]
        dur = draw_family_duration(label, rng)
        if rng.random() < SHORTENED_P:
            dur = logu(rng, MIN_EVENT_SECONDS, max(dur, MIN_EVENT_SECONDS * 1.001))
        dur_ms = min(clip_ms, max(min_ms, int(round(dur * 1000))))
        onset_ms = int(rng.integers(0, clip_ms - dur_ms + 1))
        events.append((onset_ms / 1000, (onset_ms + dur_ms) / 1000, label, float(rng.uniform(*SNR_DB))))
    return events, float(rng.uniform(*BACKGROUND_DBFS))


def tagging_clip_events(index: int, seed: int, clip_seconds: float = 10.0) -> list:
    """The events of clip ``index`` (seed ``seed``) without rendering audio:
    [(onset s, offset s, class, snr dB)] in draw order (the rendering order).

    Times are whole milliseconds. 1-4 events of uniformly drawn classes (so a
    class may repeat), class-typical lengths, a quarter of them cut shorter,
    uniform onsets (overlaps allowed), SNR uniform in 6-30 dB."""
    return _clip_spec(index, seed, clip_seconds)[0]


def labels_vector(labels) -> np.ndarray:
    """Class names -> multi-hot float32 over ``FAMILY_CLASSES``."""
    y = np.zeros(len(FAMILY_CLASSES), dtype=np.float32)
    for label in labels:
        _check_label(label)
        y[FAMILY_CLASSES.index(label)] = 1.0
    return y


def render_tagging_clip(index: int, seed: int, sample_rate: int = 16000,
                        clip_seconds: float = 10.0):
    """Clip ``index`` of the streamed tagging corpus ``seed``.

    Returns ``(audio, target, events)``: float32 audio of
    ``round(clip_seconds * sample_rate)`` samples (peak <= ``PEAK_LIMIT``), the
    multi-hot float32 vector over ``FAMILY_CLASSES``, and the events as
    ``(onset s, offset s, class)``, sorted by onset.

    A random DESED-lite background (-50 to -30 dBFS RMS) carries 1-4 events,
    each mixed at its SNR (event active RMS over the background's RMS under
    it, as DESED-lite). Deterministic in ``(seed, index)`` and independent of
    call order; each event has its own child stream, so it sounds the same
    whatever else is in the clip."""
    sr = int(sample_rate)
    specs, level = _clip_spec(index, seed, clip_seconds)
    n = int(round(clip_seconds * sr))
    children = _clip_streams(seed, index)[1].spawn(1 + len(specs))
    bg = synthesize_background(np.random.default_rng(children[0]), sr, n)
    bg *= np.float32(10 ** (level / 20) / max(rms(bg), 1e-12))
    mix = bg.copy()
    for (onset, offset, label, snr), child in zip(specs, children[1:]):
        start, stop = int(round(onset * sr)), int(round(offset * sr))
        x = synthesize_family_event(label, np.random.default_rng(child), sr, (stop - start) / sr)
        gain = 10 ** (snr / 20) * rms(bg[start:stop]) / max(active_rms(x, sr), 1e-12)
        mix[start:stop] += x * np.float32(gain)
    peak = float(np.abs(mix).max()) if n else 0.0
    if peak > PEAK_LIMIT:
        mix *= np.float32(PEAK_LIMIT / peak)
    events = sorted(((on, off, lab) for on, off, lab, _ in specs), key=lambda e: (e[0], e[2]))
    return mix, labels_vector(lab for _, _, lab in events), events


# ---------------------------------------------------------------------------
# torch dataset

class StreamedTaggingClips(torch.utils.data.Dataset):
    """Map-style torch Dataset of streamed tagging clips, featurised on the fly.

    Item ``i`` is clip ``epoch * n_clips + i`` of stream ``seed``:
    ``{"mel": (n_mels, n_frames), "weak": (K,), "strong": (n_frames, K),
    "index": clip index}`` with ``K = len(FAMILY_CLASSES)``, the log-mel from
    ``features.LogMel(preset)`` and the strong labels at the log-mel frame
    rate (``labels.events_to_frames``). ``set_epoch(e)`` (or ``epoch=e``)
    moves to a fresh index range, so every epoch sees new clips; the same
    (seed, epoch, i) always gives the same item, whatever the worker or order.
    """

    def __init__(self, n_clips: int, seed: int = 0, preset: "Preset | str" = "cpu",
                 epoch: int = 0, strong: bool = True):
        self.n_clips, self.seed, self.epoch, self.strong = int(n_clips), int(seed), int(epoch), strong
        self.preset = get_preset(preset)
        self.logmel = LogMel(self.preset)
        self.classes = FAMILY_CLASSES

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_clips

    def clip_index(self, i: int) -> int:
        if not 0 <= i < self.n_clips:
            raise IndexError(i)
        return self.epoch * self.n_clips + int(i)

    def __getitem__(self, i: int) -> dict:
        p = self.preset
        index = self.clip_index(i)
        audio, target, events = render_tagging_clip(index, self.seed, p.sample_rate, p.clip_seconds)
        with torch.no_grad():
            mel = self.logmel(torch.from_numpy(audio))
        item = {"mel": mel, "weak": torch.from_numpy(target), "index": index}
        if self.strong:
            frames = events_to_frames(events, FAMILY_CLASSES, mel.shape[-1], p.frame_hop_seconds)
            item["strong"] = torch.from_numpy(frames)
        return item


class StreamedEpochs:
    """``epoch -> DataLoader`` of fresh clips per epoch: the callable form that
    ``engine.fit`` accepts as ``train_data``; ``len()`` is the batches per epoch.

    Epoch ``e`` holds clips ``e * n_clips`` to ``(e + 1) * n_clips - 1`` in index
    order (they are already i.i.d. draws, so there is nothing to shuffle). Items
    depend only on (seed, index), and the loader draws its worker seeds from its
    own generator seeded from (seed, epoch), never from the global RNG: the
    batches, and the training RNG stream, are the same for any ``num_workers``
    and after a resume. Workers render and featurise while the model trains."""

    def __init__(self, n_clips: int, seed: int, preset: "Preset | str", batch_size: int,
                 num_workers: int = 0, strong: bool = False, drop_last: bool = True):
        self.n_clips, self.seed, self.preset = int(n_clips), int(seed), get_preset(preset)
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.strong, self.drop_last = strong, drop_last

    def __len__(self) -> int:
        whole, rest = divmod(self.n_clips, self.batch_size)
        return whole + (1 if rest and not self.drop_last else 0)

    def __call__(self, epoch: int) -> torch.utils.data.DataLoader:
        ds = StreamedTaggingClips(self.n_clips, self.seed, self.preset, epoch=epoch,
                                  strong=self.strong)
        g = torch.Generator().manual_seed(int(np.random.SeedSequence(
            [self.seed, STREAM_ID, int(epoch)]).generate_state(1)[0]))
        return torch.utils.data.DataLoader(ds, batch_size=self.batch_size,
                                           num_workers=self.num_workers, drop_last=self.drop_last,
                                           persistent_workers=False, generator=g)


def streamed_epochs(n_clips: int, seed: int, preset: "Preset | str", batch_size: int,
                    num_workers: int = 0, strong: bool = False,
                    drop_last: bool = True) -> StreamedEpochs:
    """The ``StreamedEpochs`` of stream ``seed`` (see there)."""
    return StreamedEpochs(n_clips, seed, preset, batch_size, num_workers, strong, drop_last)

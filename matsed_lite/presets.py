"""Named presets: one flat block of values per scale of the course.

A preset fixes the audio geometry (sample rate, clip length, STFT and mel
settings) and the size of the DESED-lite data set generated for it. Data,
features, models and training all read the same preset, so one name
(``smoke``, ``cpu``, ``gpu`` or ``paper``) sets up a whole run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# The ten DESED classes, in the sorted order DCASE uses.
DESED_CLASSES = (
    "Alarm_bell_ringing",
    "Blender",
    "Cat",
    "Dishes",
    "Dog",
    "Electric_shaver_toothbrush",
    "Frying",
    "Running_water",
    "Speech",
    "Vacuum_cleaner",
)


@dataclass(frozen=True)
class Preset:
    name: str
    # --- audio -----------------------------------------------------------
    sample_rate: int
    clip_seconds: float
    # --- log-mel front end ---------------------------------------------------
    frontend: str  # "lite": torchaudio mel (slaney), "passt": PaSST's front end
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    f_min: float
    f_max: float
    # --- DESED-lite: clips per split -------------------------------------------
    n_synth_train: int
    n_weak: int
    n_unlabeled: int
    n_validation: int

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def frame_hop_seconds(self) -> float:
        """Seconds between two log-mel frames."""
        return self.hop_length / self.sample_rate

    @property
    def n_frames(self) -> int:
        """Log-mel frames of one full clip (the centred STFT's extra frame is cut)."""
        return self.clip_samples // self.hop_length

    def split_sizes(self) -> dict[str, int]:
        return {
            "synth_train": self.n_synth_train,
            "weak": self.n_weak,
            "unlabeled": self.n_unlabeled,
            "validation": self.n_validation,
        }

    def to_dict(self) -> dict:
        return asdict(self)


# CI: every notebook in seconds. 20 ms frames, few mels, a handful of clips.
SMOKE = Preset(
    name="smoke",
    sample_rate=16000, clip_seconds=10.0,
    frontend="lite", n_fft=512, win_length=512, hop_length=320, n_mels=32,
    f_min=0.0, f_max=8000.0,
    n_synth_train=24, n_weak=12, n_unlabeled=24, n_validation=12,
)

# A real run on a 2-core laptop: 16 kHz, 64 mels, 20 ms frames (500 per clip).
# About 3,200 clips of 10 s, about 1 GB of 16-bit wav.
CPU = Preset(
    name="cpu",
    sample_rate=16000, clip_seconds=10.0,
    frontend="lite", n_fft=1024, win_length=640, hop_length=320, n_mels=64,
    f_min=0.0, f_max=8000.0,
    n_synth_train=1200, n_weak=500, n_unlabeled=1200, n_validation=300,
)

# One Colab-class GPU: the paper's front end (32 kHz, 128 mels, 10 ms frames),
# smaller data than DESED.
GPU = Preset(
    name="gpu",
    sample_rate=32000, clip_seconds=10.0,
    frontend="passt", n_fft=1024, win_length=800, hop_length=320, n_mels=128,
    f_min=0.0, f_max=15000.0,
    n_synth_train=2000, n_weak=800, n_unlabeled=2000, n_validation=400,
)

# The official geometry (PaSST-S front end: 32 kHz, 128 mels, hop 10 ms,
# 1000 frames per clip) and DESED's split sizes, for users with real data.
PAPER = Preset(
    name="paper",
    sample_rate=32000, clip_seconds=10.0,
    frontend="passt", n_fft=1024, win_length=800, hop_length=320, n_mels=128,
    f_min=0.0, f_max=15000.0,
    n_synth_train=10000, n_weak=1578, n_unlabeled=14412, n_validation=1168,
)

PRESETS = {p.name: p for p in (SMOKE, CPU, GPU, PAPER)}


def get_preset(name_or_preset: "str | Preset", **overrides) -> Preset:
    """Return a preset by name (or pass one through), optionally with fields replaced."""
    if isinstance(name_or_preset, Preset):
        preset = name_or_preset
    else:
        try:
            preset = PRESETS[name_or_preset]
        except KeyError:
            raise ValueError(
                f"unknown preset {name_or_preset!r}; choose one of {', '.join(PRESETS)}"
            ) from None
    return replace(preset, **overrides) if overrides else preset

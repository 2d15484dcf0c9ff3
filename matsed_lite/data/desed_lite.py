"""DESED-lite: a synthetic stand-in for DESED, written in DESED's own layout (chapter 00).

DESED cannot be downloaded in the course environment, so this module mixes
soundscapes from the procedural sounds of ``event_sounds`` and writes them as
DESED does::

    ROOT/audio/<split>/<split>_00012.wav        16-bit PCM, preset.sample_rate
    ROOT/metadata/<split>.tsv                   strong, weak or unlabeled labels
    ROOT/metadata/<split>_durations.tsv         clip lengths (s)
    ROOT/desed_lite.json                        preset, seed, generator version

Everything downstream (features, training, evaluation) reads only these
files, so swapping in real DESED later changes nothing else.

How a clip is made
------------------
Each clip is fully determined by (seed, split, index): ``clip_spec`` draws
its *specification* (length, events, labels, times, SNRs) from one random
stream, and ``render_clip`` draws the audio from a second, independent one.
Labels are therefore known without rendering, clips can be made in any order
or in parallel, and skipping a finished clip shifts nothing else.

SNR is defined per event as ``20 log10(a / b)``, where ``a`` is the event's RMS
over its *active* part (20 ms frames within 20 dB of its loudest frame, so the
pauses between barks or syllables do not count) and ``b`` is the background's
RMS over the event's labelled extent.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from . import desed_format
from .synth_folder import MANIFEST_NAME, open_manifest, watch_parent, write_manifest
from .event_sounds import MIN_EVENT_SECONDS, draw_event_duration, synthesize_event
from .sound_synthesis import synthesize_background
from ..presets import DESED_CLASSES, Preset, get_preset


@dataclass(frozen=True)
class SplitDef:
    """One split: its name, label kind, clip count and seed offset.

    ``count`` is a key of ``preset.split_sizes()`` or a fixed number of clips;
    ``seed_offset`` gives each split its own random streams; ``short_fraction``
    is the share of clips shorter than ``preset.clip_seconds``."""

    name: str
    kind: str  # "strong" | "weak" | "unlabeled"
    count: "str | int"
    seed_offset: int
    short_fraction: float = 0.0
    in_course: bool = True  # made by default; the tagging corpus only when asked for


# The splits, in generation order. Adding a split is one line here.
SPLITS: tuple[SplitDef, ...] = (
    SplitDef("synth_train", "strong", "synth_train", seed_offset=0),
    SplitDef("weak", "weak", "weak", seed_offset=1),
    SplitDef("unlabeled", "unlabeled", "unlabeled", seed_offset=2),
    # Real DESED validation has about 9% clips under 10 s.
    SplitDef("validation", "strong", "validation", seed_offset=3, short_fraction=0.09),
    # PaSST-lite's pre-training corpus, a stand-in for AudioSet: weakly labelled
    # clips with their own seeds, disjoint from every split above.
    SplitDef("tagging", "weak", "tagging", seed_offset=10, in_course=False),
    SplitDef("tagging_eval", "weak", "tagging_eval", seed_offset=11, in_course=False),
)

# --- soundscape recipe (why these values: see the module docstring) --------
EVENT_COUNTS = (1, 2, 3, 4)
EVENT_COUNT_P = (0.3, 0.35, 0.22, 0.13)
REPEAT_CLASS_P = 0.2              # a later event reuses a class already in the clip
SNR_DB = (6.0, 30.0)              # event-to-background SNR, uniform
BACKGROUND_DBFS = (-50.0, -30.0)  # background RMS before the mix, uniform
SHORT_CLIP_SECONDS = (3.0, 9.5)   # lengths of the shorter clips, uniform
PEAK_LIMIT = 0.9                  # louder mixes are scaled down to this peak
ACTIVE_FRAME_S = 0.02
ACTIVE_RANGE_DB = 20.0


@dataclass(frozen=True)
class EventSpec:
    label: str
    onset: float   # seconds, whole milliseconds
    offset: float
    snr_db: float


@dataclass(frozen=True)
class ClipSpec:
    """Everything about a clip except its audio (which ``render_clip`` makes)."""

    split: str
    index: int
    filename: str
    duration: float           # seconds, whole milliseconds
    events: tuple[EventSpec, ...]
    background_dbfs: float
    entropy: tuple[int, int, int]  # (seed, split seed offset, index)

    def n_samples(self, sample_rate: int) -> int:
        return _ms_to_samples(round(self.duration * 1000), sample_rate)


def _ms_to_samples(ms: int, sample_rate: int) -> int:
    return int(round(ms * sample_rate / 1000))


def get_split(name: "str | SplitDef") -> SplitDef:
    if isinstance(name, SplitDef):
        return name
    for s in SPLITS:
        if s.name == name:
            return s
    raise ValueError(f"unknown DESED-lite split {name!r}; choose from "
                     f"{', '.join(s.name for s in SPLITS)}")


def split_count(split: "str | SplitDef", preset: "str | Preset") -> int:
    split, preset = get_split(split), get_preset(preset)
    return int(preset.split_sizes()[split.count] if isinstance(split.count, str) else split.count)


def _streams(entropy) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(specification stream, rendering stream) of one clip."""
    spec_ss, render_ss = np.random.SeedSequence(list(entropy)).spawn(2)
    return spec_ss, render_ss


def clip_spec(split: "str | SplitDef", index: int, preset: "str | Preset", seed: int = 0) -> ClipSpec:
    """The specification of clip ``index`` of ``split``: no audio is made.

    Times are drawn in whole milliseconds, the resolution of the TSVs, so the
    written labels are exactly the rendered extents."""
    split, preset = get_split(split), get_preset(preset)
    entropy = (int(seed), int(split.seed_offset), int(index))
    rng = np.random.default_rng(_streams(entropy)[0])
    clip_ms = int(round(preset.clip_seconds * 1000))
    if rng.random() < split.short_fraction:
        clip_ms = int(round(rng.uniform(*SHORT_CLIP_SECONDS) * 1000))
    n_events = int(rng.choice(EVENT_COUNTS, p=EVENT_COUNT_P))
    events, labels = [], []
    min_ms = int(round(MIN_EVENT_SECONDS * 1000))
    for i in range(n_events):
        if labels and rng.random() < REPEAT_CLASS_P:
            label = labels[int(rng.integers(len(labels)))]
        else:
            label = DESED_CLASSES[int(rng.integers(len(DESED_CLASSES)))]
        labels.append(label)
        dur_ms = min(clip_ms, max(min_ms, int(round(draw_event_duration(label, rng) * 1000))))
        onset_ms = int(rng.integers(0, clip_ms - dur_ms + 1))
        events.append(EventSpec(label, onset_ms / 1000, (onset_ms + dur_ms) / 1000,
                                float(rng.uniform(*SNR_DB))))
    # The rendering stream gives event i the i-th child seed, so keep draw order
    # for rendering and sort only when writing the TSV.
    return ClipSpec(
        split=split.name, index=int(index), filename=f"{split.name}_{int(index):05d}.wav",
        duration=clip_ms / 1000, events=tuple(events),
        background_dbfs=float(rng.uniform(*BACKGROUND_DBFS)), entropy=entropy,
    )


def active_rms(x: np.ndarray, sample_rate: int) -> float:
    """RMS over the event's active part: 20 ms frames within 20 dB of the loudest.

    Plain RMS would call a dog with two barks in 2 s much quieter than the same
    barks close together; this measures how loud the event is while it sounds."""
    x = np.asarray(x, dtype=np.float32)
    hop = max(1, int(ACTIVE_FRAME_S * sample_rate))
    m = len(x) // hop
    if m < 1:
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    energy = np.square(x[:m * hop], dtype=np.float32).reshape(m, hop).mean(axis=1, dtype=np.float64)
    active = energy[energy >= energy.max() * 10 ** (-ACTIVE_RANGE_DB / 10)]
    return float(np.sqrt(active.mean()))


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


@dataclass
class RenderedClip:
    """A rendered clip and its parts, as scaled in the mix (for checks and plots)."""

    mix: np.ndarray
    background: np.ndarray
    events: list  # [(start_sample, audio)] in spec order


def render_clip(spec: ClipSpec, sample_rate: int, return_parts: bool = False):
    """Render a ``ClipSpec`` to float32 audio (or a ``RenderedClip`` with its parts).

    Background and events each get their own child of the clip's rendering
    seed, so an event sounds the same whatever else is in the clip."""
    sr = int(sample_rate)
    n = spec.n_samples(sr)
    children = _streams(spec.entropy)[1].spawn(1 + len(spec.events))
    bg = synthesize_background(np.random.default_rng(children[0]), sr, n)
    bg *= np.float32(10 ** (spec.background_dbfs / 20) / max(_rms(bg), 1e-12))
    mix = bg.copy()
    parts = []
    for ev, child in zip(spec.events, children[1:]):
        start = _ms_to_samples(round(ev.onset * 1000), sr)
        stop = _ms_to_samples(round(ev.offset * 1000), sr)
        x = synthesize_event(ev.label, np.random.default_rng(child), sr, (stop - start) / sr)
        gain = 10 ** (ev.snr_db / 20) * _rms(bg[start:stop]) / max(active_rms(x, sr), 1e-12)
        x *= np.float32(gain)
        mix[start:stop] += x
        parts.append((start, x))
    peak = float(np.abs(mix).max()) if n else 0.0
    if peak > PEAK_LIMIT:  # scale the whole mix: SNRs are kept, clipping avoided
        g = np.float32(PEAK_LIMIT / peak)
        mix *= g
        bg *= g
        for _, x in parts:
            x *= g
    if return_parts:
        return RenderedClip(mix=mix, background=bg, events=parts)
    return mix


# ---------------------------------------------------------------------------
# files

def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def _is_complete(path: Path, n_samples: int, sample_rate: int) -> bool:
    """A wav counts as done only if it has the full expected length and format.

    Our own writes are atomic, but a copy or a disk-full error can still leave
    a short file under the final name; that must be regenerated, not trusted."""
    try:
        info = sf.info(str(path))
        size = path.stat().st_size
    except (OSError, RuntimeError):  # missing, or not a readable wav (LibsndfileError)
        return False
    return (info.frames == n_samples and info.samplerate == sample_rate and info.channels == 1
            and info.subtype == "PCM_16" and size >= 2 * n_samples)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM to a temp name in the same folder, then rename.

    ``os.replace`` is atomic within a file system, so an interruption leaves
    either the old state or a complete file, never a half-written one."""
    pcm = np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)
    tmp = _temp_path(path)
    try:
        sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _make_clip(task) -> int:
    """Render and write one clip (runs in worker processes). Returns its samples."""
    spec, sample_rate, path = task
    audio = render_clip(spec, sample_rate)
    _write_wav(Path(path), audio, sample_rate)
    return len(audio)


def _clean_temp_files(folder: Path, pattern: str = ".*.part") -> None:
    # Leftovers of an interrupted run: never counted as clips, so just remove them.
    for p in folder.glob(pattern):
        p.unlink(missing_ok=True)


def _write_metadata(meta: Path, split: SplitDef, specs: Sequence[ClipSpec]) -> None:
    names = [s.filename for s in specs]
    if split.kind == "strong":
        events = [desed_format.Event(s.filename, e.onset, e.offset, e.label)
                  for s in specs for e in sorted(s.events, key=lambda e: (e.onset, e.offset, e.label))]
        with_events = {e.filename for e in events}
        desed_format.write_strong(meta / f"{split.name}.tsv", events,
                                  empty_files=[f for f in names if f not in with_events])
    elif split.kind == "weak":
        desed_format.write_weak(meta / f"{split.name}.tsv",
                                {s.filename: [e.label for e in s.events] for s in specs})
    elif split.kind == "unlabeled":
        desed_format.write_unlabeled(meta / f"{split.name}.tsv", names)
    else:
        raise ValueError(f"split {split.name!r} has unknown kind {split.kind!r}")
    desed_format.write_durations(meta / f"{split.name}_durations.tsv",
                                 {s.filename: s.duration for s in specs})


def generate_desed_lite(root, preset, seed: int = 0, splits: "Iterable[str | SplitDef] | None" = None,
                        workers: int = 1, progress: bool = True) -> dict:
    """Generate (or complete) a DESED-lite data set under ``root``.

    ``preset``: a ``Preset`` or preset name; it fixes the sample rate, clip
    length and clips per split. ``splits``: names (or ``SplitDef`` rows) to
    make (default: all of ``SPLITS``). ``workers > 1`` renders in that many
    processes, with identical output (a script that uses it needs the usual
    ``if __name__ == "__main__":`` guard).

    Re-running is cheap and safe: complete wavs are kept, missing or partial
    ones are (re)made, and the TSVs are rewritten at the end of each split.

    Returns ``{split: {"clips", "events", "seconds", "skipped"}}`` where
    ``seconds`` is the audio rendered by this call and ``skipped`` the clips
    already complete.
    """
    preset = get_preset(preset)
    root = Path(root)
    chosen = [get_split(s) for s in (splits if splits is not None
                                     else [s.name for s in SPLITS if s.in_course])]
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    root.mkdir(parents=True, exist_ok=True)
    manifest = open_manifest(root, preset, seed)
    _clean_temp_files(root, f".{MANIFEST_NAME}.*.part")
    write_manifest(root, manifest)
    sr = preset.sample_rate
    summary = {}
    pool = None
    try:
        for split in chosen:
            specs = [clip_spec(split, i, preset, seed) for i in range(split_count(split, preset))]
            folder = root / "audio" / split.name
            folder.mkdir(parents=True, exist_ok=True)
            _clean_temp_files(folder)
            todo = [(s, sr, str(folder / s.filename)) for s in specs
                    if not _is_complete(folder / s.filename, s.n_samples(sr), sr)]
            bar = tqdm(total=len(specs), initial=len(specs) - len(todo), unit="clip",
                       desc=f"DESED-lite {split.name}", disable=not progress)
            rendered = 0
            try:
                if workers == 1 or len(todo) < 2:
                    results = map(_make_clip, todo)
                else:
                    if pool is None:
                        # spawn: safe next to threads (torch, BLAS) and the same on every OS.
                        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                   initializer=watch_parent, initargs=(os.getpid(),))
                    chunk = max(1, min(16, len(todo) // (4 * workers)))
                    results = pool.map(_make_clip, todo, chunksize=chunk)
                for n in results:
                    rendered += n
                    bar.update(1)
            finally:
                bar.close()
            _write_metadata(root / "metadata", split, specs)
            manifest["splits"][split.name] = {"kind": split.kind, "clips": len(specs)}
            write_manifest(root, manifest)
            summary[split.name] = {
                "clips": len(specs),
                "events": sum(len(s.events) for s in specs),
                "seconds": rendered / sr,
                "skipped": len(specs) - len(todo),
            }
    except BaseException:
        if pool is not None:  # on Ctrl-C or an error: stop the workers now, not after the queue
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return summary

"""Build a DESED-format folder of real recordings that nobody here generated.

    python benchmarks/real_recordings.py --out data/real_debian [--cache ~/.cache/matsed_real]

The sounds come from Debian packages that ship real recordings (downloaded with
``apt-get download``, unpacked with ``dpkg-deb``; no root needed):

- ``asterisk-core-sounds-en-wav``: 358 spoken telephone prompts (one speaker, 8 kHz);
- ``bucklespring-data``: key presses and releases of a recorded IBM Model M keyboard;
- ``gcompris-qt-data``: recordings of farm animals, 26 musical instruments and a
  sound-memory game (barks, a gong, hits, rain, frogs, a train, a car, a harbour,
  factory noise), packed in Qt resource files that this script unpacks.

They make five classes of their own, none of them a DESED class: Speech_prompt,
Keyboard_typing, Farm_animal, Percussion, Melodic_instrument. Every source file
belongs to one side: about three quarters of each class's files (and of the
backgrounds) feed the training splits, the rest the validation split, so
validation scores sounds the model never heard (other prompts, other keys,
other animals and instruments, other backgrounds). With ``--shared-sources``
both sides draw from all the files instead: validation then mixes, at other
times and levels and over other backgrounds' stretches, the very recordings the
training clips were made of, as a folder cut from one collection often does.

Clips are mixed the way DESED's soundscapes are: a looped real background, 1-4
events at 3-20 dB above it, labels from each event's trimmed extent. Then each
clip is written in a random format of the kind users have: 8, 16, 22.05, 32,
44.1 or 48 kHz, mono or stereo, wav or flac, and one clip in five is shorter
than 10 s. The layout is real DESED's (``audio/train/synthetic21_train/...``),
so ``layout_for`` takes the real-DESED path.

Used by the closing checks of issue 10: ``matsed-lite probe`` (the shipped
encoder's features against log-mel on classes it never saw), and the ``cpu``
pipeline against a plain supervised CRNN trained from scratch for the same time.
"""
from __future__ import annotations

import argparse
import glob
import os
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

WORK_RATE = 32000          # events and backgrounds are mixed at this rate
PACKAGES = ("asterisk-core-sounds-en-wav", "bucklespring-data", "gcompris-qt-data")
GC = "gcompris/gcompris/src"
ANIMALS = f"{GC}/activities/explore_farm_animals/resource/animals"
INSTRUMENTS = f"{GC}/activities/instruments/resource"
MEMORY = f"{GC}/activities/memory-sound/resource"

CLASSES = {
    "Speech_prompt": ["asterisk-core-sounds-en-wav/usr/share/asterisk/sounds/en_US_f_Allison/*.wav",
                      "asterisk-core-sounds-en-wav/usr/share/asterisk/sounds/en_US_f_Allison/*/*.wav"],
    "Keyboard_typing": ["bucklespring-data/usr/share/buckle/wav/*-0.wav"],  # presses; releases paired
    "Farm_animal": [f"{ANIMALS}/*.ogg", f"{MEMORY}/LRBark_*.ogg"],
    "Percussion": [f"{INSTRUMENTS}/{n}.ogg" for n in (
        "bongo", "castanets", "cymbal", "drum_kit", "maracas", "snare_drum", "tambourine",
        "timpani", "triangle")] + [f"{MEMORY}/LRHits_01_LA.ogg", f"{MEMORY}/LRBuddhist_gong_05_LA.ogg"],
    "Melodic_instrument": [f"{INSTRUMENTS}/{n}.ogg" for n in (
        "accordion", "banjo", "cello", "clarinet", "electric_guitar", "flute_traversiere", "guitar",
        "harmonica", "harp", "horn", "organ", "piano", "saxophone", "trombone", "trumpet", "tuba",
        "violin")] + [f"{MEMORY}/guitar_*.ogg"],
}
BACKGROUNDS = [f"{MEMORY}/LR{n}.ogg" for n in (
    "Rain_in_garden_01_LA_cut", "FrogsInPondDuringStormLACut", "Train_slowing_down_01_LA_cut",
    "StartAndStopCarEngine1LACut", "Factory_noise_01_LA", "Factory_noise_02_LA",
    "Factory_noise_03_LA", "Factory_noise_04_LA", "Factory_noise_05_LA", "Factory_noise_06_LA")] + [
    f"{GC}/activities/watercycle/resource/harbor1.wav", f"{GC}/activities/watercycle/resource/harbor2.wav",
    f"{GC}/activities/canal_lock/resource/water_fill.wav"]

FORMATS = [(8000, 1, "wav"), (16000, 1, "flac"), (16000, 1, "wav"), (22050, 2, "wav"),
           (32000, 1, "flac"), (44100, 2, "flac"), (48000, 1, "wav"), (48000, 2, "flac")]


# --- sources -----------------------------------------------------------------------------

def unpack_qt_resources(rcc: Path, out: Path) -> None:
    """Write the files of a Qt ``.rcc`` resource bundle under ``out`` (format version 1-3,
    zlib-compressed or stored entries; zstd entries, which gcompris does not use, are skipped)."""
    b = rcc.read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{rcc}: not a Qt resource file (no 'qres' magic)")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    entry = 14 + (8 if version >= 2 else 0)

    def name(off):
        (n,) = struct.unpack(">H", b[names + off:names + off + 2])
        return b[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i, prefix):
        o = tree + i * entry
        noff, flags = struct.unpack(">IH", b[o:o + 6])
        here = f"{prefix}/{name(noff)}" if i else prefix
        if flags & 2:      # a directory: its children are consecutive entries
            count, first = struct.unpack(">II", b[o + 6:o + 14])
            for c in range(first, first + count):
                walk(c, here)
            return
        (doff,) = struct.unpack(">I", b[o + 10:o + 14])
        (length,) = struct.unpack(">I", b[data + doff:data + doff + 4])
        raw = b[data + doff + 4:data + doff + 4 + length]
        if flags & 4:
            return
        if flags & 1:
            raw = zlib.decompress(raw[4:])
        path = out / here.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)

    walk(0, "")


def fetch_sources(cache: Path) -> Path:
    """Download and unpack the packages into ``cache`` once; return the unpacked root."""
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / "unpacked"
    for pkg in PACKAGES:
        if (root / pkg).is_dir():
            continue
        debs = sorted(cache.glob(f"{pkg}_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", pkg], cwd=cache, check=True)
            debs = sorted(cache.glob(f"{pkg}_*.deb"))
        (root / pkg).mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root / pkg)], check=True)
    if not (root / "gcompris").is_dir():
        for rcc in sorted((root / "gcompris-qt-data/usr/share/gcompris-qt/rcc").glob("*.rcc")):
            unpack_qt_resources(rcc, root / "gcompris")
    return root


def resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    if orig == new:
        return x
    g = np.gcd(orig, new)
    return resample_poly(x, new // g, orig // g).astype(np.float32)


def read_mono(path: Path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(x.mean(axis=1), sr, WORK_RATE)


def trim(x: np.ndarray, floor_db: float = -35.0) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``floor_db`` below the loudest 20 ms frame,
    so that a label's onset and offset are where the sound is."""
    hop = WORK_RATE // 50
    n = len(x) // hop
    if n < 2:
        return x
    rms = np.sqrt((x[:n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12)
    on = np.flatnonzero(20 * np.log10(rms / rms.max()) > floor_db)
    return x[on[0] * hop:(on[-1] + 1) * hop]


def split_files(files: list[str], rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """About a quarter of the files (at least one) for validation, the rest for training."""
    files = sorted(files)
    order = rng.permutation(len(files))
    n_val = max(1, int(round(len(files) / 4)))
    return [files[i] for i in order[n_val:]], [files[i] for i in order[:n_val]]


def class_files(root: Path, patterns: list[str]) -> list[str]:
    return sorted({f for p in patterns for f in glob.glob(str(root / p))})


def load_sources(root: Path, seed: int, shared: bool = False) -> dict:
    """{"train"|"validation": {"events": {class: [arrays]}, "backgrounds": [arrays]}}

    ``shared``: both sides get every file (validation reuses the training recordings)."""
    rng = np.random.default_rng(seed)
    if shared:
        one = load_sources_shared(root)
        return {"train": one, "validation": one}
    sides = {"train": {"events": {}, "backgrounds": []}, "validation": {"events": {}, "backgrounds": []}}
    for cls, patterns in CLASSES.items():
        files = class_files(root, patterns)
        if len(files) < 2:
            raise SystemExit(f"class {cls}: found {len(files)} files under {root} for {patterns}")
        for side, chosen in zip(("train", "validation"), split_files(files, rng)):
            sides[side]["events"][cls] = read_events(cls, chosen)
    bgs = [str(root / p) for p in BACKGROUNDS]
    for side, chosen in zip(("train", "validation"), split_files(bgs, rng)):
        sides[side]["backgrounds"] = [read_mono(Path(f)) for f in chosen]
    return sides


def load_sources_shared(root: Path) -> dict:
    side = {"events": {}}
    for cls, patterns in CLASSES.items():
        files = class_files(root, patterns)
        if not files:
            raise SystemExit(f"class {cls}: found no files under {root} for {patterns}")
        side["events"][cls] = read_events(cls, files)
    side["backgrounds"] = [read_mono(root / p) for p in BACKGROUNDS]
    return side


def read_events(cls: str, files: list[str]) -> list:
    """A class's event sounds (keyboard: (press, release) pairs). A press without its
    release file, or another sound under 0.1 s once its silence is trimmed, is left out,
    and the count is printed; a class left with none is an error naming it."""
    if cls == "Keyboard_typing":   # a key = its press and its release
        pairs = [(f, f.replace("-0.wav", "-1.wav")) for f in files]
        events = [(trim(read_mono(Path(press))), trim(read_mono(Path(release))))
                  for press, release in pairs if os.path.exists(release)]
        why = "without a release file (-1.wav)"
    else:
        events = [s for s in (trim(read_mono(Path(f))) for f in files) if len(s) > WORK_RATE // 10]
        why = "shorter than 0.1 s after trimming silence"
    if len(events) < len(files):
        print(f"class {cls}: left out {len(files) - len(events)} of {len(files)} files {why}")
    if not events:
        raise SystemExit(f"class {cls}: none of its {len(files)} files is usable ({why})")
    return events


# --- mixing -----------------------------------------------------------------------------

def rms(x):
    return float(np.sqrt(np.mean(x ** 2) + 1e-12))


def background(sounds, n, rng) -> np.ndarray:
    """A real background looped (with 50 ms cross-fades) to ``n`` samples, plus faint pink noise."""
    src = sounds[rng.integers(len(sounds))]
    fade = WORK_RATE // 20
    out = np.zeros(n + len(src), np.float32)
    pos, ramp = 0, np.linspace(0, 1, fade, dtype=np.float32)
    while pos < n:
        seg = src.copy()
        if len(seg) > 2 * fade:
            seg[:fade] *= ramp
            seg[-fade:] *= ramp[::-1]
        out[pos:pos + len(seg)] += seg
        pos += max(len(seg) - fade, fade)
    out = out[:n]
    pink = np.cumsum(rng.standard_normal(n)).astype(np.float32)
    pink -= np.convolve(pink, np.ones(200) / 200, mode="same")
    return out / rms(out) + 0.1 * pink / rms(pink)


def keyboard_event(keys, rng) -> np.ndarray:
    """A burst of 3-12 keystrokes: each key's press, then its release 60-150 ms later."""
    strokes = int(rng.integers(3, 13))
    pos, parts = 0, []
    for _ in range(strokes):
        press, release = keys[rng.integers(len(keys))]
        r_at = pos + int(rng.uniform(0.06, 0.15) * WORK_RATE)
        parts += [(pos, press), (r_at, release)]
        pos = r_at + int(rng.uniform(0.03, 0.2) * WORK_RATE)
    out = np.zeros(max(p + len(s) for p, s in parts), np.float32)
    for p, s in parts:
        out[p:p + len(s)] += s
    return out


def event(cls, sounds, rng) -> np.ndarray:
    if cls == "Keyboard_typing":
        x = keyboard_event(sounds, rng)
    else:
        x = sounds[rng.integers(len(sounds))]
        if len(x) > 1.5 * WORK_RATE:        # a long recording: a random 1-6 s stretch of it
            length = int(min(len(x), rng.uniform(1.0, 6.0) * WORK_RATE))
            start = int(rng.integers(0, len(x) - length + 1))
            x = trim(x[start:start + length])
    x = x.copy()
    fade = min(len(x) // 4, WORK_RATE // 100)
    if fade:
        x[:fade] *= np.linspace(0, 1, fade)
        x[-fade:] *= np.linspace(1, 0, fade)
    return x


def mix_clip(side, rng, seconds):
    """One clip: (audio at WORK_RATE, [(onset, offset, class)])."""
    n = int(seconds * WORK_RATE)
    bg = background(side["backgrounds"], n, rng)
    out = bg.copy()
    events = []
    for _ in range(int(rng.integers(1, 5))):
        cls = list(CLASSES)[rng.integers(len(CLASSES))]
        x = event(cls, side["events"][cls], rng)
        start = int(rng.integers(0, max(1, n - WORK_RATE // 4)))
        x = x[:n - start]
        snr = rng.uniform(3.0, 20.0)
        out[start:start + len(x)] += x / rms(x) * rms(bg) * 10 ** (snr / 20)
        events.append((start / WORK_RATE, (start + len(x)) / WORK_RATE, cls))
    out *= 10 ** (rng.uniform(-30, -12) / 20) / rms(out)
    peak = np.abs(out).max()
    if peak > 0.99:
        out *= 0.99 / peak
    return out, events


def write_clip(path_stem: Path, audio, rng) -> str:
    sr, channels, ext = FORMATS[rng.integers(len(FORMATS))]
    y = resample(audio, WORK_RATE, sr)
    if channels == 2:      # a little inter-channel difference, as a real stereo recording has
        pan = rng.uniform(0.6, 1.0)
        y = np.stack([y * pan, y * (1.6 - pan)], axis=1)
    path = path_stem.with_suffix("." + ext)
    sf.write(str(path), np.clip(y, -1, 1), sr, subtype="PCM_16")
    return path.name


SPLITS = {  # name: (side, kind, audio folder, TSV)
    "synth_train": ("train", "strong", "audio/train/synthetic21_train/soundscapes_16k",
                    "metadata/train/synthetic21_train/soundscapes.tsv"),
    "weak": ("train", "weak", "audio/train/weak_16k", "metadata/train/weak.tsv"),
    "unlabeled": ("train", "unlabeled", "audio/train/unlabel_in_domain_16k", None),
    "validation": ("validation", "strong", "audio/validation/validation_16k",
                   "metadata/validation/validation.tsv"),
}


def build(out: Path, sources: dict, counts: dict, seed: int) -> None:
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out}: exists and is not empty; choose another --out")
    for s, (name, (side, kind, audio_dir, tsv)) in enumerate(SPLITS.items()):
        rng = np.random.default_rng([seed, s])
        folder = out / audio_dir
        folder.mkdir(parents=True, exist_ok=True)
        rows, durations = [], []
        for i in range(counts[name]):
            seconds = 10.0 if rng.random() < 0.8 else float(np.round(rng.uniform(3.0, 9.9), 2))
            audio, events = mix_clip(sources[side], rng, seconds)
            fname = write_clip(folder / f"{name}_{i:05d}", audio, rng)
            durations.append((fname, seconds))
            if kind == "strong":
                rows += [f"{fname}\t{on:.3f}\t{off:.3f}\t{cls}" for on, off, cls in sorted(events)]
            elif kind == "weak":
                rows.append(f"{fname}\t{','.join(sorted({c for _, _, c in events}))}")
        if tsv:
            header = "filename\tonset\toffset\tevent_label" if kind == "strong" else "filename\tevent_labels"
            (out / tsv).parent.mkdir(parents=True, exist_ok=True)
            (out / tsv).write_text("\n".join([header] + rows) + "\n")
        if name == "validation":
            (out / "metadata/validation/validation_durations.tsv").write_text(
                "\n".join(["filename\tduration"] + [f"{f}\t{d:.3f}" for f, d in durations]) + "\n")
        print(f"{name:12s} {counts[name]:5d} clips")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "matsed_real")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth-train", type=int, default=600)
    ap.add_argument("--weak", type=int, default=300)
    ap.add_argument("--unlabeled", type=int, default=600)
    ap.add_argument("--validation", type=int, default=200)
    ap.add_argument("--shared-sources", action="store_true",
                    help="validation mixes the same recordings as training (default: disjoint files)")
    args = ap.parse_args()
    sources = load_sources(fetch_sources(args.cache), args.seed, shared=args.shared_sources)
    for side, s in sources.items():
        print(side, {c: len(v) for c, v in s["events"].items()}, "backgrounds", len(s["backgrounds"]))
    counts = {"synth_train": args.synth_train, "weak": args.weak, "unlabeled": args.unlabeled,
              "validation": args.validation}
    build(args.out, sources, counts, args.seed)


if __name__ == "__main__":
    main()

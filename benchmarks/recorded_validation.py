"""Re-record a DESED-format validation split in rooms and through microphones it never had.

    python benchmarks/recorded_validation.py --data data/desed_lite_cpu --out data/desed_lite_cpu_recorded
    matsed-lite compare --run matsed_lite/weights/matsed_lite_cpu.pt \\
        --run matsed_lite/weights/crnn_cpu.pt --data data/desed_lite_cpu_recorded

Why: DESED trains on synthetic soundscapes and validates on real recordings, so
its validation scores a detector on recording conditions it did not train on;
that shift is where a pre-trained encoder is meant to help. DESED-lite's
validation comes from the very generator its training clips come from, so a
CRNN trained from scratch there learns exactly what it is scored on. This
script keeps every clip's events, times and labels and changes only how the
clip was captured, the way a recording differs from a mix:

- a room: the clip is convolved with an impulse response of exponentially
  decaying noise (RT60 0.2-0.8 s, direct-to-reverberant ratio 0-10 dB);
- a microphone and its channel: a band limit (high-pass 80-300 Hz, low-pass
  3.5-7.5 kHz, 2nd-order Butterworth) and a spectral tilt of -3..+3 dB/octave;
- a noise floor at 45-65 dB below the clip's RMS.

Every clip gets its own conditions, drawn from (--seed, clip index). Labels are
copied unchanged: a reverberant tail past an annotated offset is what real
annotators' offsets sit beside too. Only the validation split is written
(metadata/validation.tsv, its durations, audio/validation/); ``matsed-lite
evaluate`` and ``compare`` read nothing else.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, fftconvolve, sosfilt

RT60_S = (0.2, 0.8)
DRR_DB = (0.0, 10.0)
HIGHPASS_HZ = (80.0, 300.0)
LOWPASS_HZ = (3500.0, 7500.0)
TILT_DB_PER_OCTAVE = (-3.0, 3.0)
NOISE_BELOW_DB = (45.0, 65.0)


def room_response(rng: np.random.Generator, sr: int) -> np.ndarray:
    rt60 = rng.uniform(*RT60_S)
    t = np.arange(int(rt60 * sr)) / sr
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60)   # -60 dB at rt60
    tail[: int(0.002 * sr)] = 0.0                                 # first reflections after 2 ms
    drr = 10 ** (rng.uniform(*DRR_DB) / 10)
    tail *= np.sqrt(1.0 / (drr * max(np.sum(tail ** 2), 1e-12)))  # direct path energy 1
    tail[0] = 1.0
    return tail


def tilt(x: np.ndarray, sr: int, db_per_octave: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    gain_db = db_per_octave * np.log2(np.maximum(f, 50.0) / 1000.0)
    return np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(x))


def re_record(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One clip through a random room, microphone and noise floor; same length, same RMS."""
    rms_in = np.sqrt(np.mean(x ** 2)) + 1e-12
    y = fftconvolve(x, room_response(rng, sr))[: len(x)]
    hp = rng.uniform(*HIGHPASS_HZ)
    lp = min(rng.uniform(*LOWPASS_HZ), 0.45 * sr)
    y = sosfilt(butter(2, [hp, lp], btype="bandpass", fs=sr, output="sos"), y)
    y = tilt(y, sr, rng.uniform(*TILT_DB_PER_OCTAVE))
    y *= rms_in / (np.sqrt(np.mean(y ** 2)) + 1e-12)
    y += rng.standard_normal(len(y)) * rms_in * 10 ** (-rng.uniform(*NOISE_BELOW_DB) / 20)
    peak = np.abs(y).max()
    return (y * (0.9 / peak) if peak > 0.9 else y).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a DESED-lite folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tsv = args.data / "metadata" / "validation.tsv"
    audio = args.data / "audio" / "validation"
    if not tsv.is_file() or not audio.is_dir():
        raise SystemExit(f"{args.data}: needs metadata/validation.tsv and audio/validation/ (a DESED-lite folder)")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out}: exists and is not empty; choose another --out")
    # Built beside --out and renamed at the end: a clip that fails leaves no half-made folder.
    part = args.out.with_name(f".{args.out.name}.part")
    shutil.rmtree(part, ignore_errors=True)
    (part / "metadata").mkdir(parents=True)
    (part / "audio" / "validation").mkdir(parents=True)
    for name in ("validation.tsv", "validation_durations.tsv"):
        shutil.copy(args.data / "metadata" / name, part / "metadata" / name)
    files = sorted(audio.glob("*.wav"))
    try:
        for i, path in enumerate(files):
            x, sr = sf.read(path, dtype="float64", always_2d=False)
            if x.ndim != 1:
                raise SystemExit(f"{path}: expected a mono clip, got {x.shape[1]} channels")
            y = re_record(x, sr, np.random.default_rng([args.seed, i]))
            sf.write(part / "audio" / "validation" / path.name, y, sr, subtype="PCM_16")
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    if args.out.exists():
        args.out.rmdir()
    part.rename(args.out)
    print(f"{len(files)} clips re-recorded into {args.out}")


if __name__ == "__main__":
    main()

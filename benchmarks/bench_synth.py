"""How fast DESED-lite is generated, and how big the cpu preset's data set is.

    python benchmarks/bench_synth.py [--clips 100] [--preset cpu]

Generates ``--clips`` 10 s clips of the synth_train split into a temporary
folder with one worker (so clips/s is per core), times the stages separately,
and projects the on-disk size and generation time of the whole preset from
the clip specifications (which cost no audio).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from matsed_lite.data.desed_lite import SPLITS, _write_wav, clip_spec, generate_desed_lite, render_clip, split_count
from matsed_lite.presets import get_preset

WAV_HEADER_BYTES = 44


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    preset = get_preset(args.preset)
    bench = get_preset(preset, n_synth_train=args.clips)
    sr, n = preset.sample_rate, args.clips

    # warm-up: first calls pay for imports and FFT plans
    render_clip(clip_spec("synth_train", 10**6, bench, args.seed), sr)

    rows = []
    t = time.perf_counter()
    specs = [clip_spec("synth_train", i, bench, args.seed) for i in range(n)]
    rows.append(("specification", time.perf_counter() - t))
    t = time.perf_counter()
    audio = [render_clip(s, sr) for s in specs]
    rows.append(("render (audio)", time.perf_counter() - t))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for s, a in zip(specs, audio):
            _write_wav(Path(tmp) / s.filename, a, sr)
        rows.append(("write wav", time.perf_counter() - t))
    del audio
    with tempfile.TemporaryDirectory() as tmp:
        t, c = time.perf_counter(), time.process_time()
        generate_desed_lite(tmp, bench, seed=args.seed, splits=["synth_train"], workers=1, progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    rows.append(("generate_desed_lite", wall))

    print(f"\nDESED-lite generation, {n} clips of {preset.clip_seconds:g} s at {sr} Hz, 1 worker")
    print(f"{'stage':<22}{'ms/clip':>10}{'clips/s':>10}")
    for name, sec in rows:
        print(f"{name:<22}{1e3 * sec / n:>10.2f}{n / sec:>10.1f}")
    print(f"end to end: {n / wall:.1f} clips/s per core (wall), {n / cpu:.1f} per CPU-second; "
          f"{n * preset.clip_seconds / wall:.0f}x real time")

    print(f"\nProjected data set of preset {preset.name!r} (16-bit mono wav; generation time at 1 worker)")
    print(f"{'split':<14}{'clips':>8}{'hours':>8}{'MB':>10}{'gen. s':>10}")
    total_clips = total_bytes = total_s = 0
    for split in SPLITS:
        k = split_count(split, preset)
        samples = np.array([clip_spec(split, i, preset, args.seed).n_samples(sr) for i in range(k)])
        nbytes = int((WAV_HEADER_BYTES + 2 * samples).sum())
        secs = samples.sum() / sr
        print(f"{split.name:<14}{k:>8}{secs / 3600:>8.2f}{nbytes / 1e6:>10.1f}{k / (n / wall):>10.1f}")
        total_clips, total_bytes, total_s = total_clips + k, total_bytes + nbytes, total_s + secs
    print(f"{'total':<14}{total_clips:>8}{total_s / 3600:>8.2f}{total_bytes / 1e6:>10.1f}"
          f"{total_clips / (n / wall):>10.1f}")


if __name__ == "__main__":
    main()

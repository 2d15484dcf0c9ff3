"""How fast the streamed tagging corpus renders, on one core.

    OMP_NUM_THREADS=1 python benchmarks/bench_tagging_corpus.py [--clips 200] [--preset cpu]

Times ``render_tagging_clip`` (audio, labels) and the log-mel front end
separately, then ``StreamedTaggingClips`` items end to end, with torch on one
thread; also prints the per-class synthesis cost (ms per second of audio), so a
model that got slow shows up by name.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from matsed_lite.data.features import LogMel
from matsed_lite.data.tagging_corpus import (FAMILY_CLASSES, StreamedTaggingClips,
                                             render_tagging_clip, synthesize_family_event)
from matsed_lite.presets import get_preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-class-draws", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    p = get_preset(args.preset)
    n, sr = args.clips, p.sample_rate
    logmel = LogMel(p)
    render_tagging_clip(10**7, args.seed, sr, p.clip_seconds)  # warm-up (imports, FFT plans)

    times, audio = [], []
    for i in range(n):
        t = time.perf_counter()
        audio.append(render_tagging_clip(i, args.seed, sr, p.clip_seconds)[0])
        times.append(time.perf_counter() - t)
    render = float(np.sum(times))
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n, 32):
            logmel(torch.from_numpy(np.stack(audio[i:i + 32])))
    mel = time.perf_counter() - t
    ds = StreamedTaggingClips(n, args.seed, p)
    t = time.perf_counter()
    for i in range(n):
        ds[i]
    item = time.perf_counter() - t

    ms = 1e3 * np.array(times)
    print(f"\nStreamed tagging corpus: {n} clips of {p.clip_seconds:g} s at {sr} Hz, "
          f"{len(FAMILY_CLASSES)} classes, 1 thread")
    print(f"{'stage':<34}{'ms/clip':>10}{'clips/s':>10}")
    for name, sec in (("render_tagging_clip (audio)", render), ("log-mel (batches of 32)", mel),
                      ("StreamedTaggingClips item", item)):
        print(f"{name:<34}{1e3 * sec / n:>10.2f}{n / sec:>10.1f}")
    print(f"render ms/clip: median {np.median(ms):.1f}, p90 {np.percentile(ms, 90):.1f}, "
          f"max {ms.max():.1f}")
    print(f"a batch of 32 (render + log-mel + labels): {32 * item / n:.2f} s")

    print(f"\nPer-class synthesis, ms per second of audio ({args.per_class_draws} draws of 4 s)")
    rows = []
    for c in FAMILY_CLASSES:
        t = time.perf_counter()
        for s in range(args.per_class_draws):
            synthesize_family_event(c, np.random.default_rng(s), sr, 4.0)
        rows.append((1e3 * (time.perf_counter() - t) / (4.0 * args.per_class_draws), c))
    for cost, c in sorted(rows, reverse=True):
        print(f"  {c:<30}{cost:>7.2f}")


if __name__ == "__main__":
    main()

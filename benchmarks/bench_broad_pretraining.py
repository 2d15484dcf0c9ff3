"""Seconds per step of broad-corpus encoder pre-training, with and without a rendering worker.

    OMP_NUM_THREADS=1 python benchmarks/bench_broad_pretraining.py [--preset cpu] [--steps 6]
        [--workers 0 1]

One training thread (torch.set_num_threads(1)). For each worker count, builds the
54-class PaSST-lite, streams fresh clips (``broad_train_data``, batch = the
preset's ``encoder_batch``) and times ``--steps`` optimizer steps after one
warm-up step, as ``engine.fit`` takes them (tagging step, backward, AdamW). With
0 workers the clips are rendered between steps; with 1 the worker renders the
next batches on another core while the model trains.
"""
from __future__ import annotations

import argparse
import time

import torch

from matsed_lite.data.tagging_corpus import FAMILY_CLASSES
from matsed_lite.models.passt_lite import PaSSTLite
from matsed_lite.presets import ENCODER_LR, get_preset
from matsed_lite.training.broad_pretraining import broad_train_data
from matsed_lite.training.encoder_pretraining import tagging_step


def seconds_per_step(preset, workers: int, steps: int, seed: int = 0) -> tuple[float, float]:
    torch.manual_seed(seed)
    model = PaSSTLite.from_preset(preset, n_classes=len(FAMILY_CLASSES)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=ENCODER_LR)
    batch = preset.encoder_batch
    data = broad_train_data(preset, seed, (steps + 1) * batch, batch, num_workers=workers)
    times, wait = [], 0.0
    t = time.perf_counter()
    it = iter(data(1))
    for i in range(steps + 1):
        t_fetch = time.perf_counter()
        b = next(it)
        fetched = time.perf_counter() - t_fetch
        loss, _ = tagging_step(model, b, None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        now = time.perf_counter()
        if i:  # the first step pays for start-up (worker start, first batch)
            times.append(now - t)
            wait += fetched
        t = now
    return sum(times) / len(times), wait / len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    torch.set_num_threads(1)
    p = get_preset(args.preset)
    print(f"preset {p.name}, batch {p.encoder_batch}, {args.steps} timed steps, 1 training thread")
    for w in args.workers:
        step, wait = seconds_per_step(p, w, args.steps)
        print(f"workers={w}: {step:.2f} s/step ({wait:.2f} s of it waiting for data), "
              f"{p.encoder_batch / step:.1f} clips/s")


if __name__ == "__main__":
    main()

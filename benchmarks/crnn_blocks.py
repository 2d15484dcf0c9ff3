"""Which part of the DCASE CRNN's conv blocks makes it slow to learn short events?

    python benchmarks/crnn_blocks.py --data data/desed_lite_cpu [--steps 150] \\
        [--variants glu,relu,maxpool,t40ms,nonorm] [--train-clips 600] [--seed 0]

Each variant is ``models.crnn.CRNN`` with one change, trained plainly supervised
(strong-frame BCE, Adam 1e-3, batches of 12 synth_train clips, no teacher, no
augmentation) for ``--steps`` steps from the same seed on the same cached log-mels,
then scored by validation frame AP per class at its own output frame rate. It
isolates the model from the recipe: the question is what a few hundred steps can
learn, the budget the lite presets have (the DCASE baseline trains 200 epochs).

Variants:
    glu      the DCASE baseline's blocks: Conv -> BN -> GLU -> Dropout -> AvgPool
    relu     ReLU instead of GLU
    maxpool  MaxPool instead of AvgPool
    t40ms    time pooled x2 once (40 ms output frames on the lite presets) instead of x4
    nonorm   no per-clip min-max scaling of the log-mel

Measured on this project's 2-core machine (cpu preset, seed 0, 1 thread each;
validation frame mAP over 300 clips; the first run of these variants was a
throwaway copy of this loop, whose models lacked the unused attention-pooling
layer, so a rerun here draws other initial weights): 150 steps, glu 0.30, relu 0.40, maxpool
0.30, t40ms 0.24, nonorm 0.27; 450 steps, relu 0.72. This script itself
(``--variants relu,glu --steps 150``, later): relu 0.373, glu 0.292, the short
classes (alarm, cat, dog, speech) 0.06-0.12 with the GLU and 0.18-0.29 with the ReLU.
Hence ``crnn_activation = "relu"`` in the lite presets. One seed: differences of a
few hundredths are noise.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from matsed_lite.data.datasets import make_dataset
from matsed_lite.data.features import LogMel
from matsed_lite.data.labels import pool_time
from matsed_lite.data.layout import infer_classes, layout_for
from matsed_lite.evaluation.tagging import average_precision_per_class
from matsed_lite.models.crnn import CRNN
from matsed_lite.presets import get_preset

VARIANTS = {
    "glu": {"activation": "glu"},
    "relu": {"activation": "relu"},
    "maxpool": {"activation": "glu", "pool": "max"},
    "t40ms": {"activation": "glu", "time_pools": (2, 1, 1, 1, 1, 1, 1)},
    "nonorm": {"activation": "glu", "normalise": False},
}


def build(preset, n_classes: int, activation="glu", pool="avg", time_pools=None,
          normalise=True) -> CRNN:
    """A CRNN with one block setting changed."""
    from matsed_lite.models.crnn import frequency_pools

    pools = None if time_pools is None else frequency_pools(preset.n_mels, 7, time_pools)
    model = CRNN(preset.n_mels, n_classes, pools=pools, activation=activation)
    if pool == "max":
        for block in model.cnn:
            block[-1] = torch.nn.MaxPool2d(block[-1].kernel_size)
    if not normalise:
        model.normalise = lambda mel: mel
    return model


def load_mels(root, preset, n_train: int):
    layout = layout_for(root)
    classes = infer_classes([layout["synth_train"], layout["validation"]])
    logmel = LogMel(preset)
    out = {"classes": classes}
    for split, n in (("synth_train", n_train), ("validation", None)):
        ds = make_dataset(layout[split], preset, classes)
        xs, ys = [], []
        for i in range(len(ds) if n is None else min(n, len(ds))):
            item = ds[i]
            with torch.no_grad():
                xs.append(logmel(item["waveform"][None])[0, :, :preset.n_frames])
            ys.append(item["strong"][:preset.n_frames])
        out[split] = (torch.stack(xs), torch.stack(ys))
    return out


def run_variant(data, preset, name: str, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    classes = data["classes"]
    model = build(preset, len(classes), **VARIANTS[name])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    (x, y), (xv, yv) = data["synth_train"], data["validation"]
    g = torch.Generator().manual_seed(seed)
    t0 = time.process_time()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (12,), generator=g)
        out = model(x[idx])["frame_logits"]
        target = pool_time(y[idx], model.time_downsampling)[:, :out.shape[1]]
        loss = F.binary_cross_entropy_with_logits(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(xv[i:i + 50])["frame_probs"] for i in range(0, len(xv), 50)])
    target = pool_time(yv, model.time_downsampling)[:, :scores.shape[1]] > 0.5
    ap = average_precision_per_class(scores.reshape(-1, len(classes)),
                                     target.reshape(-1, len(classes)).float())
    return {"variant": name, "steps": steps, "seed": seed, "train_loss": float(loss.detach()),
            "frame_mAP": float(np.nanmean(ap)), "frame_ap": dict(zip(classes, map(float, ap))),
            "cpu_seconds": time.process_time() - t0}


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--train-clips", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    names = args.variants.split(",")
    for n in names:
        if n not in VARIANTS:
            raise SystemExit(f"--variants: unknown variant {n!r}; choose from {', '.join(VARIANTS)}")
    preset = get_preset(args.preset)
    data = load_mels(args.data, preset, args.train_clips)
    results = []
    for n in names:
        r = run_variant(data, preset, n, args.steps, args.seed)
        results.append(r)
        short = " ".join(f"{c[:5]} {a:.2f}" for c, a in r["frame_ap"].items())
        print(f"{n:<8} frame mAP {r['frame_mAP']:.3f}  ({short})  "
              f"{r['cpu_seconds']:.0f} CPU-s", flush=True)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()

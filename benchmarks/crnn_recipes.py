"""The DCASE CRNN's recipe at a laptop budget: which part slows its first epochs?

    python benchmarks/crnn_recipes.py --data data/desed_lite_cpu --out runs/crnn_recipes \\
        [--preset cpu] [--variants dcase,no_warmup,...] [--epochs 3] [--plan-epochs 10] [--seed 0]
        [--geometry dcase|small]

Every variant trains the preset's CRNN (``train_crnn``) for ``--epochs`` epochs of a
run planned for ``--plan-epochs`` (the LR and consistency ramps are laid out over the
planned run, as in the shipped run: ``stop_after_epoch``), with one change to its
``Recipe`` (``recipe_overrides``), on the architecture ``--geometry`` names
(``models.crnn.CRNN_GEOMETRIES``; default the preset's). Printed per variant: the student's and the
teacher's validation PSDS1 after every epoch and the CPU minutes. A variant finished
in --out is read back, not re-run.

Variants:
    dcase        the DCASE baseline's recipe: the exp ramp warms up w_cons AND the learning
                 rate over the first quarter of the planned run
    no_warmup    the recipe as shipped (``RECIPES["crnn"]``): the learning rate is 1e-3
                 from the first step (w_cons still ramps)
    no_warmup_light  no_warmup, and no mixup, no FilterAugment / frequency warp
    supervised   ``crnn_supervised``: BCE on strong and weak clips, no teacher, no
                 augmentation (the yardstick)
    supervised_no_weak  supervised, strong-frame BCE only (the weak clips still pass
                 through the network, and its BatchNorm, but give no loss)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from matsed_lite.models.crnn import CRNN_GEOMETRIES
from matsed_lite.training.finetune import train_crnn

VARIANTS = {
    "dcase": ("crnn", {"lr_follows_ramp": True}),
    "no_warmup": ("crnn", {}),
    "no_warmup_light": ("crnn", {"mixup_p": 0.0, "spec_augment": False}),
    "supervised": ("crnn_supervised", {}),
    "supervised_no_weak": ("crnn_supervised", {"w_weak": 0.0}),
}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3, help="epochs trained per variant")
    ap.add_argument("--plan-epochs", type=int, default=10,
                    help="the run the schedules are laid out for (the shipped CRNN's 10)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--geometry", choices=list(CRNN_GEOMETRIES), default=None,
                    help="the CRNN's architecture (default: the preset's crnn_geometry)")
    args = ap.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]   # refused before any training starts
    if unknown:
        ap.error(f"--variants: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(VARIANTS)}")
    results = {}
    for name in names:
        recipe, overrides = VARIANTS[name]
        out = args.out / name
        log = out / "log.jsonl"
        lines = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
        if len(lines) < args.epochs:
            train_crnn(args.data, args.preset, out, seed=args.seed, epochs=args.plan_epochs,
                       resume=(out / "last.pt").is_file(), recipe=recipe,
                       recipe_overrides=overrides or None, stop_after_epoch=args.epochs,
                       budget_clock="cpu", geometry=args.geometry)
            lines = [json.loads(x) for x in log.read_text().splitlines()]
        results[name] = lines[:args.epochs]
    print(f"\nCRNN, preset {args.preset}, seed {args.seed}: {args.epochs} epochs of a "
          f"{args.plan_epochs}-epoch plan")
    print(f"{'variant':<17}{'student PSDS1 per epoch':<30}{'teacher PSDS1 per epoch':<30}{'CPU min':>8}")
    for name, lines in results.items():
        s = " ".join(f"{x.get('val/student_psds1', float('nan')):.3f}" for x in lines)
        t = " ".join(f"{x['val/teacher_psds1']:.3f}" if "val/teacher_psds1" in x else "  -  "
                     for x in lines)
        cpu = lines[-1].get("cpu_seconds", float("nan")) / 60   # the engine logs a running total
        print(f"{name:<17}{s:<30}{t:<30}{cpu:>8.1f}")
    return results


if __name__ == "__main__":
    main()

"""Stage 2's learning-rate decay and consistency ramp: the alternatives, side by side.

    python benchmarks/stage2_schedules.py --data data/desed_lite_cpu --stage1 runs/matsed_cpu/stage1 \\
        --out runs/stage2_schedules [--preset cpu] [--variants constant,cosine,...] [--seed 0] \\
        [--epochs N]

Every variant continues the same stage-1 run for the preset's stage-2 epochs,
with one change to the stage-2 ``Recipe`` (``finetune(recipe_overrides=...)``).
Printed per variant: the teacher's and the student's validation PSDS1 after every
epoch (the curves), the selected epoch, and its PSDS1/PSDS2. A variant already
finished in --out is read back, not re-run, so the command can be resumed.
``--epochs`` runs every variant for N epochs instead of the preset's (its runs go
to ``OUT/<variant>_e<N>``; warm-up stays one epoch, the ramp half the run).

Variants (the paper's stage 2 ramps w_cons to 40 with a sigmoid over half the
run; its cosine schedule decays the LR over 30 epochs; the lite presets ramp to
``Preset.stage2_max_consistency`` = 2, the result of this benchmark):
    constant      the recipe as shipped: 1-epoch warm-up, then a constant LR, the
                  preset's consistency weight (2 at smoke/cpu, 40 at gpu/paper)
    w40           constant LR, the consistency weight ramps to the paper's 40 (the
                  cpu recipe until this benchmark measured it)
    cosine        warm-up, then a cosine decay to 0.1x at the end of the run
    cosine_w10    cosine, and the consistency weight ramps to 10
    cosine_slow   cosine, and the ramp spans the whole run instead of its first half
    encoder_x10   constant LR, the encoder's rates 10x the recipe's (lr 5e-4 / 1e-3 at cpu)
    encoder_x10_cosine  encoder_x10, and the cosine decay to 0.1x
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from matsed_lite.training.finetune import finetune

VARIANTS = {
    "constant": {},
    "w40": {"max_consistency": 40.0},
    "cosine": {"lr_final_factor": 0.1},
    "cosine_w10": {"lr_final_factor": 0.1, "max_consistency": 10.0},
    "cosine_slow": {"lr_final_factor": 0.1, "ramp_fraction": 1.0},
    "encoder_x10": {"lr_encoder": 5e-5, "lr_encoder_top": 1e-4},
    "encoder_x10_cosine": {"lr_encoder": 5e-5, "lr_encoder_top": 1e-4, "lr_final_factor": 0.1},
}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--stage1", required=True, help="stage 1's run folder")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=None,
                    help="stage-2 epochs for every variant (default: the preset's)")
    args = ap.parse_args(argv)
    results = {}
    for name in args.variants.split(","):
        if name not in VARIANTS:
            raise SystemExit(f"--variants: unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        out = args.out / (name if args.epochs is None else f"{name}_e{args.epochs}")
        done = out / "recipe.json"
        if done.is_file():
            res = json.loads(done.read_text())
        else:
            res = finetune(args.data, args.preset, out, stage=2, init=args.stage1, seed=args.seed,
                           epochs=args.epochs,
                           resume=(out / "last.pt").is_file(), recipe_overrides=VARIANTS[name])
        results[name] = res
    print(f"\nstage 2 from {args.stage1}, preset {args.preset}, seed {args.seed}")
    width = max([34] + [6 * len(r["curves"]["teacher_psds1"]) + 2 for r in results.values()])
    print(f"{'variant':<20}{'teacher PSDS1 per epoch':<{width}}{'student PSDS1 per epoch':<{width}}"
          f"{'best':>5}{'PSDS1':>7}{'PSDS2':>7}{'min':>6}")
    for name, res in results.items():
        t = " ".join(f"{v:.3f}" for v in res["curves"]["teacher_psds1"])
        s = " ".join(f"{v:.3f}" for v in res["curves"]["student_psds1"])
        b = res["best"]
        print(f"{name:<20}{t:<{width}}{s:<{width}}{res['best_epoch']:>5}{b['teacher_psds1']:>7.3f}"
              f"{b['teacher_psds2']:>7.3f}{res['seconds'] / 60:>6.1f}")
    return results


if __name__ == "__main__":
    main()

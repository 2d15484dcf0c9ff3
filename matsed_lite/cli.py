"""The ``matsed-lite`` command line: the package's functions, outside notebooks.

    matsed-lite presets
    matsed-lite synth --out ROOT --preset P [--seed N]
    matsed-lite data check ROOT [--classes A,B,...] [--skip-missing]
    matsed-lite notebooks [--preset P] [--only 00,03] [--out DIR]
    matsed-lite pretrain-encoder --data ROOT --preset P --out DIR [--seed N] [--epochs N] [--resume]
                               [--corpus desed|broad] [--clips-per-epoch N] [--workers N]
    matsed-lite pretrain   --data ROOT --preset P --out RUN_DIR [--resume]
                           [--encoder lite|passt] [--passt-checkpoint FILE]   (also finetune, train)
    matsed-lite finetune   --stage 1|2 --data ROOT --preset P --out RUN_DIR [--init PATH] [--resume]
    matsed-lite train-crnn --data ROOT --preset P --out RUN_DIR [--resume]
    matsed-lite train      --data ROOT --preset P --out RUN_DIR   (pretrain -> stage 1 -> stage 2)
    matsed-lite evaluate   --run RUN_DIR --data ROOT --json OUT.json
    matsed-lite compare    --run A --run B [--run C ...] --data ROOT   (paired bootstrap)
    matsed-lite predict    AUDIO... --run RUN_DIR --out EVENTS.tsv [--plot DIR]
    matsed-lite probe      --data ROOT --preset P [--encoder RUN_DIR]   (linear frame probes)
    matsed-lite ship       RUN_DIR --command "..."   (replace the shipped model)
    matsed-lite ablations  --data ROOT --preset P --out DIR [--seeds 0,1] [--fraction 0.2]

This module holds the arguments and ``main``; what each command does is in
``commands`` (``cmd_*``), which imports what it needs when it runs.

Errors: ``main`` turns every expected failure (bad data, a bad or unsafe file, a
path that cannot be written, memory, Ctrl-C) into one ``error:`` line naming the
file or argument and what to do, exit code 1 (2: usage, from argparse; 130:
interrupted). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__, commands
from .presets import ENCODER_DATA_WORKERS, PRESETS

CRNN_GEOMETRY_NAMES = ("dcase", "small")


def _preset_arg(value: str) -> str:
    if value not in PRESETS:
        raise argparse.ArgumentTypeError(
            f"unknown preset {value!r}; choose one of {', '.join(PRESETS)}")
    return value


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (x > 0 and x != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return x


def _positive_int(value: str) -> int:
    try:
        x = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if x < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return x


def _list_arg(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matsed-lite",
        description="MAT-SED-lite: data, training, evaluation and the course's notebooks.")
    parser.add_argument("--version", action="version", version=f"matsed-lite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(sub)
    _add_training_commands(sub)
    _add_evaluation_commands(sub)
    _add_ablation_command(sub)
    _add_course_commands(sub)
    return parser


def _training_args(p, what, epochs=True):
    p.add_argument("--data", required=True, type=Path, help="DESED-format data folder")
    p.add_argument("--preset", default="cpu", type=_preset_arg, help="preset (default: cpu)")
    p.add_argument("--out", required=True, type=Path, help=f"run folder for {what}")
    p.add_argument("--seed", default=0, type=int)
    if epochs:
        p.add_argument("--epochs", default=None, type=int, help="default: the preset's")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")


def _encoder_args(p):
    p.add_argument("--encoder", default=None, choices=("lite", "passt"),
                   help="lite: the shipped PaSST-lite; passt: the real PaSST-S with its "
                        "AudioSet weights (needs --preset paper and `pip install "
                        "\"matsed-lite[passt]\"`). Default: passt for the paper preset, "
                        "else lite")
    p.add_argument("--passt-checkpoint", type=Path, default=None, metavar="FILE",
                   help="PaSST-S weights file (passt-s-f128-p16-s10-ap.476-swa.pt) instead "
                        "of torch hub's cache or a download")
    p.add_argument("--encoder-weights", type=Path, default=None, metavar="RUN_DIR",
                   help="--encoder lite: a pretrain-encoder run folder (its encoder.pt and "
                        "recipe.json) instead of the shipped PaSST-lite")


def _add_data_commands(sub) -> None:
    p = sub.add_parser("presets", help="show the presets and their values")
    p.set_defaults(func=commands.cmd_presets)

    p = sub.add_parser("synth", help="generate DESED-lite, a synthetic data set in the DESED layout")
    p.add_argument("--out", required=True, type=Path, help="data folder to write (ROOT)")
    p.add_argument("--preset", default="cpu", type=_preset_arg, help="preset (default: cpu)")
    p.add_argument("--seed", default=0, type=int, help="random seed (default: 0)")
    p.add_argument("--splits", type=_list_arg, default=None,
                   help="comma-separated subset of splits (default: all)")
    p.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=commands.cmd_synth)

    data = sub.add_parser("data", help="inspect DESED-format data")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    p = data_sub.add_parser("check", help="validate a data folder and summarise each split")
    p.add_argument("root", type=Path, help="DESED-lite or real DESED folder")
    p.add_argument("--classes", type=_list_arg, default=None,
                   help="comma-separated class list; labels outside it are errors")
    p.add_argument("--skip-missing", action="store_true",
                   help="count missing audio files instead of failing (real DESED has some)")
    p.set_defaults(func=commands.cmd_data_check)


def _add_training_commands(sub) -> None:
    p = sub.add_parser("pretrain-encoder",
                       help="pre-train PaSST-lite as a tagger on DESED-lite's tagging corpus "
                            "or the streamed broad corpus")
    p.add_argument("--data", required=True, type=Path,
                   help="DESED-lite folder (the tagging splits are generated there if missing)")
    p.add_argument("--preset", default="cpu", type=_preset_arg, help="preset (default: cpu)")
    p.add_argument("--out", required=True, type=Path, help="run folder (weights, log, recipe)")
    p.add_argument("--seed", default=0, type=int)
    p.add_argument("--epochs", default=None, type=int, help="default: the recipe's")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--corpus", default="desed", choices=("desed", "broad"),
                   help="desed: DESED-lite's tagging split (10 classes); broad: fresh streamed "
                        "clips of 54 sound classes every epoch (default: desed)")
    p.add_argument("--clips-per-epoch", default=None, type=int,
                   help="broad: fresh clips per epoch (default: the preset's)")
    p.add_argument("--workers", default=ENCODER_DATA_WORKERS, type=int,
                   help=f"broad: DataLoader workers rendering clips while the model trains "
                        f"(default: {ENCODER_DATA_WORKERS})")
    p.add_argument("--init", default=None,
                   help="start from 'shipped' (the shipped PaSST-lite) or a pretrain-encoder "
                        "run folder (default: from scratch)")
    p.add_argument("--frame-loss", default=0.0, type=float,
                   help="broad: weight of a per-token frame loss on the clips' event times "
                        "beside the tagging loss (strong pre-training; default: 0, tagging only)")
    p.add_argument("--stop-after-epoch", default=None, type=_positive_int, metavar="N",
                   help="end after epoch N of the --epochs schedule and export the best epoch "
                        "so far (--resume continues it later)")
    p.set_defaults(func=commands.cmd_pretrain_encoder)

    p = sub.add_parser("adapt-encoder",
                       help="adapt PaSST-lite to a folder's own sounds: tagging + frame loss on "
                            "its labelled training clips (the pipeline's first stage)")
    _training_args(p, "the adaptation (encoder.pt, recipe.json, run/)")
    p.add_argument("--lr", default=None, type=float, help="peak learning rate (default: the preset's)")
    p.add_argument("--classes", type=_list_arg, default=None)
    p.add_argument("--encoder-weights", type=Path, default=None, metavar="RUN_DIR",
                   help="start from this pretrain-encoder run folder instead of the shipped PaSST-lite")
    p.set_defaults(func=commands.cmd_adapt_encoder)

    p = sub.add_parser("pretrain", help="masked-reconstruction pre-training of the context network")
    _training_args(p, "the pre-training")
    p.add_argument("--pos", default="relative", choices=["relative", "absolute", "none"])
    _encoder_args(p)
    p.set_defaults(func=commands.cmd_pretrain)

    p = sub.add_parser("finetune", help="mean-teacher fine-tuning, stage 1 or 2")
    _training_args(p, "the stage")
    p.add_argument("--stage", required=True, type=int, choices=[1, 2])
    p.add_argument("--init", type=Path, default=None,
                   help="stage 1: a pre-training run folder or context.pt; stage 2: stage 1's run folder")
    p.add_argument("--classes", type=_list_arg, default=None,
                   help="comma-separated class list (default: inferred from the TSVs, sorted)")
    p.add_argument("--pos", default="relative", choices=["relative", "absolute", "none"])
    p.add_argument("--fusion-lambda", type=float, default=None,
                   help="stage 2: global-local fusion for the teacher and validation (default 0.5; 0: off)")
    _encoder_args(p)
    p.set_defaults(func=commands.cmd_finetune)

    p = sub.add_parser("train-crnn", help="the DCASE CRNN baseline on the same recipe and data")
    _training_args(p, "the CRNN")
    p.add_argument("--classes", type=_list_arg, default=None)
    p.add_argument("--recipe", default="crnn", choices=["crnn", "crnn_supervised"],
                   help="crnn: the DCASE mean teacher (default); crnn_supervised: plain "
                        "supervised training, no teacher, no augmentation")
    # the keys of models.crnn.CRNN_GEOMETRIES (tests/test_crnn.py checks they agree)
    p.add_argument("--geometry", choices=CRNN_GEOMETRY_NAMES, default=None,
                   help="dcase: the baseline's 7 blocks, 80 ms frames; small: 4 blocks, 40 ms "
                        "frames, dropout 0.1 (default: the preset's crnn_geometry)")
    p.add_argument("--budget-minutes", type=_positive_float, default=None,
                   help="end after the first epoch that ends past this much training time "
                        "(e.g. the MAT-SED-lite pipeline's, for a same-time comparison)")
    p.add_argument("--budget-clock", choices=["wall", "cpu"], default="wall",
                   help="what --budget-minutes counts: wall time, or this process's CPU time "
                        "(fair on a machine shared with other jobs)")
    p.set_defaults(func=commands.cmd_train_crnn)

    p = sub.add_parser("train", help="the whole MAT-SED-lite pipeline: adapt the encoder -> "
                                     "pretrain -> stage 1 -> stage 2")
    _training_args(p, "the pipeline (pretrain/, stage1/, stage2/ inside)", epochs=False)
    p.add_argument("--classes", type=_list_arg, default=None)
    p.add_argument("--fusion-lambda", type=float, default=None,
                   help="stage 2: global-local fusion for the teacher and validation (default 0.5; 0: off)")
    p.add_argument("--adapt-epochs", type=int, default=None,
                   help="--encoder lite: epochs adapting the encoder to the folder's labelled "
                        "clips before pre-training (default: the preset's adapt_epochs, more "
                        "on a small folder, to at least its adapt_min_steps steps; 0: skip)")
    _encoder_args(p)
    p.set_defaults(func=commands.cmd_train)


def _add_evaluation_commands(sub) -> None:
    p = sub.add_parser("evaluate", help="PSDS1/PSDS2 and F1s of a trained run on a labelled split")
    p.add_argument("--run", required=True, type=Path,
                   help="run folder (model.pt inside, or a `train` folder with stage2/)")
    p.add_argument("--data", required=True, type=Path, help="DESED-format data folder")
    p.add_argument("--split", default="validation", help="split to score (default: validation)")
    p.add_argument("--fusion-lambda", type=float, default=None,
                   help="global-local fusion weight of the local features (default 0.5; 0: off)")
    p.add_argument("--post", default="median", choices=["median", "max", "none"],
                   help="per-class filter after the soft weak mask (default: median)")
    p.add_argument("--temperature", type=_positive_float, default=None,
                   help="divide the logits by this (default: the recipe's, MAT-SED 0.5, CRNN 1)")
    p.add_argument("--save-scores", type=Path, default=None,
                   help="folder for one sed_scores_eval score TSV per clip")
    p.add_argument("--bootstrap", type=int, default=50,
                   help="clip resamples for 95%% intervals of PSDS1/PSDS2 (default 50; 0: none)")
    p.add_argument("--json", required=True, type=Path, help="write the results here")
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("compare", help="several runs on the same clips, with paired bootstrap "
                                       "intervals of their differences from the first")
    p.add_argument("--run", required=True, type=Path, action="append", dest="runs",
                   help="a run folder; give two or more, the first is the reference")
    p.add_argument("--data", required=True, type=Path, help="DESED-format data folder")
    p.add_argument("--split", default="validation", help="split to score (default: validation)")
    p.add_argument("--post", default="median", choices=["median", "max", "none"],
                   help="per-class filter after the soft weak mask (default: median)")
    p.add_argument("--bootstrap", type=int, default=200,
                   help="paired clip resamples (default 200)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.set_defaults(func=commands.cmd_compare)

    p = sub.add_parser("predict", help="detect events in audio files (wav, flac, ogg; any length)")
    p.add_argument("audio", nargs="+", type=Path, help="audio files")
    p.add_argument("--run", required=True, type=Path, help="run folder (model.pt inside)")
    p.add_argument("--out", required=True, type=Path, help="events TSV to write (DESED strong format)")
    p.add_argument("--plot", type=Path, default=None, help="folder for one figure per file")
    p.add_argument("--fusion-lambda", type=float, default=None)
    p.add_argument("--post", default="median", choices=["median", "max", "none"])
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--temperature", type=_positive_float, default=None,
                   help="divide the logits by this (default: the recipe's, as evaluate: "
                        "MAT-SED 0.5, CRNN 1)")
    p.set_defaults(func=commands.cmd_predict)

    p = sub.add_parser("probe", help="frame-level linear probes: the encoder's features "
                                     "against log-mel frames, per class")
    p.add_argument("--data", required=True, type=Path, help="DESED-format data folder")
    p.add_argument("--preset", default="cpu", type=_preset_arg, help="preset (default: cpu)")
    p.add_argument("--encoder", type=Path, default=None,
                   help="a pretrain-encoder run folder (default: the shipped PaSST-lite)")
    p.add_argument("--train-split", default=None, help="default: the first strong split")
    p.add_argument("--test-split", default="validation")
    p.add_argument("--max-clips", type=int, default=None, help="clips per split (default: all)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.set_defaults(func=commands.cmd_probe)

    p = sub.add_parser("ship", help="copy a trained run's model into the package as the shipped one "
                                    "(float16) with its recipe and a fresh staleness check")
    p.add_argument("run", type=Path, help="run folder (model.pt inside, or a `train` folder)")
    p.add_argument("--command", required=True, help="the command that trained the run (recorded)")
    p.add_argument("--extra", type=Path, default=None, help="a JSON file of more recipe fields")
    p.set_defaults(func=commands.cmd_ship)


def _add_ablation_command(sub) -> None:
    p = sub.add_parser("ablations", help="chapter 08's training ablations with several seeds, "
                                         "and which differences exceed noise")
    p.add_argument("--data", required=True, type=Path, help="DESED-format data folder")
    p.add_argument("--preset", default="cpu", type=_preset_arg, help="preset (default: cpu)")
    p.add_argument("--out", required=True, type=Path, help="folder for the runs and ablations.json")
    p.add_argument("--seeds", type=_list_arg, default=["0", "1"], help="seeds (default: 0,1)")
    p.add_argument("--fraction", type=_positive_float, default=0.2,
                   help="short budget: this fraction of the preset's epochs per stage (default 0.2)")
    p.add_argument("--variants", type=_list_arg, default=None,
                   help="variants to run (default: all; the reference always runs)")
    p.add_argument("--bootstrap", type=int, default=200, help="paired clip resamples (default 200)")
    p.add_argument("--resume", action="store_true", help="keep the runs already finished in --out")
    p.set_defaults(func=commands.cmd_ablations)


def _add_course_commands(sub) -> None:
    p = sub.add_parser("notebooks", help="execute the course's notebooks in order, headless")
    p.add_argument("--preset", default="cpu", type=_preset_arg, help="preset (default: cpu)")
    p.add_argument("--only", type=_list_arg, default=None, help="notebook numbers, e.g. 00,03")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for executed notebooks (default: build/PRESET)")
    p.add_argument("--data", type=Path, default=None,
                   help="data folder (default: data/desed_lite_PRESET)")
    p.add_argument("--figures", type=Path, default=None,
                   help="also copy every figure into this folder")
    p.add_argument("--notebooks-dir", type=Path, default=Path("notebooks"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per cell")
    p.set_defaults(func=commands.cmd_notebooks)


_RESUMABLE = ("pretrain-encoder", "pretrain", "finetune", "train-crnn", "train")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        hint = ("rerun with --resume to continue" if args.command in _RESUMABLE else
                "rerun the same command to continue" if args.command == "synth" else "rerun it")
        print(f"\ninterrupted; {hint}", file=sys.stderr)
        return 130
    except Exception as exc:
        from .files import one_line_error

        msg = one_line_error(exc)
        if msg is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``matsed-lite`` command line: the package's functions, outside notebooks.

    matsed-lite presets
    matsed-lite synth --out ROOT --preset P [--seed N]
    matsed-lite data check ROOT [--classes A,B,...] [--skip-missing]
    matsed-lite notebooks [--preset P] [--only 00,03] [--out DIR]
    matsed-lite pretrain-encoder --data ROOT --preset P --out DIR [--seed N] [--epochs N] [--resume]
                               [--corpus desed|broad] [--clips-per-epoch N] [--workers N]
    matsed-lite pretrain   --data ROOT --preset P --out RUN_DIR [--resume]
    matsed-lite finetune   --stage 1|2 --data ROOT --preset P --out RUN_DIR [--init PATH] [--resume]
    matsed-lite train-crnn --data ROOT --preset P --out RUN_DIR [--resume]
    matsed-lite train      --data ROOT --preset P --out RUN_DIR   (pretrain -> stage 1 -> stage 2)
    matsed-lite evaluate   --run RUN_DIR --data ROOT --json OUT.json
    matsed-lite predict    AUDIO... --run RUN_DIR --out EVENTS.tsv [--plot DIR]
    matsed-lite ship       RUN_DIR --command "..."   (replace the shipped model)

Each command imports what it needs when it runs (the ``from .x import`` lines
inside the ``cmd_*`` functions): ``matsed-lite --help`` then answers without
loading torch, sed_scores_eval or papermill (seconds of start-up).

Errors: ``main`` turns every expected failure (bad data, a bad or unsafe file, a
path that cannot be written, memory, Ctrl-C) into one ``error:`` line naming the
file or argument and what to do, exit code 1 (2: usage, from argparse; 130:
interrupted). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .presets import ENCODER_DATA_WORKERS, PRESETS, get_preset


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


def _add_data_commands(sub) -> None:
    p = sub.add_parser("presets", help="show the presets and their values")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("synth", help="generate DESED-lite, a synthetic data set in the DESED layout")
    p.add_argument("--out", required=True, type=Path, help="data folder to write (ROOT)")
    p.add_argument("--preset", default="cpu", type=_preset_arg, help="preset (default: cpu)")
    p.add_argument("--seed", default=0, type=int, help="random seed (default: 0)")
    p.add_argument("--splits", type=_list_arg, default=None,
                   help="comma-separated subset of splits (default: all)")
    p.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)

    data = sub.add_parser("data", help="inspect DESED-format data")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    p = data_sub.add_parser("check", help="validate a data folder and summarise each split")
    p.add_argument("root", type=Path, help="DESED-lite or real DESED folder")
    p.add_argument("--classes", type=_list_arg, default=None,
                   help="comma-separated class list; labels outside it are errors")
    p.add_argument("--skip-missing", action="store_true",
                   help="count missing audio files instead of failing (real DESED has some)")
    p.set_defaults(func=cmd_data_check)


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
    p.set_defaults(func=cmd_pretrain_encoder)

    p = sub.add_parser("pretrain", help="masked-reconstruction pre-training of the context network")
    _training_args(p, "the pre-training")
    p.add_argument("--pos", default="relative", choices=["relative", "absolute", "none"])
    p.set_defaults(func=cmd_pretrain)

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
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("train-crnn", help="the DCASE CRNN baseline on the same recipe and data")
    _training_args(p, "the CRNN")
    p.add_argument("--classes", type=_list_arg, default=None)
    p.add_argument("--recipe", default="crnn", choices=["crnn", "crnn_supervised"],
                   help="crnn: the DCASE mean teacher (default); crnn_supervised: plain "
                        "supervised training, no teacher, no augmentation")
    p.set_defaults(func=cmd_train_crnn)

    p = sub.add_parser("train", help="the whole MAT-SED-lite pipeline: pretrain -> stage 1 -> stage 2")
    _training_args(p, "the pipeline (pretrain/, stage1/, stage2/ inside)", epochs=False)
    p.add_argument("--classes", type=_list_arg, default=None)
    p.add_argument("--fusion-lambda", type=float, default=None,
                   help="stage 2: global-local fusion for the teacher and validation (default 0.5; 0: off)")
    p.set_defaults(func=cmd_train)


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
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="detect events in audio files (wav, flac, ogg; any length)")
    p.add_argument("audio", nargs="+", type=Path, help="audio files")
    p.add_argument("--run", required=True, type=Path, help="run folder (model.pt inside)")
    p.add_argument("--out", required=True, type=Path, help="events TSV to write (DESED strong format)")
    p.add_argument("--plot", type=Path, default=None, help="folder for one figure per file")
    p.add_argument("--fusion-lambda", type=float, default=None)
    p.add_argument("--post", default="median", choices=["median", "max", "none"])
    p.add_argument("--threshold", type=float, default=0.5)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ship", help="copy a trained run's model into the package as the shipped one "
                                    "(float16) with its recipe and a fresh staleness check")
    p.add_argument("run", type=Path, help="run folder (model.pt inside, or a `train` folder)")
    p.add_argument("--command", required=True, help="the command that trained the run (recorded)")
    p.add_argument("--extra", type=Path, default=None, help="a JSON file of more recipe fields")
    p.set_defaults(func=cmd_ship)


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
    p.set_defaults(func=cmd_notebooks)


def cmd_presets(args) -> int:
    names = list(PRESETS)
    fields = [f for f in PRESETS[names[0]].to_dict() if f != "name"]
    width = max(len(f) for f in fields)
    print(f"{'':<{width}}  " + "  ".join(f"{n:>9}" for n in names))
    for f in fields:
        print(f"{f:<{width}}  " + "  ".join(f"{str(getattr(PRESETS[n], f)):>9}" for n in names))
    return 0


def cmd_synth(args) -> int:
    from .data.desed_lite import generate_desed_lite

    summary = generate_desed_lite(args.out, get_preset(args.preset), seed=args.seed,
                                  splits=args.splits, workers=args.workers,
                                  progress=not args.quiet)
    print(f"DESED-lite ({args.preset}, seed {args.seed}) in {args.out}")
    for split, s in summary.items():
        print(f"  {split:<12} " + "  ".join(f"{k}={v}" for k, v in s.items()))
    return 0


def cmd_data_check(args) -> int:
    from .data.data_check import check_dataset, format_report

    report = check_dataset(args.root, classes=args.classes, skip_missing=args.skip_missing)
    print(format_report(report))
    return 0 if report.ok else 1


def cmd_pretrain_encoder(args) -> int:
    from .training.encoder_pretraining import pretrain_encoder

    _refuse_old_run(args)
    result = pretrain_encoder(args.data, get_preset(args.preset), args.out, seed=args.seed,
                              epochs=args.epochs, resume=args.resume, corpus=args.corpus,
                              clips_per_epoch=args.clips_per_epoch, workers=args.workers)
    shown = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    return 0


# What a stage's summary line shows (when present): the numbers a user compares.
_SUMMARY_KEYS = ("epochs_done", "best_epoch", "best_val_masked_mse", "interpolation_val_masked_mse",
                 "mAP", "seconds", "model_path", "context_file")


def _print_result(name: str, result: dict) -> None:
    if os.environ.get("RANK", "0") != "0":  # under torchrun the first process speaks
        return
    shown = {k: result[k] for k in _SUMMARY_KEYS if k in result}
    # overall numbers only: the per-class diagnostics ("psds1/Dog") are in the run's log
    shown.update({k: v for k, v in (result.get("best") or {}).items()
                  if isinstance(v, float) and "/" not in k})
    print(f"{name}: " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in shown.items()))


def _run_stage(fn) -> int:
    """Run a command's work; ``main`` turns its expected failures into one line."""
    fn()
    return 0


def _refuse_old_run(args) -> None:
    """A training command without --resume must not wipe an earlier run in --out."""
    from .training.run_state import previous_run

    found = [] if args.resume else previous_run(args.out)
    if found:
        raise FileExistsError(
            17, f"holds an earlier run ({', '.join(str(f.relative_to(args.out)) for f in found[:3])}"
                f"{', ...' if len(found) > 3 else ''}); pass --resume to continue it, or choose "
                f"a new --out (nothing was deleted)", str(args.out))


def _context_file(init: Path | None) -> Path | None:
    """A pre-training run folder or its context.pt."""
    if init is None:
        return None
    return init / "context.pt" if init.is_dir() else init


def cmd_pretrain(args) -> int:
    from .training.reconstruction_pretraining import pretrain_context

    _refuse_old_run(args)
    return _run_stage(lambda: _print_result("pretrain", pretrain_context(
        args.data, get_preset(args.preset), args.out, seed=args.seed, pos=args.pos,
        epochs=args.epochs, resume=args.resume)))


def cmd_finetune(args) -> int:
    from .training.finetune import finetune

    init = _context_file(args.init) if args.stage == 1 else args.init
    _refuse_old_run(args)
    return _run_stage(lambda: _print_result(f"stage {args.stage}", finetune(
        args.data, get_preset(args.preset), args.out, stage=args.stage, init=init,
        seed=args.seed, epochs=args.epochs, resume=args.resume, pos=args.pos,
        classes=args.classes, fusion_lambda=args.fusion_lambda)))


def cmd_train_crnn(args) -> int:
    from .training.finetune import train_crnn

    _refuse_old_run(args)
    return _run_stage(lambda: _print_result("crnn", train_crnn(
        args.data, get_preset(args.preset), args.out, seed=args.seed, epochs=args.epochs,
        resume=args.resume, classes=args.classes, recipe=args.recipe)))


def cmd_train(args) -> int:
    from .training.finetune import finetune
    from .training.reconstruction_pretraining import pretrain_context

    preset = get_preset(args.preset)
    _refuse_old_run(args)

    def pipeline():
        _print_result("pretrain", pretrain_context(
            args.data, preset, args.out / "pretrain", seed=args.seed, resume=args.resume))
        _print_result("stage 1", finetune(
            args.data, preset, args.out / "stage1", stage=1,
            init=args.out / "pretrain" / "context.pt", seed=args.seed, resume=args.resume,
            classes=args.classes))
        _print_result("stage 2", finetune(
            args.data, preset, args.out / "stage2", stage=2, init=args.out / "stage1",
            seed=args.seed, resume=args.resume, classes=args.classes,
            fusion_lambda=args.fusion_lambda))

    return _run_stage(pipeline)


def cmd_evaluate(args) -> int:
    from .evaluation.inference import evaluate_run, format_table, write_json

    def go():
        res = evaluate_run(args.run, args.data, args.split, fusion_lambda=args.fusion_lambda,
                           post=args.post, save_scores=args.save_scores,
                           temperature=args.temperature, bootstrap=args.bootstrap)
        print(format_table(res))
        write_json(args.json, res)
        print(f"wrote {args.json}" + (f" and score files in {args.save_scores}"
                                     if args.save_scores else ""))

    return _run_stage(go)


def cmd_predict(args) -> int:
    from .evaluation.inference import predict_audio

    def go():
        events = predict_audio(args.audio, args.run, args.out, plot_dir=args.plot,
                               fusion_lambda=args.fusion_lambda, post=args.post,
                               threshold=args.threshold)
        n = sum(len(v) for v in events.values())
        print(f"{n} events in {len(events)} files -> {args.out}")

    return _run_stage(go)


def cmd_ship(args) -> int:
    from .evaluation.shipped import ship

    def go():
        extra = json.loads(args.extra.read_text()) if args.extra else None
        r = ship(args.run, args.command, extra=extra)
        print(json.dumps({k: r[k] for k in ("check", "size_bytes")}, indent=2))

    return _run_stage(go)


def cmd_notebooks(args) -> int:
    from .course.runner import NotebookFailed, format_summary, run_notebooks

    done: list = []
    status = 0
    try:
        run_notebooks(args.preset, notebooks_dir=args.notebooks_dir, out=args.out,
                      only=args.only, data_root=args.data, figures_dir=args.figures,
                      seed=args.seed, timeout=args.timeout,
                      echo=lambda msg: print(msg, flush=True), results=done)
    except (NotebookFailed, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    if done:
        print()
        print(format_summary(done))
    return status


# Commands that continue where an interrupted run stopped.
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

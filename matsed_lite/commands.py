"""What each ``matsed-lite`` command does: one ``cmd_*`` function per command.

``cli`` parses the arguments and calls these. Each function imports what it needs
when it runs (the ``from .x import`` lines inside it): ``matsed-lite --help`` then
answers without loading torch, sed_scores_eval or papermill (seconds of start-up).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .presets import PRESETS, get_preset


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
                              clips_per_epoch=args.clips_per_epoch, workers=args.workers,
                              init=args.init, frame_loss=args.frame_loss,
                              stop_after_epoch=args.stop_after_epoch)
    shown = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    return 0


# What a stage's summary line shows (when present): the numbers a user compares.
_SUMMARY_KEYS = ("epochs_done", "best_epoch", "val_frame_mAP", "best_val_masked_mse",
                 "interpolation_val_masked_mse",
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


def _encoder(args, preset):
    """The encoder module named by --encoder / --passt-checkpoint (``models.encoders``)."""
    from .models.encoders import build_encoder

    return build_encoder(preset, args.encoder, args.passt_checkpoint, args.encoder_weights)


def cmd_adapt_encoder(args) -> int:
    from .models.encoders import build_encoder
    from .training.encoder_adaptation import adapt_encoder

    _refuse_old_run(args)
    preset = get_preset(args.preset)
    return _run_stage(lambda: _print_result("adapt-encoder", adapt_encoder(
        args.data, preset, args.out, build_encoder(preset, "lite", None, args.encoder_weights),
        classes=args.classes, seed=args.seed, epochs=args.epochs, lr=args.lr,
        resume=args.resume)))


def cmd_pretrain(args) -> int:
    from .training.reconstruction_pretraining import pretrain_context

    _refuse_old_run(args)
    preset = get_preset(args.preset)
    return _run_stage(lambda: _print_result("pretrain", pretrain_context(
        args.data, preset, args.out, seed=args.seed, pos=args.pos,
        epochs=args.epochs, resume=args.resume, encoder=_encoder(args, preset))))


def cmd_finetune(args) -> int:
    from .training.finetune import finetune

    init = _context_file(args.init) if args.stage == 1 else args.init
    _refuse_old_run(args)
    preset = get_preset(args.preset)
    if args.stage == 2 and args.encoder_weights is not None:
        raise ValueError("--encoder-weights is for pre-training and stage 1; stage 2 "
                         "continues stage 1's encoder weights (they are in its model.pt)")
    if args.stage == 2 and args.passt_checkpoint is not None:
        raise ValueError("--passt-checkpoint is for pre-training and stage 1; stage 2 "
                         "continues stage 1's encoder weights (they are in its model.pt)")
    # stage 2 takes stage 1's encoder from its model.pt: only a name to check against it
    encoder = _encoder(args, preset) if args.stage == 1 else args.encoder
    return _run_stage(lambda: _print_result(f"stage {args.stage}", finetune(
        args.data, preset, args.out, stage=args.stage, init=init,
        seed=args.seed, epochs=args.epochs, resume=args.resume, pos=args.pos,
        classes=args.classes, fusion_lambda=args.fusion_lambda, encoder=encoder)))


def cmd_train_crnn(args) -> int:
    from .training.finetune import train_crnn

    _refuse_old_run(args)
    return _run_stage(lambda: _print_result("crnn", train_crnn(
        args.data, get_preset(args.preset), args.out, seed=args.seed, epochs=args.epochs,
        resume=args.resume, classes=args.classes, recipe=args.recipe,
        budget_minutes=args.budget_minutes, budget_clock=args.budget_clock,
        geometry=args.geometry)))


def cmd_train(args) -> int:
    from .models.encoders import default_encoder_kind
    from .models.passt_lite import PaSSTLite, load_pretrained_encoder
    from .training.encoder_adaptation import adapt_encoder
    from .training.finetune import finetune
    from .training.reconstruction_pretraining import pretrain_context

    preset = get_preset(args.preset)
    _refuse_old_run(args)

    adapt_epochs = preset.adapt_epochs if args.adapt_epochs is None else args.adapt_epochs
    if adapt_epochs < 0:
        raise ValueError(f"--adapt-epochs must be >= 0, got {adapt_epochs}")
    if args.adapt_epochs and (args.encoder or default_encoder_kind(preset)) != "lite":
        raise ValueError("--adapt-epochs is for --encoder lite: the real PaSST has heard "
                         "AudioSet's sounds, and MAT-SED fine-tunes it in stage 2 only")

    if (args.resume and adapt_epochs and (args.out / "pretrain").exists()
            and not (args.out / "adapt").exists()):
        raise ValueError(f"{args.out}: this run began without adapting the encoder (no adapt/ "
                         "folder); resume it as it began with --adapt-epochs 0")

    def pipeline():
        encoder = _encoder(args, preset)  # loaded once for pre-training and stage 1
        if adapt_epochs and isinstance(encoder, PaSSTLite):
            _print_result("adapt-encoder", adapt_encoder(
                args.data, preset, args.out / "adapt", encoder, classes=args.classes,
                seed=args.seed, epochs=args.adapt_epochs, resume=args.resume))
            encoder = load_pretrained_encoder(preset, weights_dir=args.out / "adapt")
        _print_result("pretrain", pretrain_context(
            args.data, preset, args.out / "pretrain", seed=args.seed, resume=args.resume,
            encoder=encoder))
        _print_result("stage 1", finetune(
            args.data, preset, args.out / "stage1", stage=1,
            init=args.out / "pretrain" / "context.pt", seed=args.seed, resume=args.resume,
            classes=args.classes, encoder=encoder))
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


def cmd_compare(args) -> int:
    from .evaluation.inference import compare_runs, format_comparison, write_json

    def go():
        res = compare_runs(args.runs, args.data, args.split, post=args.post,
                           bootstrap=args.bootstrap)
        print(format_comparison(res))
        if args.json is not None:
            write_json(args.json, res)
            print(f"wrote {args.json}")

    return _run_stage(go)


def cmd_predict(args) -> int:
    from .evaluation.inference import predict_audio

    def go():
        events = predict_audio(args.audio, args.run, args.out, plot_dir=args.plot,
                               fusion_lambda=args.fusion_lambda, post=args.post,
                               threshold=args.threshold, temperature=args.temperature)
        n = sum(len(v) for v in events.values())
        print(f"{n} events in {len(events)} files -> {args.out}")

    return _run_stage(go)


def cmd_probe(args) -> int:
    from .evaluation.probe import format_probe, probe_folder
    from .models.passt_lite import load_pretrained_encoder

    def go():
        preset = get_preset(args.preset)
        encoder = None if args.encoder is None else load_pretrained_encoder(
            preset, weights_dir=args.encoder)
        res = probe_folder(args.data, preset, encoder, args.train_split, args.test_split,
                           args.max_clips)
        print(format_probe(res))
        if args.json is not None:
            from .files import write_json

            write_json(args.json, res)

    return _run_stage(go)


def cmd_ship(args) -> int:
    from .evaluation.shipped import ship

    def go():
        extra = json.loads(args.extra.read_text()) if args.extra else None
        r = ship(args.run, args.command, extra=extra)
        print(json.dumps({k: r[k] for k in ("check", "size_bytes")}, indent=2))

    return _run_stage(go)


def cmd_ablations(args) -> int:
    from .training.ablations import format_ablations, run_ablations

    def go():
        try:
            seeds = [int(s) for s in args.seeds]
        except ValueError:
            raise ValueError(f"--seeds: integers separated by commas, got {','.join(args.seeds)!r}") from None
        command = "matsed-lite " + " ".join(sys.argv[1:]) if sys.argv[1:] else None
        res = run_ablations(args.data, args.preset, args.out, seeds=seeds, fraction=args.fraction,
                            variants=args.variants, bootstrap=args.bootstrap, resume=args.resume,
                            command=command)
        print(format_ablations(res))
        print(f"wrote {args.out / 'ablations.json'}")

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

"""Fine-tuning runs: MAT-SED-lite's stages 1 and 2 and the CRNN baseline, start to finish (chapter 05).

``finetune`` and ``train_crnn`` build the model, the stores of inputs, the
optimizer and the schedule of one stage, hand the step of ``mean_teacher`` to
the training engine, and write the selected model (``model.pt``) and the
run's record (``recipe.json``). The step itself, and why each number is what
it is, are in ``mean_teacher``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..data.datasets import infer_classes, layout_for, make_datasets
from ..data.stores import FrameStore, MelStore, pool_stores
from ..evaluation.ground_truth import split_ground_truth
from ..files import write_json
from ..models.checkpoints import MODEL_FILE, load_model, output_hop, save_model
from ..models.crnn import CRNN, crnn_geometry
from ..models.frame_cache import encode_splits
from ..models.global_local import GlobalLocalFusion
from ..models.matsed import MATSEDLite
from ..models.encoders import build_encoder, encoder_kind
from ..presets import RECIPES, Preset, default_lr_scale, get_preset, stage_recipe
from ..runtime import pick_device, seed_everything
from .ema import ema_max_alpha_for
from .engine import check_settings, fit, load_checkpoint, warmup_cosine
from .mean_teacher import make_evaluate, make_train_step
from .mixed_batches import KINDS, MixedBatches, epoch_steps
from .ramps import ramp_value
from .reconstruction_pretraining import load_context

RECIPE_FILE = "recipe.json"
MONITOR = "val/teacher_psds1"


# ---------------------------------------------------------------------------
# building blocks of a run

def _datasets(data_root, preset, classes):
    layout = layout_for(data_root)
    if "validation" not in layout:
        raise ValueError(f"{data_root}: no validation split (needed for model selection)")
    classes = list(classes) if classes is not None else infer_classes(layout)
    ds = make_datasets(layout, preset, classes)
    return layout, classes, ds


def _kinds(layout) -> dict[str, list[str]]:
    """Training split names by kind (the validation split is never trained on)."""
    out = {k: [] for k in KINDS}
    for name, spec in layout.items():
        if name != "validation":
            out[spec.kind].append(name)
    return out


def _batch_sizes(p: Preset) -> dict[str, int]:
    return {"strong": p.batch_strong, "weak": p.batch_weak, "unlabeled": p.batch_unlabeled}


def _step_floor(p: Preset, ds, kinds) -> dict:
    """The settings key for ``Preset.min_steps_per_epoch`` when it lengthens this folder's
    epochs (fewer strong clips than the preset's floor covers); nothing otherwise, so the
    runs on DESED-lite record what they recorded before the floor existed, and a run on a
    small folder started before it (no key) is not resumed with longer epochs silently."""
    n_strong = sum(len(ds[n]) for n in kinds["strong"])
    floored = epoch_steps(n_strong, p.batch_strong, p.min_steps_per_epoch)
    return {"min_steps_per_epoch": p.min_steps_per_epoch} if floored > epoch_steps(n_strong, p.batch_strong) else {}


def encoder_param_groups(encoder: nn.Module, lr_low: float, lr_top: float) -> list[dict]:
    """The encoder's parameters in two groups: its last third of blocks and its
    norms at ``lr_top``, the rest (patch embedding, positions, early blocks) at
    ``lr_low``. MAT-SED: 1e-5 for blocks 9-12 and the final norm, 5e-6 below.
    PaSST-lite holds its blocks itself, the real PaSST-S wrapper
    (``passt_real.RealPaSSTFrames``) in ``encoder.net``."""
    net = getattr(encoder, "net", encoder)
    blocks = getattr(net, "blocks", None)
    n_top = max(1, len(blocks) // 3) if blocks is not None else 0
    top_ids = set()
    if blocks is not None:
        for blk in list(blocks)[len(blocks) - n_top:]:
            top_ids |= {id(q) for q in blk.parameters()}
    for m in (getattr(net, "norm", None), getattr(encoder, "frame_norm", None)):
        if isinstance(m, nn.Module):
            top_ids |= {id(q) for q in m.parameters()}
    params = [q for q in encoder.parameters() if q.requires_grad]
    top = [q for q in params if id(q) in top_ids]
    low = [q for q in params if id(q) not in top_ids]
    return [{"params": low, "lr": lr_low, "name": "encoder"},
            {"params": top, "lr": lr_top, "name": "encoder_top"}]


def _strip_run_keys(history: list[dict]) -> dict:
    """Per-epoch curves out of the engine's log lines."""
    keys = ("val/student_psds1", "val/teacher_psds1", "val/student_psds2", "val/teacher_psds2")
    curves = {"epoch": [h["epoch"] for h in history]}
    for k in keys:
        curves[k.split("/", 1)[1]] = [h.get(k) for h in history]
    curves["train_loss"] = [h.get("train/loss") for h in history]
    curves["w_cons"] = [h.get("train/w_cons") for h in history]
    return curves



def _finish(out_dir: Path, res: dict, recipe_info: dict, model, classes, p, kind, stage, pos,
            t_start: float) -> dict:
    """Write model.pt (the best epoch's teacher) and recipe.json; return the summary.

    Frozen weights are bitwise the originals in the teacher too: the engine's
    EMA copies parameters that do not train instead of averaging them."""
    ctx = res["state"].dist  # under torchrun rank 0 writes, the others wait for it
    best = load_checkpoint(out_dir / "best.pt")
    model_path = save_model(out_dir, kind, model, best, classes, p, stage, pos, {}) \
        if ctx.is_main else out_dir / MODEL_FILE
    history = res["history"]
    curves = _strip_run_keys(history)
    b = next(h for h in history if h["epoch"] == res["best_epoch"])
    summary = {**recipe_info,
               "classes": list(classes), "epochs_done": res["epochs_done"],
               "best_epoch": res["best_epoch"],
               "selected_by": MONITOR if best["teacher"] is not None else "val/student_psds1",
               "best": {k.split("/", 1)[1]: b[k] for k in b if k.startswith("val/")},
               "final": {k.split("/", 1)[1]: history[-1][k] for k in history[-1]
                         if k.startswith("val/")},
               "curves": curves, "train_seconds": res["seconds"],
               "seconds": time.perf_counter() - t_start, "device": res["device"],
               "model_path": str(model_path), "log": res["log"]}
    if ctx.is_main:
        write_json(out_dir / RECIPE_FILE, summary)
    ctx.barrier()
    return summary


def _fit_kwargs(out_dir, epochs, steps_per_epoch, resume, progress, seed, stop_after_epoch,
                device, desc, teacher: bool = True):
    """The engine settings every mean-teacher run shares; the EMA's horizon follows
    the run's length (``ema.ema_max_alpha_for``). Without a teacher the student is
    selected."""
    return dict(epochs=epochs, out_dir=out_dir,
                ema_max_alpha=ema_max_alpha_for(epochs * steps_per_epoch) if teacher else None,
                grad_clip=20.0, monitor=MONITOR if teacher else "val/student_psds1", mode="max",
                resume=resume, progress=progress, seed=seed,
                stop_after_epoch=stop_after_epoch, device=device, desc=desc)



# ---------------------------------------------------------------------------
# entry points

def finetune(data_root, preset: "Preset | str", out_dir, stage: int, init=None, seed: int = 0,
             epochs: int | None = None, resume: bool = False, progress: bool = True,
             pos: str = "relative", *, classes: Sequence[str] | None = None,
             encoder: "nn.Module | str | None" = None, passt_checkpoint=None,
             lr_scale: float | None = None,
             teacher_features: Callable | None = None, device=None,
             stop_after_epoch: int | None = None, fusion_lambda: float | None = None,
             cache=None, recipe_overrides: dict | None = None) -> dict:
    """Mean-teacher fine-tuning of MAT-SED-lite, stage 1 or 2 (see the module docstring).

    stage 1  init: a ``context.pt`` from masked-reconstruction pre-training, or
             None (a randomly initialised context network). Encoder (default: the
             shipped PaSST-lite) and context are frozen; the heads train on
             cached encoder frames.
    encoder  stage 1: an encoder module, or "lite" / "passt" (``models.encoders``;
             default: the preset's, the real PaSST-S for ``paper``, its weights
             from ``passt_checkpoint``, torch hub's cache or a download).
             Stage 2 takes stage 1's encoder; a name that differs is an error.
    stage 2  init: stage 1's run folder (or its model.pt). Student and teacher
             both start from stage 1's selected teacher; everything trains on
             log-mels, the encoder at a lower rate; 1-epoch warm-up.
    epochs   default: ``preset.stage1_epochs`` / ``stage2_epochs``.
    lr_scale multiplies the paper's learning rates (default ``default_lr_scale``).
    teacher_features  the global-local fusion hook (stage 2): see ``make_train_step``;
             also used for validation when given.
    fusion_lambda  stage 2 only, when teacher_features is None: the teacher and
             validation use ``global_local.GlobalLocalFusion`` with this lambda
             and the training hop (0.49 s), as in the paper. Default 0.5; 0: off.
             Stage 1 runs on cached global frames and has no fusion.
    cache    stage 1: a ``frame_cache.FrameCache`` of the training and validation
             splits made with the same encoder (skips encoding; e.g. ablations
             that train several variants on the same frames).
    stop_after_epoch  return after that epoch as if interrupted (budgets, tests).
    recipe_overrides  fields of the stage's ``Recipe`` to replace, e.g.
             ``{"lr_final_factor": 0.1}`` (``benchmarks/stage2_schedules.py``).

    Writes into out_dir: model.pt (the best epoch's teacher, with its student,
    the class list and the preset name), recipe.json (settings, per-epoch
    student and teacher PSDS1/PSDS2, best epoch, time), and the engine's
    log.jsonl / last.pt / best.pt. Returns the recipe.json dict.
    """
    t_start = time.perf_counter()
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    p = get_preset(preset)
    recipe = replace(stage_recipe(f"stage{stage}", p), **(recipe_overrides or {}))
    epochs = int((p.stage1_epochs if stage == 1 else p.stage2_epochs) if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    scale = default_lr_scale(p, stage) if lr_scale is None else float(lr_scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(str(device)) if device is not None else pick_device()
    seed_everything(seed)

    if stage == 2:
        if init is None:
            raise ValueError("stage 2 starts from stage 1: pass init=<stage 1's out_dir>")
        model, info = load_model(init)
        if classes is not None and list(classes) != info["classes"]:
            raise ValueError(f"classes {list(classes)} differ from stage 1's {info['classes']}")
        classes, pos = info["classes"], info.get("pos", pos)
        kind = info.get("encoder_kind", "lite")
        if isinstance(encoder, str) and encoder != kind:
            raise ValueError(f"stage 2 continues stage 1's encoder ({kind}); got encoder "
                             f"{encoder!r}")
        model.train()
    layout, classes, ds = _datasets(data_root, p, classes)
    kinds = _kinds(layout)
    lam = None
    if stage == 2 and teacher_features is None:
        lam = 0.5 if fusion_lambda is None else float(fusion_lambda)
        if lam:
            teacher_features = GlobalLocalFusion.for_preset(p, lam, when="train")
    if stage == 1 and not isinstance(encoder, nn.Module):
        encoder = build_encoder(p, encoder, passt_checkpoint)
    kind = encoder_kind(encoder if stage == 1 else model.encoder)
    check_settings(out_dir, {
        # runs made before the real PaSST path have no "encoder" key: lite adds none
        **({"encoder": kind} if kind != "lite" else {}),
        "kind": "matsed", "stage": stage, "preset": p.name, "seed": seed, "pos": pos,
        "epochs": epochs, "lr_scale": scale, "classes": list(classes),
        "init": None if init is None else str(Path(init).resolve()),
        "fusion_lambda": lam if teacher_features is None or lam else "custom",
        "data_root": str(data_root),
        # runs made before overrides existed have none: an empty dict adds no key
        **({"recipe_overrides": dict(recipe_overrides)} if recipe_overrides else {}),
        # a consistency weight other than the recipe's own (the lite presets' stage 2):
        # a run started before the preset set it has no key, so resuming it at 2 is refused
        **({"max_consistency": recipe.max_consistency}
           if recipe.max_consistency != RECIPES[f"stage{stage}"].max_consistency else {}),
        **_step_floor(p, ds, kinds)}, resume)

    if stage == 1:
        # Seeded here, after the encoder exists: the heads start the same whether the
        # encoder was built above or handed in (the CLI builds it first).
        seed_everything(seed)
        model = MATSEDLite.from_preset(p, len(classes), encoder=encoder, pos=pos)
        if init is not None:
            model.context.load_state_dict(load_context(init, p, pos).state_dict())
        for q in list(model.encoder.parameters()) + list(model.context.parameters()):
            q.requires_grad_(False)
        if cache is None:
            cache = encode_splits({n: ds[n] for n in sum(kinds.values(), []) + ["validation"]},
                                  model.encoder, p, device=dev, progress=progress)
        stores = {k: pool_stores([FrameStore(cache.split(n)) for n in names])
                  for k, names in kinds.items()}
        val_store = FrameStore(cache.split("validation"))
        groups = [{"params": list(model.sed_head.parameters()) + list(model.at_head.parameters()),
                   "lr": recipe.lr_heads * scale, "name": "heads"}]
    else:
        stores = {k: pool_stores([MelStore(ds[n], p) for n in names]) for k, names in kinds.items()}
        val_store = MelStore(ds["validation"], p)
        groups = encoder_param_groups(model.encoder, recipe.lr_encoder * scale,
                                      recipe.lr_encoder_top * scale)
        groups += [{"params": list(model.context.parameters()), "lr": recipe.lr_context * scale,
                    "name": "context"},
                   {"params": list(model.sed_head.parameters()) + list(model.at_head.parameters()),
                    "lr": recipe.lr_heads * scale, "name": "heads"}]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)
    data = MixedBatches(stores, _batch_sizes(p), seed, p.min_steps_per_epoch)
    steps = len(data)
    scheduler = None
    if recipe.warmup_epochs or recipe.lr_final_factor != 1.0:
        # Linear warm-up from 0.1x over warmup_epochs, then a cosine to lr_final_factor.
        scheduler = warmup_cosine(optimizer, steps * epochs, int(round(recipe.warmup_epochs * steps)),
                                  start_factor=0.1, final_factor=recipe.lr_final_factor)
    gt, durations = split_ground_truth(layout["validation"], classes)
    evaluate = make_evaluate(val_store, classes, output_hop(model, p), gt, durations,
                             features=teacher_features, temperature=recipe.val_temperature)
    teacher = copy.deepcopy(model)  # stage 2: both start from stage 1's teacher
    res = fit(model, make_train_step(recipe, p, seed, teacher_features), data,
              optimizer=optimizer, scheduler=scheduler, evaluate=evaluate, teacher=teacher,
              **_fit_kwargs(out_dir, epochs, steps, resume, progress, seed, stop_after_epoch, dev,
                            f"stage {stage}"))
    info = {"stage": stage, "kind": "matsed", "preset": p.name, "seed": seed, "pos": pos,
            "encoder": kind,
            "epochs": epochs, "init": None if init is None else str(init),
            "data_root": str(data_root), "lr_scale": scale,
            "lr": {g["name"]: g["lr"] for g in groups}, "steps_per_epoch": steps,
            "batch": _batch_sizes(p), "recipe": asdict(recipe),
            "ema_max_alpha": ema_max_alpha_for(epochs * steps),
            "teacher_features": None if teacher_features is None else getattr(
                teacher_features, "__name__", "custom")}
    return _finish(out_dir, res, info, model, classes, p, "matsed", stage, pos, t_start)


def train_crnn(data_root, preset: "Preset | str", out_dir, seed: int = 0,
               epochs: int | None = None, resume: bool = False, progress: bool = True, *,
               classes: Sequence[str] | None = None, lr: float = 1e-3, device=None,
               stop_after_epoch: int | None = None, recipe: str = "crnn",
               budget_minutes: float | None = None, budget_clock: str = "wall",
               recipe_overrides: dict | None = None, geometry: str | None = None) -> dict:
    """The DCASE baseline CRNN trained by the same mean-teacher code on the same
    mixed batches (recipe ``crnn``: no AT head, DCASE consistency terms, the
    exp ramp warming up both w_cons and the learning rate), or, with recipe
    ``crnn_supervised``, plainly supervised (no teacher, no augmentation; the
    student is selected and kept). Epochs default to ``preset.crnn_epochs``.
    ``budget_minutes`` ends the run after the first epoch that ends past that much
    training time (the LR schedule still planned for ``epochs``): the same time as
    another run, e.g. the MAT-SED-lite pipeline it is compared with. ``budget_clock``
    "cpu" counts the process's CPU time instead of wall time (a shared machine).
    ``recipe_overrides`` replaces fields of the recipe, as in ``finetune``.
    ``geometry`` picks the architecture (``models.crnn.CRNN_GEOMETRIES``; default
    the preset's ``crnn_geometry``). Writes model.pt, recipe.json and the engine's files like ``finetune``."""
    t_start = time.perf_counter()
    p = get_preset(preset)
    if recipe not in ("crnn", "crnn_supervised"):
        raise ValueError(f"recipe must be 'crnn' or 'crnn_supervised', got {recipe!r}")
    recipe_name, recipe = recipe, replace(RECIPES[recipe], **(recipe_overrides or {}))
    epochs = int(p.crnn_epochs if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    geometry = p.crnn_geometry if geometry is None else geometry
    crnn_geometry(geometry)   # refused before anything is written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(str(device)) if device is not None else pick_device()
    seed_everything(seed)
    layout, classes, ds = _datasets(data_root, p, classes)
    kinds = _kinds(layout)
    check_settings(out_dir, {"kind": "crnn", "stage": "crnn", "preset": p.name, "seed": seed,
                             "epochs": epochs, "lr": lr, "classes": list(classes),
                             "data_root": str(data_root),
                             # runs made before these existed have neither key
                             **({"recipe": recipe_name} if recipe_name != "crnn" else {}),
                             **({"activation": p.crnn_activation}
                                if p.crnn_activation != "glu" else {}),
                             **({"geometry": geometry} if geometry != "dcase" else {}),
                             **({"budget_minutes": budget_minutes,
                                 "budget_clock": budget_clock} if budget_minutes else {}),
                             **({"recipe_overrides": dict(recipe_overrides)}
                                if recipe_overrides else {}),
                             **_step_floor(p, ds, kinds)},
                   resume)
    model = CRNN.from_preset(p, len(classes), geometry=geometry)
    stores = {k: pool_stores([MelStore(ds[n], p) for n in names]) for k, names in kinds.items()}
    val_store = MelStore(ds["validation"], p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=recipe.weight_decay)
    data = MixedBatches(stores, _batch_sizes(p), seed, p.min_steps_per_epoch)
    steps = len(data)
    scheduler = None
    if recipe.lr_follows_ramp:
        ramp_steps = max(recipe.ramp_fraction * epochs * steps, 1e-9)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: ramp_value(recipe.ramp, s / ramp_steps))
    gt, durations = split_ground_truth(layout["validation"], classes)
    hop = output_hop(model, p)
    evaluate = make_evaluate(val_store, classes, hop, gt, durations,
                             temperature=recipe.val_temperature)
    res = fit(model, make_train_step(recipe, p, seed), data, optimizer=optimizer,
              scheduler=scheduler, evaluate=evaluate,
              **_fit_kwargs(out_dir, epochs, steps, resume, progress, seed, stop_after_epoch, dev,
                            "crnn", teacher=recipe.teacher),
              time_budget_s=None if budget_minutes is None else 60.0 * budget_minutes,
              budget_clock=budget_clock)
    info = {"stage": "crnn", "kind": "crnn", "preset": p.name, "seed": seed, "epochs": epochs,
            "budget_minutes": budget_minutes, "budget_clock": budget_clock,
            "data_root": str(data_root), "lr": {"all": lr}, "steps_per_epoch": steps,
            "batch": _batch_sizes(p), "recipe": asdict(recipe), "frame_hop": hop,
            "activation": model.activation, "geometry": geometry,
            "crnn_config": model.config(),
            "ema_max_alpha": ema_max_alpha_for(epochs * steps) if recipe.teacher else None}
    return _finish(out_dir, res, info, model, classes, p, "crnn", "crnn", None, t_start)

"""The mean-teacher training step: MAT-SED's stages 1 and 2 and the CRNN baseline (chapter 05).

Why a mean teacher? Strong (frame-level) labels are scarce and synthetic; weak
(clip-level) labels and unlabeled clips are plentiful and real. The student is
trained on whatever labels a clip has, and on *all* clips to agree with a
teacher whose weights are an exponential moving average (EMA) of its own:
``teacher <- alpha * teacher + (1 - alpha) * student`` after every step, with
``alpha = min(1 - 1/step, max_alpha)`` (the engine does this; ``ema`` explains
``max_alpha``: 0.999 in the paper, a tenth of the run as horizon at lite budgets).
The teacher is a temporal ensemble of students: smoother, usually better, and it
is the model we keep.

One step (``train_step``), the same code for every stage:

1. a *mixed batch*: ``batch_strong`` strong + ``batch_weak`` weak +
   ``batch_unlabeled`` unlabeled clips (the preset's proportions); an epoch is
   one pass over the strong split, at least ``Preset.min_steps_per_epoch``
   steps; the order of epoch e comes from (seed, e);
2. augmentation, drawn from a generator seeded by (seed, step) so a resumed run
   repeats it exactly: a random time roll (labels rolled too), mixup inside the
   strong part and inside the weak part (soft labels), then on log-mels a
   frequency warp and FilterAugment drawn *separately* for student and teacher;
3. losses. Supervised (MAT-SED's weights)::

       L_sup = BCE(frames, strong)            strong clips, valid frames only
             + 0.5 * BCE(pooled clip, weak)    weak clips
             + 2   * BCE(AT head, weak)        weak clips

   Consistency (MSE against the teacher, whole batch including unlabeled)::

       L_cons = MSE(frames_s, frames_t) + 0.5 * MSE(pooled_s, AT_t) + 2 * MSE(AT_s, AT_t)

   A model without an AT head (the CRNN) uses the DCASE baseline's terms
   instead: BCE(frames) + BCE(pooled clip) and MSE(frames) + MSE(pooled clips).
   ``loss = L_sup + w_cons(t) * L_cons`` with a ramped weight (below).

The three recipes (``presets.RECIPES``):

========== ============================ ===================================== =======================
recipe     what trains                  input                                 w_cons ramp
========== ============================ ===================================== =======================
stage1     SED + AT heads only          cached frozen-encoder frames          linear to 2 over 8/15
stage2     everything                   log-mels (encoder runs every step)    sigmoid to 40 over 1/2
crnn       the CRNN                     log-mels                              DCASE exp to 2 over 1/4
========== ============================ ===================================== =======================

(stage2 at the smoke and cpu presets: sigmoid to 2; see below.)

Ramps are given as a *fraction of the run* (MAT-SED: 8 of 15 epochs, 15 of
30; DCASE: 50 of 200), so a shorter lite budget keeps the same shape. The
consistency term is an MSE between probabilities, typically 1e-3 to 1e-2
once student and teacher roughly agree, far below the BCE terms; the paper's
weights (2 with frozen features, 40 when everything trains) put it on the
same footing as the supervised loss. Stage 2 uses the larger weight because
with the whole network trainable the student can overfit the small strong set,
and agreement with the teacher on the unlabeled clips is the regulariser. The
lite presets' stage 2 ramps to 2 instead (``Preset.stage2_max_consistency``,
applied by ``presets.stage_recipe``): in their 4 epochs the sigmoid is at 20
after the first and at 40 by the end of the second, and the teacher's PSDS1
fell after the first (``benchmarks/stage2_schedules.py``).

Stage 1 runs on frames cached once by ``frame_cache.encode_splits`` (the
encoder is frozen, so running it every step would recompute the same
numbers). Spectrogram augmentations (frequency warp, FilterAugment) cannot be
applied to cached encoder frames; only the augmentations that commute with a
frozen frame-wise encoder survive: the time roll (the frames are rolled with
their labels) and mixup (a convex mix of frames, an approximation of mixing
audio). Student and teacher therefore see the same input in stage 1; their
difference comes from the EMA only.

Model selection: validation PSDS1 of the student and of the teacher are
computed every epoch on the test-time chain (temperature ``val_temperature``,
soft weak mask, median filter) and both recorded, with per-class PSDS1 and
frame AP; the best epoch is the one with the best *teacher* PSDS1, because the
teacher is what we keep and what stage 2 starts from (MAT-SED does the same).
Ties go to the later epoch.

Learning rates: the paper's values scaled by ``lr_scale`` (default: the
preset's ``stage1_lr_scale`` / ``stage2_lr_scale``, 25 and 10 for the lite presets,
whose models are ~6x narrower and trained for far fewer steps; 1 for the
paper preset).

This module holds the step and the per-epoch validation; the pieces it uses
live beside it (``mixed_batches``, ``augment.augment_batch``, ``losses``,
``ramps``) and ``finetune`` runs whole stages.
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import torch

from ..data.labels import pool_time
from ..evaluation.frame_prediction import padding_mask, predict_frames, run_model
from ..evaluation.postprocessing import postprocess_all
from ..evaluation.sed_metrics import evaluate_sed
from ..evaluation.tagging import average_precision_per_class
from ..presets import Preset, Recipe
from .augment import augment_batch, spec_augment
from .ema import batchnorm_tracking
from .engine import epoch_seed
from .losses import consistency_losses, supervised_losses
from .ramps import consistency_weight


def step_generator(seed: int, step: int, device="cpu", rank: int = 0) -> torch.Generator:
    """The augmentation generator of one step: seeded by (seed, step), so a
    resumed run draws exactly what the uninterrupted one drew. Under torchrun
    each process (``rank`` > 0) draws its own augmentations for its clips."""
    return torch.Generator(device=device).manual_seed(
        epoch_seed(seed + 7919 + 104_729 * int(rank), step))


def make_train_step(recipe: Recipe, preset: Preset, seed: int = 0,
                    teacher_features: Callable | None = None) -> Callable:
    """``train_step(model, batch, state)`` for the engine: augment, student and
    teacher forward, supervised + w_cons(t) x consistency (chapter 05 builds it by hand).

    teacher_features  hook for global-local fusion (a later chapter): a function
                      ``(teacher, mel) -> (frames, clip_embedding)`` giving the
                      teacher's features in place of its own global pass. None:
                      the teacher runs on the same input as the student."""
    def train_step(model, batch, state):
        g = step_generator(seed, state.step + 1, rank=state.dist.rank)
        b = augment_batch(batch, recipe, preset, g)
        s_in, t_in = {}, {}
        if "mel" in b:
            if recipe.spec_augment:
                db = recipe.filter_db_range
                s_in["mel"], t_in["mel"] = spec_augment(b["mel"], g, db), spec_augment(b["mel"], g, db)
            else:
                s_in["mel"] = t_in["mel"] = b["mel"]
            kpm = None  # the encoder sees the whole padded clip
        else:
            s_in = t_in = {"frames": b["frames"], "clip_embedding": b["clip_embedding"]}
            kpm = padding_mask(b["frame_mask"])
        out_s = run_model(model, s_in, kpm)
        out_t = None
        if state.teacher is not None:
            # The teacher's BatchNorm layers (the CRNN's) use and track its own statistics.
            with torch.no_grad(), batchnorm_tracking(state.teacher):
                if teacher_features is not None and "mel" in t_in:
                    frames, clip = teacher_features(state.teacher, t_in["mel"])
                    out_t = run_model(state.teacher, {"frames": frames, "clip_embedding": clip},
                                      kpm)
                else:
                    out_t = run_model(state.teacher, t_in, kpm)
        T = out_s["frame_probs"].shape[1]
        factor = max(1, b["strong"].shape[1] // T)  # labels to the model's frame rate
        targets = {"strong": pool_time(b["strong"], factor)[:, :T],
                   "frame_mask": pool_time(b["frame_mask"], factor)[:, :T],
                   "weak": b["weak"], "has_strong": b["has_strong"], "has_weak": b["has_weak"]}
        sup = supervised_losses(out_s, targets, recipe)
        cons = {} if out_t is None else consistency_losses(out_s, out_t, targets["frame_mask"],
                                                           recipe)
        steps = state.steps_per_epoch or 1
        w = consistency_weight(recipe, state.step / steps, state.epochs)
        loss = sum(sup.values()) + w * sum(cons.values(), torch.zeros(()))
        metrics = {f"sup_{k}": v.detach() for k, v in sup.items()}
        metrics.update({f"cons_{k}": v.detach() for k, v in cons.items()})
        metrics["w_cons"] = w
        return loss, metrics

    return train_step


def make_evaluate(store, classes: Sequence[str], frame_hop: float, ground_truth, durations,
                  features: Callable | None = None, temperature: float = 1.0,
                  post: str = "median") -> Callable:
    """``evaluate(model, state)`` for the engine: student and teacher on the validation split.

    Scored as at test time, which is what MAT-SED selects on: frame scores at
    ``temperature`` (through ``features``, e.g. global-local fusion), the soft weak
    mask and the per-class ``post`` filter, then PSDS1 and PSDS2
    (``val/{student,teacher}_psds1``, ...). Diagnostics for each class, logged every
    epoch: PSDS1 (``val/teacher_psds1/<class>``) and the frame AP of the raw frame
    scores against the frame labels (``val/teacher_frame_ap/<class>``), which shows a
    class that learns before PSDS can see it."""
    labels: dict[int, tuple] = {}  # frame labels per output length, made once

    def frame_labels(n_out: int):
        if n_out not in labels:
            items = [store.item(i) for i in range(len(store))]
            factor = max(1, items[0]["strong"].shape[0] // n_out)
            y = np.concatenate([pool_time(it["strong"][None].float(), factor)[0, :n_out].numpy()
                                for it in items])
            ok = np.concatenate([pool_time(it["frame_mask"][None].float(), factor)[0, :n_out]
                                 .numpy() > 0.5 for it in items])
            labels[n_out] = (y[ok], ok)
        return labels[n_out]

    def evaluate(model, state):
        res = {}
        nets = [("student", model)] + ([("teacher", state.teacher)] if state.teacher is not None else [])
        for who, net in nets:
            frames, clips = predict_frames(net, store, state.device, features=features,
                                           amp_context=state.autocast(), with_clip=True,
                                           temperature=temperature)
            scores = postprocess_all(frames, clips, classes, frame_hop, filter=post)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tiny sets miss classes: evaluation says so once
                r = evaluate_sed(scores, frame_hop, classes, ground_truth, durations)
            res[f"val/{who}_psds1"] = r["psds1"]
            res[f"val/{who}_psds2"] = r["psds2"]
            names = store.filenames
            n_out = frames[names[0]].shape[0]
            y, ok = frame_labels(n_out)
            x = np.concatenate([frames[n] for n in names])[ok]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ap = average_precision_per_class(x, y)
            for k, c in enumerate(classes):
                res[f"val/{who}_psds1/{c}"] = r["per_class"]["psds1"].get(c, float("nan"))
                res[f"val/{who}_frame_ap/{c}"] = float(ap[k])
        return res

    return evaluate

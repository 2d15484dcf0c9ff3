"""Mean-teacher fine-tuning: MAT-SED's stages 1 and 2 and the CRNN baseline, one recipe.

Why a mean teacher? Strong (frame-level) labels are scarce and synthetic; weak
(clip-level) labels and unlabeled clips are plentiful and real. The student is
trained on whatever labels a clip has, and on *all* clips to agree with a
teacher whose weights are an exponential moving average (EMA) of its own:
``teacher <- alpha * teacher + (1 - alpha) * student`` after every step, with
``alpha = min(1 - 1/step, 0.999)`` (the engine does this). The teacher is a
temporal ensemble of students: smoother, usually better, and it is the model
we keep.

One step (``train_step``), the same code for every stage:

1. a *mixed batch*: ``batch_strong`` strong + ``batch_weak`` weak +
   ``batch_unlabeled`` unlabeled clips (the preset's proportions); an epoch is
   one pass over the strong split; the order of epoch e comes from (seed, e);
2. augmentation, drawn from a generator seeded by (seed, step) so a resumed run
   repeats it exactly: a random time roll (labels rolled too), mixup inside the
   strong part and inside the weak part (soft labels), then on log-mels a
   frequency warp and FilterAugment drawn *separately* for student and teacher;
3. losses. Supervised (MAT-SED's weights)::

       L_sup = BCE(frames, strong)            strong clips, valid frames only
             + 0.5 * BCE(pooled clip, weak)    strong + weak clips
             + 2   * BCE(AT head, weak)        strong + weak clips

   Consistency (MSE against the teacher, whole batch including unlabeled)::

       L_cons = MSE(frames_s, frames_t) + 0.5 * MSE(pooled_s, AT_t) + 2 * MSE(AT_s, AT_t)

   A model without an AT head (the CRNN) uses the DCASE baseline's terms
   instead: BCE(frames) + BCE(pooled clip) and MSE(frames) + MSE(pooled clips).
   ``loss = L_sup + w_cons(t) * L_cons`` with a ramped weight (below).

The three recipes (``RECIPES``):

========== ============================ ===================================== =======================
recipe     what trains                  input                                 w_cons ramp
========== ============================ ===================================== =======================
stage1     SED + AT heads only          cached frozen-encoder frames          linear to 2 over 8/15
stage2     everything                   log-mels (encoder runs every step)    sigmoid to 40 over 1/2
crnn       the CRNN                     log-mels                              DCASE exp to 2 over 1/4
========== ============================ ===================================== =======================

Ramps are given as a *fraction of the run* (MAT-SED: 8 of 15 epochs, 15 of
30; DCASE: 50 of 200), so a shorter lite budget keeps the same shape. The
consistency term is an MSE between probabilities, typically 1e-3 to 1e-2
once student and teacher roughly agree, far below the BCE terms; the paper's
weights (2 with frozen features, 40 when everything trains) put it on the
same footing as the supervised loss. Stage 2 uses the larger weight because
with the whole network trainable the student can overfit the small strong set,
and agreement with the teacher on the unlabeled clips is the regulariser.

Stage 1 runs on frames cached once by ``frame_cache.encode_splits`` (the
encoder is frozen, so running it every step would recompute the same
numbers). Spectrogram augmentations (frequency warp, FilterAugment) cannot be
applied to cached encoder frames; only the augmentations that commute with a
frozen frame-wise encoder survive: the time roll (the frames are rolled with
their labels) and mixup (a convex mix of frames, an approximation of mixing
audio). Student and teacher therefore see the same input in stage 1; their
difference comes from the EMA only.

Model selection: validation PSDS1 of the student and of the teacher are
computed every epoch and both recorded; the best epoch is the one with the
best *teacher* PSDS1, because the teacher is what we keep and what stage 2
starts from (MAT-SED does the same).

Learning rates: the paper's values scaled by ``lr_scale`` (default
``LITE_LR_SCALE``: 25 in stage 1 and 10 in stage 2 for the lite presets,
whose models are ~6x narrower and trained for far fewer steps; 1 for the
paper preset).
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .engine import epoch_seed, fit, load_checkpoint, warmup_cosine
from .labels import pool_time
from .presets import Preset, get_preset

KINDS = ("strong", "weak", "unlabeled")
MODEL_FILE = "model.pt"
RECIPE_FILE = "recipe.json"
MONITOR = "val/teacher_psds1"


# ---------------------------------------------------------------------------
# recipes

@dataclass(frozen=True)
class Recipe:
    """The numbers that make a stage: the paper's learning rates (before
    ``lr_scale``), the consistency ramp and the augmentation switches."""

    name: str
    lr_heads: float
    lr_context: float = 0.0        # 0: frozen
    lr_encoder: float = 0.0        # 0: frozen
    lr_encoder_top: float = 0.0    # the encoder's last third of blocks and its norms
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0
    max_consistency: float = 2.0
    ramp: str = "linear"           # linear | sigmoid | dcase
    ramp_fraction: float = 8 / 15
    lr_follows_ramp: bool = False  # DCASE: the same exp ramp warms up the learning rate
    spec_augment: bool = True      # frequency warp + FilterAugment (log-mel inputs only)
    time_roll_seconds: float = 0.9  # std of the roll: 90 frames of 10 ms in MAT-SED
    mixup_p: float = 0.5
    mixup_beta: tuple = (10.0, 0.5)  # MAT-SED's Beta(10, 0.5): mostly one clip, a little of another
    # loss weights: supervised frames, pooled clip vs weak, AT vs weak;
    # consistency frames, pooled student vs teacher AT (or teacher pooled), AT vs AT
    w_strong: float = 1.0
    w_weak: float = 0.5
    w_at: float = 2.0
    c_frames: float = 1.0
    c_clip: float = 0.5
    c_at: float = 2.0


RECIPES = {
    "stage1": Recipe("stage1", lr_heads=2e-4, max_consistency=2.0, ramp="linear",
                     ramp_fraction=8 / 15, spec_augment=False),
    "stage2": Recipe("stage2", lr_heads=2e-4, lr_context=1e-4, lr_encoder=5e-6,
                     lr_encoder_top=1e-5, warmup_epochs=1.0, max_consistency=40.0,
                     ramp="sigmoid", ramp_fraction=15 / 30),
    # The DCASE 2023 baseline: Adam 1e-3 warmed up by the consistency ramp, no AT head,
    # weak loss and clip consistency at weight 1, mixup Beta(0.2, 0.2).
    "crnn": Recipe("crnn", lr_heads=1e-3, weight_decay=0.0, max_consistency=2.0, ramp="dcase",
                   ramp_fraction=50 / 200, lr_follows_ramp=True, mixup_beta=(0.2, 0.2),
                   w_weak=1.0, w_at=0.0, c_clip=1.0, c_at=0.0),
}


# The lite runs take a few hundred steps per stage where the paper takes thousands,
# with models ~6x narrower. Measured at cpu (frozen features, 600 steps): a linear
# head reaches frame AP 0.41 at lr 1e-3 and 0.48-0.50 at 1e-2; the paper's 2e-4 x 5
# left stage 1 at frame AP 0.31 after 900 steps.
LITE_LR_SCALE = {1: 25.0, 2: 10.0}


def default_lr_scale(preset: "Preset | str", stage: int = 2) -> float:
    """1 for the paper's geometry; for the lite presets 25 in stage 1 (heads at 5e-3)
    and 10 in stage 2 (context 1e-3, heads 2e-3, encoder 5e-5 / 1e-4)."""
    if get_preset(preset).name == "paper":
        return 1.0
    return LITE_LR_SCALE[stage]


# ---------------------------------------------------------------------------
# consistency ramps: progress x = (epochs done, fractional) / (ramp length), clamped to [0, 1]

def ramp_value(kind: str, x: float) -> float:
    """The ramp's shape in [0, 1] at progress x.

    linear   x                                (MAT-SED stage 1)
    sigmoid  1 / (1 + exp(-10 (x - 0.5)))     (MAT-SED stage 2; 0.0067 at 0, 0.9933 at 1)
    dcase    exp(-5 (1 - x)^2)                (the DCASE baseline; 0.0067 at 0, 1 at 1)
    """
    x = min(1.0, max(0.0, float(x)))
    if kind == "linear":
        return x
    if kind == "sigmoid":
        return 1.0 / (1.0 + math.exp(-10.0 * (x - 0.5)))
    if kind == "dcase":
        return math.exp(-5.0 * (1.0 - x) ** 2)
    raise ValueError(f"unknown ramp {kind!r} (linear, sigmoid or dcase)")


def consistency_weight(recipe: Recipe, epochs_done: float, total_epochs: int) -> float:
    """w_cons after ``epochs_done`` (fractional) epochs of a ``total_epochs`` run."""
    ramp_len = max(recipe.ramp_fraction * total_epochs, 1e-9)
    return recipe.max_consistency * ramp_value(recipe.ramp, epochs_done / ramp_len)


# ---------------------------------------------------------------------------
# mixed batches

def mixed_batch_plan(pool_sizes: Mapping[str, int], batch_sizes: Mapping[str, int],
                     seed: int, epoch: int) -> list[dict[str, list[int]]]:
    """Indices of every batch of one epoch: [{"strong": [...], "weak": [...], "unlabeled": [...]}].

    An epoch is one pass over the strong split: ``n_strong // batch_strong``
    batches (at least one), each with exactly the preset's mix. The weak and
    unlabeled pools are walked in their own shuffled order and wrap around
    (reshuffled) when a pool is used up, so every clip is seen about equally
    often. Everything depends only on (seed, epoch): resuming is exact."""
    n_strong, b_strong = int(pool_sizes.get("strong", 0)), int(batch_sizes.get("strong", 0))
    if n_strong < 1 or b_strong < 1:
        raise ValueError("mean-teacher batches need a non-empty strong split and batch_strong >= 1")
    steps = max(1, n_strong // b_strong)
    plan: list[dict[str, list[int]]] = [{} for _ in range(steps)]
    for k, kind in enumerate(KINDS):
        n, b = int(pool_sizes.get(kind, 0)), int(batch_sizes.get(kind, 0))
        if n == 0 or b == 0:
            for batch in plan:
                batch[kind] = []
            continue
        g = torch.Generator().manual_seed(epoch_seed(seed * 3 + k, epoch))
        need = steps * b
        order = torch.cat([torch.randperm(n, generator=g) for _ in range(-(-need // n))])
        order = order[:need].tolist()
        for i, batch in enumerate(plan):
            batch[kind] = order[i * b:(i + 1) * b]
    return plan


class MelStore:
    """Log-mels of one split, computed on first use and kept in memory (float16).

    Stage 2 and the CRNN read every clip once per epoch; decoding audio and
    computing the STFT once, not every epoch, makes CPU training several times
    faster. float16 log-mels of a lite clip take 64 KB."""

    def __init__(self, dataset, preset: "Preset | str"):
        from .features import LogMel

        self.dataset = dataset
        self.logmel = LogMel(preset)
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def filenames(self) -> list[str]:
        return list(self.dataset.filenames)

    def item(self, i: int) -> dict:
        if i not in self._cache:
            it = self.dataset[i]
            with torch.no_grad():
                mel = self.logmel(it["waveform"]).to(torch.float16)
            self._cache[i] = {"mel": mel, "frame_mask": it["frame_mask"], "strong": it["strong"],
                              "weak": it["weak"], "has_strong": bool(it["has_strong"]),
                              "has_weak": bool(it["has_weak"]), "filename": it["filename"]}
        return self._cache[i]


class FrameStore:
    """One split of a ``frame_cache.FrameCache``, with ``item(i)`` like ``MelStore``."""

    def __init__(self, cache):
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    @property
    def filenames(self) -> list[str]:
        return list(self.cache.filenames)

    def item(self, i: int) -> dict:
        it = self.cache[i]
        return {"frames": it["frames"], "clip_embedding": it["clip_embedding"],
                "frame_mask": it["frame_mask"], "strong": it["strong"], "weak": it["weak"],
                "has_strong": bool(it["has_strong"]), "has_weak": bool(it["has_weak"]),
                "filename": self.cache.filenames[i]}


def collate_items(items: Sequence[dict]) -> dict:
    """Stack store items into a batch dict (inputs as float32)."""
    out = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if key == "filename":
            out[key] = vals
        elif torch.is_tensor(vals[0]):
            v = torch.stack(vals)
            out[key] = v.float() if v.is_floating_point() else v
        else:
            out[key] = torch.tensor(vals)
    return out


class MixedBatches:
    """The engine's ``train_data``: ``batches(epoch)`` yields mixed batches, in
    the order strong | weak | unlabeled inside each batch; ``len()`` is the
    number of steps per epoch."""

    def __init__(self, stores: Mapping[str, object], batch_sizes: Mapping[str, int], seed: int):
        self.stores = {k: stores[k] for k in KINDS if k in stores and stores[k] is not None}
        self.batch_sizes = {k: int(batch_sizes.get(k, 0)) for k in KINDS}
        self.pool_sizes = {k: len(s) for k, s in self.stores.items()}
        self.seed = int(seed)

    def plan(self, epoch: int):
        return mixed_batch_plan(self.pool_sizes, self.batch_sizes, self.seed, epoch)

    def __len__(self) -> int:
        return len(self.plan(1))

    def __call__(self, epoch: int):
        for entry in self.plan(epoch):
            items = [self.stores[kind].item(i) for kind in KINDS for i in entry.get(kind, [])]
            yield collate_items(items)


# ---------------------------------------------------------------------------
# losses

def _bce_probs(p: Tensor, y: Tensor) -> Tensor:
    """Element-wise BCE on probabilities, in float32 (safe under autocast)."""
    p = p.float().clamp(1e-7, 1 - 1e-7)
    y = y.float()
    return -(y * torch.log(p) + (1 - y) * torch.log1p(-p))


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x over the positions where mask is True (broadcast over trailing dims).
    0 (with a gradient path) when the mask is empty."""
    m = mask.to(x.dtype)
    while m.dim() < x.dim():
        m = m.unsqueeze(-1)
    m = m.expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def supervised_losses(out: dict, batch: dict, recipe: Recipe) -> dict[str, Tensor]:
    """MAT-SED's supervised terms, each already weighted; keys strong, weak, at.

    strong: BCE on frame logits, strong clips and valid frames only;
    weak:   BCE(linear-softmax pooled clip score, weak label), clips with weak labels;
    at:     BCE(AT head, weak label), clips with weak labels (absent without an AT head).
    ``batch["strong"]`` and ``batch["frame_mask"]`` must be at the model's frame rate."""
    has_strong, has_weak = batch["has_strong"].bool(), batch["has_weak"].bool()
    frame_bce = F.binary_cross_entropy_with_logits(out["frame_logits"].float(),
                                                   batch["strong"].float(), reduction="none")
    frame_ok = batch["frame_mask"].bool() & has_strong[:, None]
    losses = {"strong": recipe.w_strong * _masked_mean(frame_bce, frame_ok),
              "weak": recipe.w_weak * _masked_mean(_bce_probs(out["clip_probs"], batch["weak"]),
                                                   has_weak)}
    if "at_logits" in out and recipe.w_at:
        at_bce = F.binary_cross_entropy_with_logits(out["at_logits"].float(), batch["weak"].float(),
                                                    reduction="none")
        losses["at"] = recipe.w_at * _masked_mean(at_bce, has_weak)
    return losses


def consistency_losses(student: dict, teacher: dict, frame_mask: Tensor,
                       recipe: Recipe) -> dict[str, Tensor]:
    """MSE between student and teacher over the whole batch, each term weighted
    (before w_cons); keys frames, clip, at.

    With an AT head (MAT-SED): frames vs frames, 0.5 x student pooled vs
    *teacher AT*, 2 x AT vs AT. Without (CRNN, DCASE): frames vs frames and
    pooled vs pooled."""
    t_frames = teacher["frame_probs"].detach().float()
    frames = (student["frame_probs"].float() - t_frames) ** 2
    losses = {"frames": recipe.c_frames * _masked_mean(frames, frame_mask.bool())}
    has_at = "at_probs" in student and "at_probs" in teacher
    clip_target = (teacher["at_probs"] if has_at else teacher["clip_probs"]).detach().float()
    losses["clip"] = recipe.c_clip * F.mse_loss(student["clip_probs"].float(), clip_target)
    if has_at and recipe.c_at:
        losses["at"] = recipe.c_at * F.mse_loss(student["at_probs"].float(),
                                                teacher["at_probs"].detach().float())
    return losses


# ---------------------------------------------------------------------------
# augmentation

def augment_batch(batch: dict, recipe: Recipe, preset: Preset, generator: torch.Generator) -> dict:
    """Time roll and mixup of a mixed batch (shared by student and teacher).

    Works on ``batch["mel"]`` (B, n_mels, T) at the mel frame rate or on cached
    ``batch["frames"]`` (B, T, D) at the context frame rate (the roll's std is
    ``recipe.time_roll_seconds`` either way);
    labels and the frame mask are rolled with the input. Mixup mixes strong
    clips with strong clips and weak with weak (mixing across kinds would
    leave half a clip with labels that do not exist); unlabeled clips are not
    mixed. Returns a new dict."""
    from . import augment

    b = dict(batch)
    key = "mel" if "mel" in b else "frames"
    # augment's functions want time last: (B, n_mels, T) already, frames (B, T, D) transposed
    x = b[key] if key == "mel" else b[key].transpose(1, 2)
    if b["strong"].shape[1] != x.shape[-1]:
        raise ValueError(f"labels have {b['strong'].shape[1]} frames, the {key} {x.shape[-1]}: "
                         "the time roll needs both at one frame rate")
    hop = preset.frame_hop_seconds if key == "mel" else preset.context_hop_seconds
    std = recipe.time_roll_seconds / hop
    if std > 0:
        x, b["strong"], shifts = augment.random_time_roll(x, b["strong"], std, generator=generator)
        b["frame_mask"], _ = augment.time_roll(b["frame_mask"], None, shifts)
    if recipe.mixup_p > 0:
        x = x.clone()
        strong, weak = b["strong"].clone(), b["weak"].clone()
        alpha, beta = recipe.mixup_beta
        for part in (b["has_strong"], b["has_weak"] & ~b["has_strong"]):
            idx = torch.nonzero(part.bool()).flatten()
            use = float(torch.rand(1, generator=generator)) < recipe.mixup_p
            if len(idx) < 2 or not use:
                continue
            m = augment.mixup(x[idx], strong[idx], weak[idx], alpha=alpha, beta=beta,
                              generator=generator)
            x[idx], strong[idx], weak[idx] = m.x, m.strong, m.weak
        b["strong"], b["weak"] = strong, weak
    b[key] = x if key == "mel" else x.transpose(1, 2)
    return b


def spec_augment(mel: Tensor, generator: torch.Generator) -> Tensor:
    """One draw of MAT-SED's log-mel augmentations: frequency warp, then step
    FilterAugment (-4.5..6 dB on 2-4 bands of at least 4 bins)."""
    from . import augment

    mel = augment.frequency_warp(mel, generator=generator)
    return augment.filter_augment(mel, generator=generator)


# ---------------------------------------------------------------------------
# the step

def _forward(model: nn.Module, inputs: dict, key_padding_mask: Tensor | None = None,
             temperature: float = 1.0) -> dict:
    """Run a MAT-SED model on mels or on cached frames, or a CRNN on mels
    (``temperature`` divides MAT-SED's logits; the CRNN has none)."""
    if "frames" in inputs:
        return model(frames=inputs["frames"], clip_embedding=inputs["clip_embedding"],
                     key_padding_mask=key_padding_mask, temperature=temperature)
    if not hasattr(model, "context"):  # the CRNN: mels in, its own frame rate out
        return model(inputs["mel"])
    return model(mel=inputs["mel"], key_padding_mask=key_padding_mask, temperature=temperature)


def _padding_mask(frame_mask: Tensor) -> Tensor | None:
    """Key padding mask for attention, or None when no frame is padding (the fast path)."""
    return None if bool(frame_mask.all()) else ~frame_mask.bool()


def step_generator(seed: int, step: int, device="cpu") -> torch.Generator:
    """The augmentation generator of one step: seeded by (seed, step), so a
    resumed run draws exactly what the uninterrupted one drew."""
    return torch.Generator(device=device).manual_seed(epoch_seed(seed + 7919, step))


def make_train_step(recipe: Recipe, preset: "Preset | str", seed: int = 0,
                    teacher_features: Callable | None = None) -> Callable:
    """``train_step(model, batch, state)`` for the engine: augment, student and
    teacher forward, supervised + w_cons(t) x consistency.

    teacher_features  hook for global-local fusion (a later chapter): a function
                      ``(teacher, mel) -> (frames, clip_embedding)`` giving the
                      teacher's features in place of its own global pass. None:
                      the teacher runs on the same input as the student."""
    preset = get_preset(preset)

    def train_step(model, batch, state):
        g = step_generator(seed, state.step + 1)
        b = augment_batch(batch, recipe, preset, g)
        s_in, t_in = {}, {}
        if "mel" in b:
            if recipe.spec_augment:
                s_in["mel"], t_in["mel"] = spec_augment(b["mel"], g), spec_augment(b["mel"], g)
            else:
                s_in["mel"] = t_in["mel"] = b["mel"]
            kpm = None  # the encoder sees the whole padded clip
        else:
            s_in = t_in = {"frames": b["frames"], "clip_embedding": b["clip_embedding"]}
            kpm = _padding_mask(b["frame_mask"])
        out_s = _forward(model, s_in, kpm)
        with torch.no_grad():
            if teacher_features is not None and "mel" in t_in:
                frames, clip = teacher_features(state.teacher, t_in["mel"])
                out_t = _forward(state.teacher, {"frames": frames, "clip_embedding": clip}, kpm)
            else:
                out_t = _forward(state.teacher, t_in, kpm)
        T = out_s["frame_probs"].shape[1]
        factor = max(1, b["strong"].shape[1] // T)  # labels to the model's frame rate
        targets = {"strong": pool_time(b["strong"], factor)[:, :T],
                   "frame_mask": pool_time(b["frame_mask"], factor)[:, :T],
                   "weak": b["weak"], "has_strong": b["has_strong"], "has_weak": b["has_weak"]}
        sup = supervised_losses(out_s, targets, recipe)
        cons = consistency_losses(out_s, out_t, targets["frame_mask"], recipe)
        steps = state.steps_per_epoch or 1
        w = consistency_weight(recipe, state.step / steps, state.epochs)
        loss = sum(sup.values()) + w * sum(cons.values())
        metrics = {f"sup_{k}": v.detach() for k, v in sup.items()}
        metrics.update({f"cons_{k}": v.detach() for k, v in cons.items()})
        metrics["w_cons"] = w
        return loss, metrics

    return train_step


# ---------------------------------------------------------------------------
# validation

@torch.no_grad()
def predict_frames(model: nn.Module, store, device, batch_size: int = 16,
                   features: Callable | None = None, amp_context=None,
                   with_clip: bool = False, temperature: float = 1.0):
    """Frame probabilities (T_out, K) of every clip of a store, keyed by file name.

    with_clip  also return the clip-level (linear-softmax pooled) probabilities
               (K,) per clip: ``(frames, clips)``, for the soft weak mask.
    temperature divides the logits (MAT-SED evaluates at 0.5; 1: as trained)."""
    from contextlib import nullcontext

    was = model.training
    model.eval()
    out, clips = {}, {}
    names = store.filenames
    try:
        for start in range(0, len(store), batch_size):
            items = [store.item(i) for i in range(start, min(start + batch_size, len(store)))]
            b = collate_items(items)
            inputs = {k: b[k].to(device) for k in ("mel", "frames", "clip_embedding") if k in b}
            kpm = _padding_mask(b["frame_mask"].to(device)) if "frames" in inputs else None
            with amp_context or nullcontext():
                if features is not None and "mel" in inputs:
                    frames, clip = features(model, inputs["mel"])
                    inputs = {"frames": frames, "clip_embedding": clip}
                o = _forward(model, inputs, kpm, temperature)
            probs = o["frame_probs"].float().cpu().numpy()
            pooled = o["clip_probs"].float().cpu().numpy()
            for j, p in enumerate(probs):
                out[names[start + j]] = p
                clips[names[start + j]] = pooled[j]
    finally:
        model.train(was)
    return (out, clips) if with_clip else out



def make_evaluate(store, classes: Sequence[str], frame_hop: float, ground_truth, durations,
                  features: Callable | None = None) -> Callable:
    """``evaluate(model, state)`` for the engine: PSDS1 and PSDS2 of the student
    and of the teacher on the validation split (raw frame probabilities, no
    post-processing)."""
    from .evaluation import evaluate_sed
    import warnings

    def evaluate(model, state):
        res = {}
        for who, net in (("student", model), ("teacher", state.teacher)):
            probs = predict_frames(net, store, state.device, features=features,
                                   amp_context=state.autocast())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tiny sets miss classes: evaluation says so once
                r = evaluate_sed(probs, frame_hop, classes, ground_truth, durations)
            res[f"val/{who}_psds1"] = r["psds1"]
            res[f"val/{who}_psds2"] = r["psds2"]
        return res

    return evaluate


# ---------------------------------------------------------------------------
# building blocks of a run

class ConcatStore:
    """Several stores as one pool (e.g. synthetic + real strong clips)."""

    def __init__(self, stores: Sequence):
        self.stores = list(stores)
        self.offsets = np.cumsum([0] + [len(s) for s in self.stores])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def filenames(self) -> list[str]:
        return [n for s in self.stores for n in s.filenames]

    def item(self, i: int) -> dict:
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.stores[k].item(i - int(self.offsets[k]))


def _pool(stores: list):
    if not stores:
        return None
    return stores[0] if len(stores) == 1 else ConcatStore(stores)


def _validation_truth(spec, classes):
    """(ground truth, durations) of the validation split; durations from its
    durations TSV, else measured from the audio files."""
    from .evaluation import ground_truth_from_tsv

    if spec.durations_tsv is not None:
        return ground_truth_from_tsv(spec.tsv, spec.durations_tsv, classes=classes)
    import soundfile as sf
    from .desed_format import read_strong

    names = set(read_strong(spec.tsv, classes=classes).filenames)
    names |= {p.name for p in Path(spec.audio_dir).glob("*.wav")}
    durations = {n: sf.info(str(Path(spec.audio_dir) / n)).duration for n in sorted(names)
                 if (Path(spec.audio_dir) / n).is_file()}
    return ground_truth_from_tsv(spec.tsv, classes=classes, durations=durations)


def _datasets(data_root, preset, classes):
    from .datasets import infer_classes, layout_for, make_datasets

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


def encoder_param_groups(encoder: nn.Module, lr_low: float, lr_top: float) -> list[dict]:
    """The encoder's parameters in two groups: its last third of blocks and its
    norms at ``lr_top``, the rest (patch embedding, positions, early blocks) at
    ``lr_low``. MAT-SED: 1e-5 for blocks 9-12 and the final norm, 5e-6 below."""
    blocks = getattr(encoder, "blocks", None)
    n_top = max(1, len(blocks) // 3) if blocks is not None else 0
    top_ids = set()
    if blocks is not None:
        for blk in list(blocks)[len(blocks) - n_top:]:
            top_ids |= {id(q) for q in blk.parameters()}
    for name in ("norm", "frame_norm"):
        m = getattr(encoder, name, None)
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


def output_hop(model: nn.Module, preset: "Preset | str") -> float:
    """Seconds between two of the model's output frames (its detection resolution)."""
    return get_preset(preset).frame_hop_seconds * int(getattr(model, "time_downsampling", 1))


def _encoder_config(encoder: nn.Module) -> dict | None:
    return dict(encoder.config) if isinstance(getattr(encoder, "config", None), dict) else None


def load_model(path, map_location="cpu", which: str = "model"):
    """Rebuild a fine-tuned model from ``model.pt`` (or a run folder holding it).

    which  "model": the selected weights (the best epoch's teacher);
           "student": that epoch's student.
    Returns (model in eval mode, info dict with classes, preset, stage, ...)."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    ck = torch.load(path, map_location=map_location, weights_only=False)
    p = get_preset(ck["preset"])
    classes = list(ck["classes"])
    if ck["kind"] == "crnn":
        from .crnn import CRNN

        model = CRNN.from_preset(p, len(classes))
    else:
        from .models import MATSEDLite
        from .passt_lite import PaSSTLite, load_pretrained_encoder

        cfg = ck.get("encoder_config")
        if cfg is not None:
            encoder = PaSSTLite(**cfg)
            encoder.feature_block = ck.get("encoder_feature_block", p.encoder_feature_block)
        else:
            encoder = load_pretrained_encoder(p)
        model = MATSEDLite.from_preset(p, len(classes), encoder=encoder, pos=ck.get("pos", "relative"))
        if ck.get("frames_per_token"):
            model.encoder.frames_per_token = int(ck["frames_per_token"])
    model.load_state_dict(ck[which])
    info = {k: v for k, v in ck.items() if k not in ("model", "student")}
    return model.eval(), info


def _save_model(out_dir: Path, kind: str, model: nn.Module, best: dict, classes, p: Preset,
                stage, pos: str | None, extra: dict) -> Path:
    ck = {"kind": kind, "stage": stage, "preset": p.name, "classes": list(classes), "pos": pos,
          "model": best["teacher"], "student": best["model"], "selected": "teacher",
          "best_epoch": best["epoch"], "metrics": best["metrics"], **extra}
    enc = getattr(model, "encoder", None)
    if enc is not None:
        ck["encoder_config"] = _encoder_config(enc)
        ck["encoder_feature_block"] = getattr(enc, "feature_block", None)
        ck["frames_per_token"] = getattr(enc, "frames_per_token", None)
    ck["frame_hop"] = output_hop(model, p)
    path = out_dir / MODEL_FILE
    tmp = path.with_name(".model.pt.part")
    torch.save(ck, tmp)
    tmp.replace(path)
    return path


def _finish(out_dir: Path, res: dict, recipe_info: dict, model, classes, p, kind, stage, pos,
            t_start: float) -> dict:
    """Write model.pt (the best epoch's teacher) and recipe.json; return the summary.

    Frozen weights are bitwise the originals in the teacher too: the engine's
    EMA copies parameters that do not train instead of averaging them."""
    best = load_checkpoint(out_dir / "best.pt")
    model_path = _save_model(out_dir, kind, model, best, classes, p, stage, pos, {})
    history = res["history"]
    curves = _strip_run_keys(history)
    b = next(h for h in history if h["epoch"] == res["best_epoch"])
    summary = {**recipe_info,
               "classes": list(classes), "epochs_done": res["epochs_done"],
               "best_epoch": res["best_epoch"], "selected_by": MONITOR,
               "best": {k.split("/", 1)[1]: b[k] for k in b if k.startswith("val/")},
               "final": {k.split("/", 1)[1]: history[-1][k] for k in history[-1]
                         if k.startswith("val/")},
               "curves": curves, "train_seconds": res["seconds"],
               "seconds": time.perf_counter() - t_start, "device": res["device"],
               "model_path": str(model_path), "log": res["log"]}
    (out_dir / RECIPE_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def _fit_kwargs(out_dir, epochs, resume, progress, seed, stop_after_epoch, device, desc):
    return dict(epochs=epochs, out_dir=out_dir, ema_max_alpha=0.999, grad_clip=20.0,
                monitor=MONITOR, mode="max", resume=resume, progress=progress, seed=seed,
                stop_after_epoch=stop_after_epoch, device=device, desc=desc)


# ---------------------------------------------------------------------------
# entry points

def finetune(data_root, preset: "Preset | str", out_dir, stage: int, init=None, seed: int = 0,
             epochs: int | None = None, resume: bool = False, progress: bool = True,
             pos: str = "relative", *, classes: Sequence[str] | None = None,
             encoder: nn.Module | None = None, lr_scale: float | None = None,
             teacher_features: Callable | None = None, device=None,
             stop_after_epoch: int | None = None, fusion_lambda: float | None = None,
             cache=None) -> dict:
    """Mean-teacher fine-tuning of MAT-SED-lite, stage 1 or 2 (see the module docstring).

    stage 1  init: a ``context.pt`` from masked-reconstruction pre-training, or
             None (a randomly initialised context network). Encoder (default: the
             shipped PaSST-lite) and context are frozen; the heads train on
             cached encoder frames.
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

    Writes into out_dir: model.pt (the best epoch's teacher, with its student,
    the class list and the preset name), recipe.json (settings, per-epoch
    student and teacher PSDS1/PSDS2, best epoch, time), and the engine's
    log.jsonl / last.pt / best.pt. Returns the recipe.json dict.
    """
    from .models import MATSEDLite

    t_start = time.perf_counter()
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    p = get_preset(preset)
    recipe = RECIPES[f"stage{stage}"]
    epochs = int((p.stage1_epochs if stage == 1 else p.stage2_epochs) if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    scale = default_lr_scale(p, stage) if lr_scale is None else float(lr_scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from .runtime import pick_device, seed_everything

    dev = pick_device(str(device)) if device is not None else pick_device()
    seed_everything(seed)

    if stage == 2:
        if init is None:
            raise ValueError("stage 2 starts from stage 1: pass init=<stage 1's out_dir>")
        model, info = load_model(init)
        if classes is not None and list(classes) != info["classes"]:
            raise ValueError(f"classes {list(classes)} differ from stage 1's {info['classes']}")
        classes, pos = info["classes"], info.get("pos", pos)
        model.train()
    layout, classes, ds = _datasets(data_root, p, classes)
    kinds = _kinds(layout)
    if stage == 2 and teacher_features is None:
        lam = 0.5 if fusion_lambda is None else float(fusion_lambda)
        if lam:
            from .global_local import GlobalLocalFusion

            teacher_features = GlobalLocalFusion.for_preset(p, lam, when="train")

    if stage == 1:
        from .frame_cache import encode_splits
        from .passt_lite import load_pretrained_encoder

        encoder = encoder if encoder is not None else load_pretrained_encoder(p)
        model = MATSEDLite.from_preset(p, len(classes), encoder=encoder, pos=pos)
        if init is not None:
            from .reconstruction_pretraining import load_context

            model.context.load_state_dict(load_context(init, p, pos).state_dict())
        for q in list(model.encoder.parameters()) + list(model.context.parameters()):
            q.requires_grad_(False)
        if cache is None:
            cache = encode_splits({n: ds[n] for n in sum(kinds.values(), []) + ["validation"]},
                                  model.encoder, p, device=dev, progress=progress)
        stores = {k: _pool([FrameStore(cache.split(n)) for n in names])
                  for k, names in kinds.items()}
        val_store = FrameStore(cache.split("validation"))
        groups = [{"params": list(model.sed_head.parameters()) + list(model.at_head.parameters()),
                   "lr": recipe.lr_heads * scale, "name": "heads"}]
    else:
        stores = {k: _pool([MelStore(ds[n], p) for n in names]) for k, names in kinds.items()}
        val_store = MelStore(ds["validation"], p)
        groups = encoder_param_groups(model.encoder, recipe.lr_encoder * scale,
                                      recipe.lr_encoder_top * scale)
        groups += [{"params": list(model.context.parameters()), "lr": recipe.lr_context * scale,
                    "name": "context"},
                   {"params": list(model.sed_head.parameters()) + list(model.at_head.parameters()),
                    "lr": recipe.lr_heads * scale, "name": "heads"}]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)
    data = MixedBatches(stores, _batch_sizes(p), seed)
    steps = len(data)
    scheduler = None
    if recipe.warmup_epochs:
        # Linear warm-up from 0.1x over warmup_epochs, then constant (final_factor 1).
        scheduler = warmup_cosine(optimizer, steps * epochs, int(round(recipe.warmup_epochs * steps)),
                                  start_factor=0.1, final_factor=1.0)
    gt, durations = _validation_truth(layout["validation"], classes)
    evaluate = make_evaluate(val_store, classes, output_hop(model, p), gt, durations,
                             features=teacher_features)
    teacher = copy.deepcopy(model)  # stage 2: both start from stage 1's teacher
    res = fit(model, make_train_step(recipe, p, seed, teacher_features), data,
              optimizer=optimizer, scheduler=scheduler, evaluate=evaluate, teacher=teacher,
              **_fit_kwargs(out_dir, epochs, resume, progress, seed, stop_after_epoch, dev,
                            f"stage {stage}"))
    info = {"stage": stage, "kind": "matsed", "preset": p.name, "seed": seed, "pos": pos,
            "epochs": epochs, "init": None if init is None else str(init),
            "data_root": str(data_root), "lr_scale": scale,
            "lr": {g["name"]: g["lr"] for g in groups}, "steps_per_epoch": steps,
            "batch": _batch_sizes(p), "recipe": asdict(recipe),
            "teacher_features": None if teacher_features is None else getattr(
                teacher_features, "__name__", "custom")}
    return _finish(out_dir, res, info, model, classes, p, "matsed", stage, pos, t_start)


def train_crnn(data_root, preset: "Preset | str", out_dir, seed: int = 0,
               epochs: int | None = None, resume: bool = False, progress: bool = True, *,
               classes: Sequence[str] | None = None, lr: float = 1e-3, device=None,
               stop_after_epoch: int | None = None) -> dict:
    """The DCASE baseline CRNN trained by the same mean-teacher code on the same
    mixed batches (recipe ``crnn``: no AT head, DCASE consistency terms, the
    exp ramp warming up both w_cons and the learning rate). Epochs default to
    ``preset.crnn_epochs``. Writes model.pt, recipe.json and the engine's files
    like ``finetune``."""
    from .crnn import CRNN
    from .runtime import pick_device, seed_everything

    t_start = time.perf_counter()
    p = get_preset(preset)
    recipe = RECIPES["crnn"]
    epochs = int(p.crnn_epochs if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(str(device)) if device is not None else pick_device()
    seed_everything(seed)
    layout, classes, ds = _datasets(data_root, p, classes)
    kinds = _kinds(layout)
    model = CRNN.from_preset(p, len(classes))
    stores = {k: _pool([MelStore(ds[n], p) for n in names]) for k, names in kinds.items()}
    val_store = MelStore(ds["validation"], p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=recipe.weight_decay)
    data = MixedBatches(stores, _batch_sizes(p), seed)
    steps = len(data)
    ramp_steps = max(recipe.ramp_fraction * epochs * steps, 1e-9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: ramp_value(recipe.ramp, s / ramp_steps))
    gt, durations = _validation_truth(layout["validation"], classes)
    hop = output_hop(model, p)
    evaluate = make_evaluate(val_store, classes, hop, gt, durations)
    res = fit(model, make_train_step(recipe, p, seed), data, optimizer=optimizer,
              scheduler=scheduler, evaluate=evaluate,
              **_fit_kwargs(out_dir, epochs, resume, progress, seed, stop_after_epoch, dev, "crnn"))
    info = {"stage": "crnn", "kind": "crnn", "preset": p.name, "seed": seed, "epochs": epochs,
            "data_root": str(data_root), "lr": {"all": lr}, "steps_per_epoch": steps,
            "batch": _batch_sizes(p), "recipe": asdict(recipe), "frame_hop": hop}
    return _finish(out_dir, res, info, model, classes, p, "crnn", "crnn", None, t_start)

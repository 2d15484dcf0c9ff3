"""Stage 0 of MAT-SED: pre-train the context network by masked reconstruction (chapter 04).

Labelled sound-event data is scarce, unlabeled audio is not (DESED: 14,412
unlabeled clips against 3,463 strongly labelled real ones). Before any label is
used, MAT-SED teaches its context network what sound scenes look like over time:
hide 75% of the encoder's frames, in blocks of one encoder token, and rebuild
them from the rest. With M the masked frames of a clip, x_t the encoder's
feature of frame t and x~ the sequence after masking and BERT-style replacement,

    L = 1/|M| * sum_{t in M} || head(ctx(x~))_t - x_t ||^2          (masked MSE)

The encoder is frozen, so its frames are computed once per clip
(``frame_cache``); the target x is detached (no gradient ever flows into it).
Only the context network's weights are kept: the reconstruction head and the
mask token are thrown away, fine-tuning starts from ``context.pt``.

The schedule is the paper's 15-epoch one, mapped onto however many epochs the
preset allows (``paper_schedule``). Every stage of the course runs on
``engine.fit``; this module supplies the model, the step and the validation.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from ..data.datasets import make_datasets
from ..data.layout import infer_classes, layout_for
from ..models.attention import POSITIONS
from ..models.frame_cache import FrameCache, encode_splits
from ..models.matsed import ContextNetwork, ReconstructionHead
from ..models.encoders import build_encoder, default_encoder_kind, encoder_kind
from ..presets import (RECONSTRUCTION_SHIFT_STD, RECONSTRUCTION_WEIGHT_DECAY, Preset,
                       get_preset)
from ..files import CheckpointError, load_torch_file, save_torch, write_json
from .engine import EpochSampler, check_settings, fit, load_checkpoint
from .masking import MaskedFrames, bert_replace, block_mask, interpolate_masked, masked_mse

TRAIN_SPLITS = ("synth_train", "weak", "unlabeled")  # the paper's: strong + weak + unlabeled
VALID_SPLIT = "validation"
CONTEXT_FILE = "context.pt"
RECIPE_FILE = "recipe.json"
RUN_DIR = "run"
# The paper's schedule in its own epochs: warm-up over epoch 1, constant to 10, decay to 15.
PAPER_EPOCHS, PAPER_WARMUP, PAPER_CONSTANT_UNTIL = 15, 1.0, 10.0
VAL_MASK_SEED = 1234  # the fixed validation masks: same masks every epoch and every run


def default_lr(preset: Preset) -> float:
    """The peak LR: the preset's ``pretrain_lr`` (the paper's 1e-4 at width 768, 1e-3
    for the lite sizes; ``presets`` says why)."""
    return get_preset(preset).pretrain_lr


def paper_lr_factor(progress: float, start_factor: float = 0.1) -> float:
    """LR multiplier at ``progress`` in [0, 1] of the run, the paper's shape.

    Progress is mapped to the paper's epochs e = 15 * progress:
      e < 1        linear warm-up from 0.1x to 1x;
      1 <= e < 10  1x;
      e >= 10      exp(-(0.5 (e - 10))^2 / 5): the PaSST / mean-teacher "exp
                   rampdown" over the last 5 epochs (ending at 0.29x at e = 15).
    So a 10-epoch run warms up over its first 2/3 epoch and decays over its last 3.3."""
    e = PAPER_EPOCHS * min(max(progress, 0.0), 1.0)
    if e < PAPER_WARMUP:
        return start_factor + (1.0 - start_factor) * e / PAPER_WARMUP
    if e < PAPER_CONSTANT_UNTIL:
        return 1.0
    length = PAPER_EPOCHS - PAPER_CONSTANT_UNTIL
    ep = 0.5 * (e - PAPER_CONSTANT_UNTIL)
    return math.exp(-ep * ep / length)


def paper_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step ``LambdaLR`` following ``paper_lr_factor`` over ``total_steps``."""
    total = max(1, int(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: paper_lr_factor(step / total))


class ReconstructionModel(nn.Module):
    """Context network + masking (with its learned token) + reconstruction head.

    ``forward(frames, generator=None)`` -> (prediction (B, T, D), mask (B, T)).
    The context network is the only part kept after pre-training."""

    def __init__(self, preset: "Preset | str", pos: str = "relative"):
        super().__init__()
        p = get_preset(preset)
        self.context = ContextNetwork(p.context_dim, p.context_depth, p.context_heads, pos,
                                      p.context_mlp_ratio)
        self.masker = MaskedFrames(p.context_dim, p.mask_ratio, p.mask_block)
        self.head = ReconstructionHead(p.context_dim)

    def reconstruct(self, replaced: torch.Tensor) -> torch.Tensor:
        """Prediction of every frame from an already masked sequence."""
        return self.head(self.context(replaced))

    def forward(self, frames: torch.Tensor, generator: torch.Generator | None = None):
        replaced, mask, _ = self.masker(frames, generator)
        return self.reconstruct(replaced), mask


def frame_shift(frames: torch.Tensor, frame_mask: torch.Tensor, std: float = RECONSTRUCTION_SHIFT_STD,
                generator: torch.Generator | None = None):
    """Roll each clip's frames (B, T, D) and its valid-frame mask (B, T) in time by
    its own round(N(0, std * T)) frames (circularly: nothing is lost)."""
    B, T = frame_mask.shape
    shifts = torch.round(torch.randn(B, generator=generator) * std * T).long().to(frames.device)
    idx = (torch.arange(T, device=frames.device)[None, :] - shifts[:, None]) % T   # (B, T)
    rolled = frames.gather(1, idx[..., None].expand(-1, -1, frames.shape[-1]))
    return rolled, frame_mask.gather(1, idx)


def reconstruction_loss(model: ReconstructionModel, frames: torch.Tensor,
                        frame_mask: torch.Tensor | None = None,
                        generator: torch.Generator | None = None):
    """Masked MSE of one batch: (loss, mask used) (chapter 04, where it is built by hand).

    The target is ``frames.detach()``: the features are data, not something to
    move towards the prediction. Only frames that are masked AND hold real audio
    (``frame_mask``) count; errors on unmasked frames do not enter the loss."""
    target = frames.detach()
    pred, mask = model(frames, generator)
    if frame_mask is not None:
        mask = mask & frame_mask.to(mask.device)
    return masked_mse(pred.float(), target.float(), mask), mask


class SubsetEpochSampler(EpochSampler):
    """``EpochSampler`` that draws only ``n_per_epoch`` of the n clips each epoch
    (a different, seeded, subset every epoch): a budget knob for slow machines."""

    def __init__(self, n: int, seed: int = 0, n_per_epoch: int | None = None):
        super().__init__(n, seed)
        self.n_per_epoch = n if n_per_epoch is None else max(1, min(int(n_per_epoch), n))

    def __iter__(self):
        return iter(list(super().__iter__())[:self.n_per_epoch])

    def __len__(self) -> int:
        return self.n_per_epoch


def validation_masks(n: int, batch_size: int, seed: int = VAL_MASK_SEED):
    """Yield (start, stop, generator) per validation batch. The generator is seeded
    from (seed, batch number) and used first for the block mask, then for the
    BERT replacement: every epoch and every model sees the same masks."""
    for b, start in enumerate(range(0, n, batch_size)):
        yield start, min(start + batch_size, n), torch.Generator().manual_seed(seed + b)


@torch.no_grad()
def reconstruct_fixed(model: ReconstructionModel | None, cache: FrameCache,
                      preset: "Preset | str", start: int, stop: int, generator: torch.Generator,
                      device=None) -> dict:
    """Clips start..stop of ``cache`` under the fixed validation mask drawn from
    ``generator``: {"target", "valid", "mask", "interpolated", and, with a model,
    "prediction"} (float32 on the CPU). With ``model=None`` only the mask is
    drawn (the same one: the mask is the generator's first draw)."""
    p = get_preset(preset)
    x = cache.frames[start:stop].float()
    mask = block_mask(x.shape[0], x.shape[1], p.mask_ratio, p.mask_block, generator)
    out = {"target": x, "valid": cache.frame_mask[start:stop], "mask": mask,
           "interpolated": interpolate_masked(x, mask)}
    if model is not None:
        device = device or next(model.parameters()).device
        replaced, _ = bert_replace(x, mask, model.masker.mask_token.detach().cpu(),
                                   model.masker.p_token, model.masker.p_random, generator)
        out["prediction"] = model.reconstruct(replaced.to(device)).float().cpu()
    return out


def _fixed_mask_mse(model, cache, preset, batch_size, seed, key):
    sse, count = 0.0, 0
    for start, stop, g in validation_masks(len(cache), batch_size, seed):
        r = reconstruct_fixed(model, cache, preset, start, stop, g)
        m = r["mask"] & r["valid"]
        sse += (r[key] - r["target"])[m].pow(2).sum().item()
        count += int(m.sum()) * r["target"].shape[-1]
    return sse / max(count, 1)


def validation_mse(model: ReconstructionModel, cache: FrameCache, preset: "Preset | str",
                   batch_size: int = 16, seed: int = VAL_MASK_SEED) -> float:
    """Masked MSE on ``cache`` with fixed masks (see ``validation_masks``): the
    mean over all masked, valid frames and feature dimensions."""
    was_training = model.training
    model.eval()
    try:
        return _fixed_mask_mse(model, cache, preset, batch_size, seed, "prediction")
    finally:
        model.train(was_training)


def interpolation_baseline_mse(cache: FrameCache, preset: "Preset | str", batch_size: int = 16,
                               seed: int = VAL_MASK_SEED) -> float:
    """Masked MSE of linear interpolation on the SAME masks as ``validation_mse``:
    what the context network must beat to have learned anything about context."""
    return _fixed_mask_mse(None, cache, preset, batch_size, seed, "interpolated")


def load_context(path, preset: "Preset | str", pos: str = "relative",
                 map_location="cpu") -> ContextNetwork:
    """A ContextNetwork with the preset's sizes and the weights of ``context.pt``."""
    p = get_preset(preset)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no context weights at {path}; run `matsed-lite pretrain` "
                                f"(or pretrain_context) first")
    net = ContextNetwork(p.context_dim, p.context_depth, p.context_heads, pos, p.context_mlp_ratio)
    state = load_torch_file(path, map_location=map_location, what="context.pt")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a context network's weights (a context.pt)")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path} does not fit a context network of preset {p.name!r} with "
                         f"pos={pos!r} (was it pre-trained with another preset or --pos?): {e}") from None
    return net.eval()


def _check_args(preset: Preset, pos: str, epochs: int, data_root: Path):
    if pos not in POSITIONS:
        raise ValueError(f"pos must be one of {', '.join(POSITIONS)}; got {pos!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if not data_root.is_dir():
        raise FileNotFoundError(f"data folder {data_root} does not exist; generate DESED-lite "
                                f"with `matsed-lite synth --out {data_root} --preset {preset.name}`")


def pretrain_context(data_root, preset: "Preset | str", out_dir, seed: int = 0,
                     pos: str = "relative", epochs: int | None = None, resume: bool = False,
                     progress: bool = True, encoder: "nn.Module | str | None" = None, *,
                     passt_checkpoint=None,
                     lr: float | None = None, clips_per_epoch: int | None = None,
                     batch_size: int | None = None, cache: FrameCache | None = None,
                     device=None, stop_after_epoch: int | None = None) -> dict:
    """Masked-reconstruction pre-training of the context network (encoder frozen).

    data_root        DESED-lite (or real DESED) folder: synth_train + weak + unlabeled
                     train, validation picks the best epoch
    preset           sizes, mask ratio/block, ``pretrain_epochs`` (default epochs)
    pos              the context network's positions: relative | absolute | none
    encoder          frozen encoder module, or "lite" / "passt" (``models.encoders``;
                     default: the preset's: the shipped PaSST-lite, or for ``paper``
                     the real PaSST-S, its weights from ``passt_checkpoint``, torch
                     hub's cache or a download)
    lr               peak LR (default ``default_lr``)
    clips_per_epoch  train on a fresh seeded subset of this many clips per epoch
                     (default: all); a budget knob for CPUs
    batch_size       default: batch_strong + batch_weak + batch_unlabeled (the
                     paper's 4 + 4 + 16 = 24 per step), drawn from the union of
                     the training splits (labels are unused here, so the paper's
                     fixed shares per batch make no difference to the loss)
    cache            a FrameCache holding the train and validation splits already
                     (skips encoding; e.g. to run several variants on the same data)
    resume           continue the run in ``out_dir/run`` (same settings required)

    Writes ``out_dir/context.pt`` (the best epoch's context-network state dict),
    ``out_dir/recipe.json`` and the engine's log and checkpoints in ``out_dir/run``.
    Returns the recipe dict (plus ``history`` with the per-epoch log lines).
    """
    t_start = time.perf_counter()
    p = get_preset(preset)
    epochs = int(p.pretrain_epochs if epochs is None else epochs)
    out_dir, data_root = Path(out_dir), Path(data_root)
    _check_args(p, pos, epochs, data_root)
    lr = default_lr(p) if lr is None else float(lr)
    batch_size = int(batch_size or (p.batch_strong + p.batch_weak + p.batch_unlabeled))
    run_dir = out_dir / RUN_DIR
    config = {"stage": "masked_reconstruction_pretraining", "preset": p.name, "seed": seed,
              "pos": pos, "epochs": epochs, "lr": lr, "weight_decay": RECONSTRUCTION_WEIGHT_DECAY,
              "batch_size": batch_size, "clips_per_epoch": clips_per_epoch,
              "mask_ratio": p.mask_ratio, "mask_block": p.mask_block, "shift_std": RECONSTRUCTION_SHIFT_STD,
              "train_splits": list(TRAIN_SPLITS), "valid_split": VALID_SPLIT,
              "data_root": str(data_root)}
    kind = (encoder_kind(encoder) if isinstance(encoder, nn.Module)
            else encoder or default_encoder_kind(p))
    if kind != "lite" and cache is None:  # lite runs keep the config they always had
        config["encoder"] = kind
    resuming = check_settings(run_dir, config, resume, file="config.json")
    if resume and not resuming and progress:
        print(f"resume: no checkpoint in {run_dir}, starting from scratch")

    # -- frozen encoder -> cached frames ------------------------------------------
    if cache is None:
        layout = layout_for(data_root)
        missing = [s for s in TRAIN_SPLITS + (VALID_SPLIT,) if s not in layout]
        if missing:
            raise ValueError(f"{data_root}: splits {missing} not found")
        if not isinstance(encoder, nn.Module):
            encoder = build_encoder(p, encoder, passt_checkpoint)
        if getattr(encoder, "dim", p.context_dim) != p.context_dim:
            raise ValueError(f"preset {p.name!r}: context_dim {p.context_dim} must equal the "
                             f"encoder's width {encoder.dim}")
        # Labels are unused here, but reading a split checks them: take the folder's own
        # classes (any DESED-format data set, not only the ten DESED ones).
        datasets = make_datasets(layout, p, classes=infer_classes(layout),
                                 splits=TRAIN_SPLITS + (VALID_SPLIT,))
        cache = encode_splits(datasets, encoder, p, device=device, progress=progress)
    train, valid = cache.split(TRAIN_SPLITS), cache.split(VALID_SPLIT)
    if progress:
        print(f"frame cache: {cache}")

    # -- model, optimiser, schedule -----------------------------------------------
    torch.manual_seed(seed)
    model = ReconstructionModel(p, pos)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=RECONSTRUCTION_WEIGHT_DECAY)
    sampler = SubsetEpochSampler(len(train), seed, clips_per_epoch)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, sampler=sampler)
    scheduler = paper_schedule(optimizer, epochs * len(loader))
    baseline = interpolation_baseline_mse(valid, p)

    def train_step(model, batch, state):
        frames, valid_mask = frame_shift(batch["frames"], batch["frame_mask"])
        loss, mask = reconstruction_loss(model, frames, valid_mask)
        return loss, {"masked_mse": loss.detach(), "masked_fraction": mask.float().mean()}

    def evaluate(model, state):
        return {"val/masked_mse": validation_mse(model, valid, p)}

    res = fit(model, train_step, loader, optimizer=optimizer, scheduler=scheduler,
              epochs=epochs, out_dir=run_dir, evaluate=evaluate, seed=seed,
              monitor="val/masked_mse", mode="min", resume=resume, device=device,
              progress=progress, stop_after_epoch=stop_after_epoch, desc=f"pretrain[{pos}]")

    # -- keep the best epoch's context network --------------------------------------
    best = load_checkpoint(run_dir / "best.pt")["model"]
    context_state = {k[len("context."):]: v.cpu() for k, v in best.items() if k.startswith("context.")}
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = res["state"].dist  # under torchrun rank 0 writes, the others wait for it
    if ctx.is_main:
        save_torch(context_state, out_dir / CONTEXT_FILE)
    hist = res["history"]
    val = [h["val/masked_mse"] for h in hist]
    recipe = {
        **config,
        "preset_values": p.to_dict(),
        "schedule": "AdamW; per step, paper epochs e = 15 * progress: warm-up 0.1x->1x over "
                    "e<1, 1x to e=10, then exp(-(0.5 (e-10))^2 / 5)",
        "epochs_done": res["epochs_done"],
        "steps": res["step"],
        "best_epoch": res["best_epoch"],
        "best_val_masked_mse": res["best_metric"],
        "val_masked_mse": val,
        "train_masked_mse": [h["train/masked_mse"] for h in hist],
        "interpolation_val_masked_mse": baseline,
        "val_feature_variance": float(valid.frames.float().var(dim=(0, 1)).mean()),
        "beats_interpolation": bool(res["best_metric"] is not None and res["best_metric"] < baseline),
        "n_train_clips": len(train),
        "n_valid_clips": len(valid),
        "train_seconds": res["seconds"],
        "seconds": time.perf_counter() - t_start,
        "device": res["device"],
        "context_file": str(out_dir / CONTEXT_FILE),
    }
    if ctx.is_main:
        write_json(out_dir / RECIPE_FILE, recipe)
    ctx.barrier()
    if progress and ctx.is_main:
        verdict = "beats" if recipe["beats_interpolation"] else "does NOT beat"
        print(f"best epoch {recipe['best_epoch']}: val masked MSE {recipe['best_val_masked_mse']:.4f} "
              f"{verdict} interpolation ({baseline:.4f}); saved {out_dir / CONTEXT_FILE}")
    return {**recipe, "history": hist}

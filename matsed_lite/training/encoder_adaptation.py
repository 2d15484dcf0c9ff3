"""Adapting the pre-trained encoder to a folder's own sounds, before the SED stages (chapter 01).

PaSST's AudioSet training has heard almost every sound a DESED-format folder holds;
PaSST-lite's procedural corpus has not. On a folder of real recordings its frames
separate the folder's classes less well than a CRNN learns to from their log-mels
(README, "the race"), and MAT-SED keeps the encoder frozen through masked-reconstruction
pre-training and stage 1, so stage 2 alone has to teach it the new sounds.

This stage does that first, and cheaply: it trains the encoder on the folder's own
labelled training clips the way the shipped encoder was strongly pre-trained, a tagging
loss on every labelled clip plus a per-token frame loss on the strongly labelled ones
(``encoder_pretraining.make_strong_tagging_step``'s losses), with a fresh head for the
folder's classes. No context network, no teacher, no fusion windows: a step costs a
fraction of a stage-2 step. The best epoch by the frame head's mean frame AP on the
validation split is written as ``encoder.pt`` + ``recipe.json``, the pair
``load_pretrained_encoder(weights_dir=...)`` reads, so every later stage takes it as
``--encoder-weights``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.datasets import make_datasets
from ..data.features import LogMel
from ..data.layout import infer_classes, layout_for
from ..evaluation.tagging import average_precision_per_class
from ..files import save_torch, write_json
from ..models.passt_lite import PaSSTLite
from ..presets import ENCODER_WEIGHT_DECAY, Preset, get_preset
from ..runtime import seed_everything
from .encoder_pretraining import StrongTagger, roll_and_mix, token_targets, warm_start
from .engine import check_settings, fit, load_checkpoint, warmup_cosine


class LabelledMels(torch.utils.data.Dataset):
    """Log-mels (float16), clip labels, frame labels and whether those are real, of a
    folder's labelled training splits, computed once and kept in memory."""

    def __init__(self, datasets, preset: Preset, batch_size: int = 32):
        logmel = LogMel(preset)
        self.items: list[dict] = []
        for ds in datasets:
            for i in range(0, len(ds), batch_size):
                its = [ds[j] for j in range(i, min(len(ds), i + batch_size))]
                with torch.no_grad():
                    mels = logmel(torch.stack([it["waveform"] for it in its])).to(torch.float16)
                for it, mel in zip(its, mels):
                    self.items.append({"mel": mel, "weak": it["weak"], "strong": it["strong"],
                                       "has_strong": torch.tensor(bool(it["has_strong"]))})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def make_adaptation_step(frame_loss: float):
    """BCE(tagging) on every labelled clip + ``frame_loss`` x BCE(frame head on the
    feature block's tokens) on the clips with frame labels."""

    def step(model: StrongTagger, batch, state):
        mel, weak, strong, known = roll_and_mix(batch["mel"].float(), batch["weak"],
                                                batch["strong"], batch["has_strong"].bool())
        enc = model.encoder
        logits, tokens, keep_t = enc.tag_and_tokens(mel)
        tag = F.binary_cross_entropy_with_logits(logits.float(), weak)
        frames = enc.frame_norm(tokens).mean(dim=1)                       # (B, T', D)
        target = token_targets(strong, enc.patch, enc.stride)[:, keep_t]
        per_clip = F.binary_cross_entropy_with_logits(
            model.frame_head(frames).float(), target, reduction="none").mean(dim=(1, 2))
        w = known.float()
        frame = (per_clip * w).sum() / w.sum().clamp(min=1.0)
        return tag + frame_loss * frame, {"tag_loss": tag.detach(), "frame_loss": frame.detach()}

    return step


@torch.no_grad()
def frame_ap(model: StrongTagger, mels: torch.Tensor, strong: torch.Tensor, classes,
             batch_size: int = 32, device=None) -> dict:
    """Per-class average precision of the frame head on time tokens (a token is positive
    when the class sounds in at least half of its patch) and their mean."""
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    enc = model.encoder
    scores, targets = [], []
    for i in range(0, len(mels), batch_size):
        mel = mels[i:i + batch_size].to(device).float()
        _, tokens, _ = enc.tag_and_tokens(mel)
        frames = enc.frame_norm(tokens).mean(dim=1)
        scores.append(torch.sigmoid(model.frame_head(frames).float()).flatten(0, 1).cpu())
        targets.append((token_targets(strong[i:i + batch_size], enc.patch, enc.stride)
                        >= 0.5).float().flatten(0, 1))
    model.train(was)
    ap = average_precision_per_class(torch.cat(scores), torch.cat(targets))
    valid = ap[~np.isnan(ap)]
    return {"mean": float(valid.mean()) if len(valid) else float("nan"),
            "per_class": {c: (None if np.isnan(a) else float(a)) for c, a in zip(classes, ap)}}


def adaptation_epochs(preset: "Preset | str", n_clips: int) -> int:
    """Epochs of adaptation for a folder of ``n_clips`` labelled training clips: the
    preset's ``adapt_epochs``, or more, so that they take at least ``adapt_min_steps``
    steps of ``encoder_batch`` clips (a small folder keeps the budget a large one gets)."""
    p = get_preset(preset)
    if n_clips < 1:
        raise ValueError(f"adaptation_epochs: the folder has no labelled training clips ({n_clips})")
    steps_per_epoch = -(-int(n_clips) // p.encoder_batch)
    return max(int(p.adapt_epochs), -(-int(p.adapt_min_steps) // steps_per_epoch))


def adapt_encoder(data_root, preset: "Preset | str", out_dir, encoder: PaSSTLite,
                  classes=None, seed: int = 0, epochs: int | None = None,
                  frame_loss: float = 1.0, lr: float | None = None, resume: bool = False,
                  progress: bool = True) -> dict:
    """Train ``encoder`` (a PaSST-lite, e.g. the shipped one) on the folder's labelled
    training splits; write the best epoch as ``out_dir/encoder.pt`` + ``recipe.json``.
    ``lr`` defaults to the preset's ``adapt_lr``; ``epochs`` to ``adaptation_epochs``
    (the preset's ``adapt_epochs``, more on a small folder); a given ``epochs`` is exact."""
    p = get_preset(preset)
    if epochs is not None and int(epochs) < 1:
        raise ValueError(f"adapt_encoder: epochs must be >= 1, got {epochs}")
    if epochs is None and p.adapt_epochs < 1:
        raise ValueError(f"adapt_encoder: the preset {p.name} adapts for 0 epochs; pass epochs")
    lr = float(p.adapt_lr if lr is None else lr)
    out_dir, data_root = Path(out_dir), Path(data_root)
    layout = layout_for(data_root)
    if "validation" not in layout:
        raise ValueError(f"{data_root}: no validation split (needed to pick the best epoch)")
    classes = list(classes) if classes is not None else infer_classes(layout)
    names = [n for n, s in layout.items() if n != "validation" and s.kind in ("strong", "weak")]
    t0 = time.perf_counter()
    ds = make_datasets(layout, p, classes, splits=names + ["validation"])
    train = LabelledMels([ds[n] for n in names], p)
    val = LabelledMels([ds["validation"]], p)
    val_mels = torch.stack([it["mel"] for it in val.items])
    val_strong = torch.stack([it["strong"] for it in val.items])
    t_data = time.perf_counter() - t0
    epochs = adaptation_epochs(p, len(train)) if epochs is None else int(epochs)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir / "run", {"stage": "encoder_adaptation", "preset": p.name,
                                     "seed": seed, "epochs": epochs, "lr": lr,
                                     "frame_loss": float(frame_loss), "classes": classes,
                                     "data_root": str(data_root)}, resume)

    seed_everything(seed)
    model = PaSSTLite(**{**encoder.config, "n_classes": len(classes)})
    model.feature_block, model.frames_per_token = encoder.feature_block, encoder.frames_per_token
    warm_start(model, encoder, classes)
    tagger = StrongTagger(model, len(classes))
    decay = [q for n, q in tagger.named_parameters()
             if q.ndim >= 2 and "pos" not in n and "token" not in n]
    no_decay = [q for n, q in tagger.named_parameters()
                if not (q.ndim >= 2 and "pos" not in n and "token" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": ENCODER_WEIGHT_DECAY},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps_per_epoch = -(-len(train) // p.encoder_batch)
    scheduler = warmup_cosine(optimizer, epochs * steps_per_epoch, steps_per_epoch,
                              start_factor=0.01, final_factor=0.01)

    def evaluate(m, state):
        return {"val/frame_mAP": frame_ap(m, val_mels, val_strong, classes, device=state.device)["mean"]}

    result = fit(tagger, make_adaptation_step(frame_loss), train, optimizer=optimizer,
                 epochs=epochs, out_dir=out_dir / "run", evaluate=evaluate, scheduler=scheduler,
                 batch_size=p.encoder_batch, seed=seed, grad_clip=5.0, monitor="val/frame_mAP",
                 mode="max", resume=resume, progress=progress, desc="adapt-encoder")

    best = load_checkpoint(result["best_checkpoint"])["model"]
    weights = {k[len("encoder."):]: v.half() if v.is_floating_point() else v
               for k, v in best.items() if k.startswith("encoder.")}
    tagger.load_state_dict({k: v.float() for k, v in best.items()})
    tagger.to("cpu")
    scored = frame_ap(tagger, val_mels, val_strong, classes, device=torch.device("cpu"))
    ctx = result["state"].dist
    recipe = {
        "stage": "encoder_adaptation",
        "command": f"matsed-lite adapt-encoder --data {data_root} --preset {p.name} "
                   f"--out {out_dir} --seed {seed} --epochs {epochs}",
        "preset": p.name, "seed": seed, "epochs": epochs, "lr": lr, "frame_loss": float(frame_loss),
        "best_epoch": result["best_epoch"], "epochs_done": result["epochs_done"],
        "classes": classes, "train_splits": names, "n_train_clips": len(train),
        "val_frame_mAP": scored["mean"], "val_frame_AP": scored["per_class"],
        "history": [{k: v for k, v in h.items() if k in ("epoch", "train/loss", "val/frame_mAP", "lr")}
                    for h in result["history"]],
        "data_seconds": round(t_data, 1), "train_seconds": round(result["seconds"], 1),
        "encoder_geometry": list(p.encoder_geometry),
        "model_config": model.config,
    }
    if ctx.is_main:
        save_torch(weights, out_dir / "encoder.pt")
        write_json(out_dir / "recipe.json", recipe)
    ctx.barrier()
    return recipe

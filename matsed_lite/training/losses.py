"""The mean-teacher losses: supervised terms on labelled clips, consistency on all (chapter 05).

Supervised (MAT-SED's weights)::

    L_sup = BCE(frames, strong)            strong clips, valid frames only
          + 0.5 * BCE(pooled clip, weak)    weak clips
          + 2   * BCE(AT head, weak)        weak clips

Consistency (MSE against the teacher, whole batch including unlabeled)::

    L_cons = MSE(frames_s, frames_t) + 0.5 * MSE(pooled_s, AT_t) + 2 * MSE(AT_s, AT_t)

A model without an AT head (the CRNN) uses the DCASE baseline's terms instead:
BCE(frames) + BCE(pooled clip) and MSE(frames) + MSE(pooled clips).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..presets import Recipe


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
    """MAT-SED's supervised terms, each already weighted; keys strong, weak, at (chapter 05).

    strong: BCE on frame logits, strong clips and valid frames only;
    weak:   BCE(linear-softmax pooled clip score, weak label), weak clips only;
    at:     BCE(AT head, weak label), weak clips only (absent without an AT head).
    Strong clips train the frame term alone, as in the official code (and the DCASE
    baseline), which slices the batch: their clip labels are already in their frames.
    ``batch["strong"]`` and ``batch["frame_mask"]`` must be at the model's frame rate."""
    has_strong = batch["has_strong"].bool()
    has_weak = batch["has_weak"].bool() & ~has_strong  # the weak part of the batch
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
    (before w_cons); keys frames, clip, at (chapter 05).

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


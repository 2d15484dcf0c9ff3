"""Block masking: which frames the context network must reconstruct, and what it sees there (chapter 03).

MAT-SED pre-trains its context network by hiding 75% of the frame features
and asking it to rebuild them. Frames are hidden in *blocks* (10 frames, one
encoder time token, in the paper) because neighbouring frames are nearly
identical: a randomly masked frame can be filled in by interpolating its
neighbours, so the task teaches nothing about context; a masked block cannot.

A masked frame is then replaced BERT-style: 80% of the time by a learned mask
token, 10% by a random frame from the batch, 10% left unchanged, so that the
network cannot tell masked frames apart just by looking for the token.
"""
from __future__ import annotations

import math

import torch

# What happened to each frame (the codes returned by ``bert_replace``).
KEPT, TOKEN, RANDOM, UNCHANGED = 0, 1, 2, 3


def n_masked_blocks(T: int, ratio: float = 0.75, block: int = 10) -> tuple[int, int]:
    """(number of blocks, number masked) for a sequence of T frames.

    A partial last block counts as a block; round(ratio * blocks) are masked,
    halves rounded up (30 blocks at 75% mask 23, not Python's banker's 22)."""
    if T < 1:
        raise ValueError(f"T must be positive, got {T}")
    if block < 1:
        raise ValueError(f"block must be at least 1 frame, got {block}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    n_blocks = math.ceil(T / block)
    return n_blocks, int(math.floor(ratio * n_blocks + 0.5))


def block_mask(batch: int, T: int, ratio: float = 0.75, block: int = 10,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool mask (batch, T), True = masked: exactly round(ratio * blocks) whole
    blocks per sequence, drawn independently for each sequence (chapter 03)."""
    n_blocks, n_masked = n_masked_blocks(T, ratio, block)
    # Rank random keys: the n_masked smallest of each row are masked. One call
    # draws every row, so the result depends only on the generator's state.
    keys = torch.rand(batch, n_blocks, generator=generator)
    order = keys.argsort(dim=1)
    blocks = torch.zeros(batch, n_blocks, dtype=torch.bool)
    blocks.scatter_(1, order[:, :n_masked], True)
    return blocks.repeat_interleave(block, dim=1)[:, :T]


def bert_replace(x: torch.Tensor, mask: torch.Tensor, mask_token: torch.Tensor,
                 p_token: float = 0.8, p_random: float = 0.1,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the masked frames of x (B, T, D), BERT-style (chapter 03).

    Each masked frame independently becomes ``mask_token`` (prob. p_token), a
    frame drawn uniformly from anywhere in the batch (p_random), or stays as it
    is (the rest). Returns (new x, codes (B, T) in KEPT/TOKEN/RANDOM/UNCHANGED).
    Gradients flow into ``mask_token``."""
    if x.dim() != 3 or mask.shape != x.shape[:2]:
        raise ValueError(f"x must be (B, T, D) and mask (B, T); got {tuple(x.shape)} "
                         f"and {tuple(mask.shape)}")
    if p_token < 0 or p_random < 0 or p_token + p_random > 1:
        raise ValueError(f"need p_token, p_random >= 0 and p_token + p_random <= 1, "
                         f"got {p_token}, {p_random}")
    B, T, D = x.shape
    mask = mask.to(x.device)
    u = torch.rand(B, T, generator=generator).to(x.device)
    use_token = mask & (u < p_token)
    use_random = mask & (u >= p_token) & (u < p_token + p_random)
    source = torch.randint(0, B * T, (B, T), generator=generator).to(x.device)
    random_frames = x.reshape(B * T, D)[source]
    out = torch.where(use_token[..., None], mask_token.to(x.dtype).expand(B, T, D), x)
    out = torch.where(use_random[..., None], random_frames, out)
    codes = torch.full((B, T), KEPT, dtype=torch.int8, device=x.device)
    codes[mask] = UNCHANGED
    codes[use_token] = TOKEN
    codes[use_random] = RANDOM
    return out, codes


class MaskedFrames(torch.nn.Module):
    """Block masking plus BERT-style replacement, with the learned mask token.

    ``forward(x)`` -> (replaced x, mask (B, T) bool, codes (B, T))."""

    def __init__(self, dim: int, ratio: float = 0.75, block: int = 10,
                 p_token: float = 0.8, p_random: float = 0.1):
        super().__init__()
        self.ratio, self.block, self.p_token, self.p_random = ratio, block, p_token, p_random
        self.mask_token = torch.nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mask = block_mask(x.shape[0], x.shape[1], self.ratio, self.block, generator).to(x.device)
        out, codes = bert_replace(x, mask, self.mask_token, self.p_token, self.p_random, generator)
        return out, mask, codes


def interpolate_masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill masked frames of x (B, T, D) by linear interpolation in time between
    the nearest unmasked frames (holding the nearest one at the edges).

    The baseline a context network must beat: if interpolation already repairs
    the masked frames, reconstructing them teaches nothing about context."""
    if x.dim() != 3 or mask.shape != x.shape[:2]:
        raise ValueError(f"x must be (B, T, D) and mask (B, T); got {tuple(x.shape)} "
                         f"and {tuple(mask.shape)}")
    B, T, _ = x.shape
    t = torch.arange(T, device=x.device)
    out = x.clone()
    for b in range(B):
        keep = (~mask[b]).nonzero().squeeze(1)
        if keep.numel() == 0:
            raise ValueError(f"sequence {b} is fully masked: nothing to interpolate from")
        # For each frame, the kept frames on its left and right.
        right_i = torch.searchsorted(keep, t).clamp(max=keep.numel() - 1)
        left_i = (right_i - (keep[right_i] > t).long()).clamp(min=0)
        left, right = keep[left_i], keep[right_i]
        span = (right - left).clamp(min=1).to(x.dtype)
        w = ((t - left).to(x.dtype) / span).clamp(0, 1)[:, None]
        filled = (1 - w) * x[b, left] + w * x[b, right]
        out[b] = torch.where(mask[b][:, None], filled, x[b])
    return out


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked frames only (the pre-training loss, chapter 04)."""
    if not mask.any():
        raise ValueError("no masked frames: the masked MSE is undefined")
    diff = (prediction - target)[mask]
    return diff.pow(2).mean()

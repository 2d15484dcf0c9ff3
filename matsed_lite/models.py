"""The MAT-SED model, one readable file (nanoGPT style).

For now: the context network, the Transformer that sits on top of the frozen
frame encoder and turns 1000 frames of encoder features into 1000 frames of
context-aware features. Heads and the full model come later in this file.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import POSITIONS, Block, sinusoidal_embedding


def default_heads(dim: int) -> int:
    """dim // 64 heads (64 dimensions per head, 12 heads at MAT-SED's 768),
    at least 1, lowered to the nearest count that divides dim."""
    heads = max(1, dim // 64)
    while dim % heads:
        heads -= 1
    return heads


class ContextNetwork(nn.Module):
    """A stack of pre-norm Transformer blocks over frames: (B, T, D) -> (B, T, D).

    pos = "relative": every block's attention uses Transformer-XL relative
    positions and no absolute code is added anywhere (MAT-SED's choice: the
    network then cannot tell *where* in the clip it is, only how far apart
    frames are, so it is translation equivariant).
    pos = "absolute": a sinusoidal code of the frame index is added to the
    input once; the blocks use plain attention.
    pos = "none": no position information at all; the network is then
    permutation equivariant (it sees the frames as a set).

    heads defaults to ``default_heads(dim)``: dim // 64, at least 1 (12 at 768,
    as in the paper). mlp_ratio 1 gives MAT-SED's 768-wide feed-forward.

    Blocks are standard pre-norm. The official code differs in one place: its
    attention branch does x = norm1(x); x = x + attn(x), so the residual
    carries the *normalised* input and the un-normalised stream is lost at
    every block (its MLP branch is ordinary pre-norm). We keep the standard
    form, whose residual stream passes through untouched.

    forward(x, key_padding_mask=None, return_attention=False) -> out, or
    (out, [per-layer attention maps (B, H, T, T)]). key_padding_mask (B, T)
    bool, True = padding: padded frames are ignored as keys.
    """

    def __init__(self, dim: int, depth: int = 3, heads: int | None = None, pos: str = "relative",
                 mlp_ratio: float = 1, dropout: float = 0.0):
        super().__init__()
        if pos not in POSITIONS:
            raise ValueError(f"pos must be one of {POSITIONS}, got {pos!r}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        heads = default_heads(dim) if heads is None else heads
        self.dim, self.depth, self.heads, self.pos = dim, depth, heads, pos
        self.blocks = nn.ModuleList(Block(dim, heads, pos, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None,
                return_attention: bool = False):
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must be (batch, time, {self.dim}), got {tuple(x.shape)}")
        if self.pos == "absolute":
            T = x.shape[1]
            x = x + sinusoidal_embedding(torch.arange(T, device=x.device), self.dim).to(x.dtype)
        maps = []
        for block in self.blocks:
            x, attn = block(x, key_padding_mask, return_attention)
            maps.append(attn)
        x = self.norm(x)
        return (x, maps) if return_attention else x

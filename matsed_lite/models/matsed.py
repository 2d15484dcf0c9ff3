"""The MAT-SED model in one readable file: context network, heads, MATSEDLite (chapter 02).

* ``ContextNetwork``: the Transformer over the encoder's frames (relative
  positions), which turns frame features into context-aware frame features;
* ``linear_softmax_pool``, ``ReconstructionHead``: the pieces the training
  stages put on top of it;
* ``MATSEDLite``: encoder + context network + SED head + AT head.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..presets import get_preset
from .attention import POSITIONS, Block, sinusoidal_embedding
from .passt_lite import load_pretrained_encoder


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


# ---------------------------------------------------------------------------
# heads

def linear_softmax_pool(frame_probs: Tensor, frame_mask: Tensor | None = None) -> Tensor:
    """Clip scores from frame probabilities (B, T, K) -> (B, K): sum(p^2) / sum(p).

    Each frame weighs itself by its own probability, so confident frames
    dominate and a clip score is never above the highest frame score. Frames
    where ``frame_mask`` (B, T) is False (padding) do not count."""
    p = frame_probs
    if frame_mask is not None:
        p = p * frame_mask[..., None].to(p.dtype)
    return p.pow(2).sum(dim=1) / p.sum(dim=1).clamp_min(1e-7)


class ReconstructionHead(nn.Module):
    """Masked-reconstruction head: Linear -> GELU -> Dropout(0.1) -> Linear (MAT-SED's)."""

    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MATSEDLite(nn.Module):
    """MAT-SED, lite: encoder -> context network -> SED head, plus an AT head.

    encoder   PaSST-lite (or anything with ``frame_features(mel)`` (B, T, D) and
              ``clip_embedding(mel)`` (B, D))
    context   ContextNetwork over the encoder's frames (relative positions)
    sed_head  Linear(D, K) per frame; sigmoid -> frame probabilities;
              linear-softmax pooling -> a clip score
    at_head   Linear(D, K) on the encoder's clip embedding (audio tagging)

    ``forward(mel)`` returns a dict of logits and probabilities. ``frames=``
    lets a caller pass precomputed encoder frames (a frozen encoder is run once
    per clip), ``temperature`` divides the logits (MAT-SED uses 0.5 at
    evaluation)."""

    def __init__(self, encoder: nn.Module, n_classes: int, context_depth: int = 3,
                 context_heads: int | None = None, pos: str = "relative",
                 mlp_ratio: float = 1.0, dropout: float = 0.0):
        super().__init__()
        dim = encoder.dim
        self.encoder = encoder
        self.context = ContextNetwork(dim, context_depth, context_heads, pos, mlp_ratio, dropout)
        self.sed_head = nn.Linear(dim, n_classes)
        self.at_head = nn.Linear(dim, n_classes)
        self.n_classes = n_classes

    @property
    def time_downsampling(self) -> int:
        """Log-mel frames per output frame: 1 when the encoder interpolates its
        tokens back to the mel frame rate (the paper), 2 at 5 frames per token."""
        stride = int(getattr(self.encoder, "stride", 1))
        return stride // int(getattr(self.encoder, "frames_per_token", stride))

    @classmethod
    def from_preset(cls, preset, n_classes: int, encoder: nn.Module | None = None,
                    pos: str = "relative") -> "MATSEDLite":
        """The preset's sizes around an encoder (default: the shipped PaSST-lite)."""
        p = get_preset(preset)
        if encoder is None:
            encoder = load_pretrained_encoder(p)
        if hasattr(encoder, "frames_per_token"):
            encoder.frames_per_token = p.frames_per_token
        if encoder.dim != p.context_dim:
            raise ValueError(f"preset {p.name!r}: context_dim {p.context_dim} must equal the "
                             f"encoder's width {encoder.dim}")
        return cls(encoder, n_classes, p.context_depth, p.context_heads, pos,
                   p.context_mlp_ratio)

    def forward(self, mel: Tensor | None = None, frames: Tensor | None = None,
                clip_embedding: Tensor | None = None, key_padding_mask: Tensor | None = None,
                temperature: float = 1.0, return_attention: bool = False) -> dict:
        if frames is None and clip_embedding is None and hasattr(self.encoder, "frames_and_clip"):
            if mel is None:
                raise ValueError("pass mel (B, n_mels, T) or precomputed frames (B, T, D)")
            frames, clip_embedding = self.encoder.frames_and_clip(mel)  # one encoder pass
        if frames is None:
            if mel is None:
                raise ValueError("pass mel (B, n_mels, T) or precomputed frames (B, T, D)")
            frames = self.encoder.frame_features(mel)
        if clip_embedding is None:
            if mel is None:
                raise ValueError("pass mel or a precomputed clip_embedding (B, D)")
            clip_embedding = self.encoder.clip_embedding(mel)
        ctx = self.context(frames, key_padding_mask, return_attention)
        ctx, maps = ctx if return_attention else (ctx, None)
        frame_logits = self.sed_head(ctx) / temperature
        frame_probs = torch.sigmoid(frame_logits)
        valid = None if key_padding_mask is None else ~key_padding_mask
        out = {
            "frame_logits": frame_logits,
            "frame_probs": frame_probs,
            "clip_probs": linear_softmax_pool(frame_probs, valid),
            "at_logits": self.at_head(clip_embedding) / temperature,
            "context": ctx,
        }
        out["at_probs"] = torch.sigmoid(out["at_logits"])
        if return_attention:
            out["attention"] = maps
        return out

"""Multi-head self-attention that knows *how far apart* two frames are (chapter 02).

MAT-SED's context network uses Transformer-XL relative positions (Dai et al.
2019, appendix B) instead of adding an absolute position code to the input.
The score between query frame i and key frame j is

    score(i, j) = [(q_i + u) . k_j  +  (q_i + v) . W_r R_{i-j}] / sqrt(d_head)
                   content term         position term

where R_d is a sinusoidal embedding of the signed distance d = i - j, W_r a
bias-free linear map, and u, v are learned per-head vectors (a content bias and
a position bias that do not depend on the query). Nothing in the score depends
on where i and j sit in the clip, only on i - j, so shifting the whole
sequence in time shifts the output with it: the network is translation
equivariant, which suits sound events that can start anywhere.

Computing the position term naively needs a (T, T, d) tensor of embeddings.
Transformer-XL instead multiplies every query by all 2T - 1 distance
embeddings, (T, 2T-1), one matmul, and then *re-indexes* that matrix so that
column j of row i holds distance i - j: the "rel_shift" trick below.

For speed, the output is computed with
``torch.nn.functional.scaled_dot_product_attention`` and the position term
(plus the padding mask) rides along as its additive float ``attn_mask``. The
explicit softmax path is kept for when the attention maps themselves are
wanted (and for the tests to check the fast path against).

What it costs (benchmarks/bench_attention.py): the position term is one
(T, d) x (d, 2T-1) matmul per head forward and two backward, as many flops as
the attention itself, and training needs the gradient of the bias, a full
(B, H, T, T) tensor. On CUDA, SDPA's memory-efficient kernel accepts a bias
that needs a gradient. On CPU (torch 2.14) such a bias sends SDPA to its
unfused math path, so a relative layer trains at about 2x the time of plain
attention; without gradients (inference) SDPA stays on its fused kernel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POSITIONS = ("relative", "absolute", "none")


def sinusoidal_embedding(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal code of (possibly negative) positions: (len,) -> (len, dim).

    The Transformer's frequencies 1 / 10000^(2k/dim); laid out Transformer-XL
    style as [sin(p w_0..w_{dim/2-1}) | cos(p w_0..)] (a fixed permutation of
    Vaswani's interleaved layout, so nothing learned can tell the difference).
    Sin and cos of every frequency are both present, so a code for p + d is a
    fixed rotation of the code for p: distances become linear maps."""
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be a positive even number, got {dim}")
    positions = torch.as_tensor(positions)
    if positions.dim() != 1:
        raise ValueError(f"positions must be 1-D, got shape {tuple(positions.shape)}")
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float32,
                                              device=positions.device) / dim))
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def relative_distances(T: int, device=None) -> Tensor:
    """The distances Transformer-XL embeds, in its order: T-1, T-2, ..., -(T-1)."""
    return torch.arange(T - 1, -T, -1, device=device)


def rel_shift(x: Tensor) -> Tensor:
    """(..., T, 2T-1) scores against distances [T-1 ... -(T-1)] -> (..., T, T)
    scores indexed by (query i, key j), i.e. distance i - j (chapter 02).

    Column c of x is distance T-1-c, so we want out[i, j] = x[i, T-1-i+j]:
    row i must slide left by T-1-i. The trick does every row's slide at once
    without an index tensor: prepend one zero column (rows now 2T long), read
    the same memory as 2T rows of T, drop the first row (T values), and read it
    back as T rows of 2T-1. Each row has lost one more leading value than the
    row above; element (i, j) lands exactly on x[i, T-1-i+j]. Keep the first T
    columns. Pure memory reinterpretation plus one pad, so it works for any T."""
    T, L = x.shape[-2], x.shape[-1]
    if L != 2 * T - 1:
        raise ValueError(f"x must be (..., T, 2T-1), got last dims {(T, L)}")
    lead = x.shape[:-2]
    padded = F.pad(x, (1, 0))                       # (..., T, 2T)
    padded = padded.view(*lead, 2 * T, T)[..., 1:, :]  # drop T values
    return padded.reshape(*lead, T, 2 * T - 1)[..., :T]


def rel_shift_view(x: Tensor) -> Tensor:
    """The same result as ``rel_shift``, as a zero-copy view of x.

    out[i, j] = x[i, T-1-i+j] sits at flat offset (T-1) + i * (2T-2) + j of a
    contiguous row-major x: a strided view with row stride 2T-2 (one less than
    x's rows) starting T-1 values in. That is what the pad-and-reshape trick
    computes; here no padded copy is made on the way in, and the backward
    pass scatters into one zero buffer instead of undoing a pad, a slice and
    a reshape. The layer uses this one; ``rel_shift`` is the one to read."""
    T, L = x.shape[-2], x.shape[-1]
    if L != 2 * T - 1:
        raise ValueError(f"x must be (..., T, 2T-1), got last dims {(T, L)}")
    x = x.contiguous()
    stride = x.stride()
    return x.as_strided((*x.shape[:-1], T), (*stride[:-2], max(2 * T - 2, 1), 1),
                        x.storage_offset() + T - 1)


def relative_position_scores_explicit(q_plus_v: Tensor, r: Tensor) -> Tensor:
    """Reference for the position term, one query row at a time.

    q_plus_v: (B, H, T, d_head), queries plus the position bias v.
    r: (H, 2T-1, d_head), projected embeddings of distances T-1 ... -(T-1).
    Returns (B, H, T, T) with out[b, h, i, j] = q_plus_v[b, h, i] . r[h, d(i-j)],
    where d(i-j) = T-1-(i-j) is the row of r holding distance i - j. O(T^2)
    memory in the gathered embeddings: only for checking rel_shift."""
    B, H, T, dh = q_plus_v.shape
    if r.shape != (H, 2 * T - 1, dh):
        raise ValueError(f"r must be (H, 2T-1, d_head) = {(H, 2 * T - 1, dh)}, got {tuple(r.shape)}")
    j = torch.arange(T, device=r.device)
    rows = []
    for i in range(T):
        r_i = r[:, T - 1 - i + j]                   # (H, T, dh): distance i - j for every key j
        rows.append(torch.einsum("bhd,hjd->bhj", q_plus_v[:, :, i], r_i))
    return torch.stack(rows, dim=2)


def padding_bias(key_padding_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, T) bool, True = padding -> (B, 1, 1, T) additive bias.

    The most negative finite float rather than -inf: a padded key's weight is
    still exactly exp(-huge) = 0, but a row whose keys are all padding gets
    uniform weights instead of NaN."""
    bias = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    bias = bias.masked_fill(key_padding_mask, torch.finfo(dtype).min)
    return bias[:, None, None, :]


class MultiHeadSelfAttention(nn.Module):
    """Self-attention over (B, T, D) frames with pos = "relative" | "absolute" | "none" (chapter 02).

    "relative" is Transformer-XL's (see the module docstring). "absolute" and
    "none" are plain attention here: an absolute code, if any, is added to the
    network's input once (ContextNetwork does that), not inside each layer.

    forward(x, key_padding_mask=None, return_attention=False) -> out, or
    (out, attn (B, H, T, T)) with the softmax weights (before dropout).
    key_padding_mask is (B, T) bool with True marking padding, as in
    torch.nn.MultiheadAttention: padded frames get zero weight as keys."""

    def __init__(self, dim: int, heads: int, pos: str = "relative", dropout: float = 0.0):
        super().__init__()
        if pos not in POSITIONS:
            raise ValueError(f"pos must be one of {POSITIONS}, got {pos!r}")
        if heads < 1 or dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        if pos == "relative" and dim % 2:
            raise ValueError(f"dim must be even for sinusoidal distance embeddings, got {dim}")
        self.dim, self.heads, self.head_dim, self.pos = dim, heads, dim // heads, pos
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        if pos == "relative":
            # W_r is bias-free: a bias b would add (q_i + v) . b to every score
            # of row i alike, which the softmax cancels.
            self.w_r = nn.Linear(dim, dim, bias=False)
            self.u = nn.Parameter(torch.empty(heads, self.head_dim))  # content bias
            self.v = nn.Parameter(torch.empty(heads, self.head_dim))  # position bias
            nn.init.xavier_uniform_(self.u)
            nn.init.xavier_uniform_(self.v)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, pos={self.pos!r}, dropout={self.dropout}"

    def distance_embeddings(self, T: int, device=None, dtype=None) -> Tensor:
        """W_r R for distances T-1 ... -(T-1): (H, 2T-1, d_head)."""
        R = sinusoidal_embedding(relative_distances(T, device), self.dim)
        r = self.w_r(R.to(dtype or self.w_r.weight.dtype))
        return r.view(2 * T - 1, self.heads, self.head_dim).transpose(0, 1)

    def position_scores(self, q: Tensor) -> Tensor:
        """The position term (q + v) . W_r R_{i-j}, already divided by sqrt(d_head): (B, H, T, T)."""
        T = q.shape[2]
        r = self.distance_embeddings(T, q.device, q.dtype)
        scale = 1.0 / math.sqrt(self.head_dim)
        # Scale the (T, d) queries rather than the (T, 2T-1) scores: same result, fewer flops.
        q_v = (q + self.v.to(q.dtype)[None, :, None, :]) * scale
        return rel_shift_view(q_v @ r.transpose(-1, -2))

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None,
                return_attention: bool = False):
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must be (batch, time, {self.dim}), got {tuple(x.shape)}")
        B, T, _ = x.shape
        if key_padding_mask is not None:
            if key_padding_mask.shape != (B, T) or key_padding_mask.dtype != torch.bool:
                raise ValueError(f"key_padding_mask must be bool (batch, time) = {(B, T)}, got "
                                 f"{key_padding_mask.dtype} {tuple(key_padding_mask.shape)}")
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)

        bias = None  # everything added to the scaled content scores
        if self.pos == "relative":
            bias = self.position_scores(q)
            q = q + self.u.to(q.dtype)[None, :, None, :]
        if key_padding_mask is not None:
            pad = padding_bias(key_padding_mask, q.dtype)  # q's: autocast may have changed it
            bias = pad if bias is None else bias + pad
        p_drop = self.dropout if self.training else 0.0

        if return_attention:
            scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
            if bias is not None:
                scores = scores + bias
            attn = scores.softmax(dim=-1)
            out = F.dropout(attn, p_drop, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p_drop)
        out = self.proj(out.transpose(1, 2).reshape(B, T, self.dim))
        return (out, attn) if return_attention else out


class Block(nn.Module):
    """One pre-norm Transformer block: x + attn(norm(x)), then x + mlp(norm(x)).

    The one block of the package: the context network stacks it with relative
    positions, PaSST-lite with none (its positions are added to the patches)."""

    def __init__(self, dim: int, heads: int, pos: str, mlp_ratio: float, dropout: float):
        super().__init__()
        hidden = int(round(mlp_ratio * dim))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, pos=pos, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None,
                return_attention: bool = False):
        a = self.attn(self.norm1(x), key_padding_mask, return_attention)
        a, attn = a if return_attention else (a, None)
        x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x, attn

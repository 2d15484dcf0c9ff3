"""Data augmentation for sound event detection (MAT-SED and the DCASE baseline) (chapter 05).

All functions are functional and batched: they take a batch of features
(B, ..., T) or log-mels (B, n_mels, T), return new tensors (inputs are never
modified in place), and draw their randomness from an optional
``torch.Generator`` so a seeded run is repeatable. Random numbers are drawn
on the CPU and moved to the data's device, so the same seed gives the same
augmentation on CPU and GPU.

time roll         shift the clip in time, circularly, and its frame labels
                  with it (MAT-SED: shift ~ N(0, 90) of 1000 frames)
mixup             blend two clips and their labels (soft labels)
filter_augment    random gains on a few frequency bands ("step" FilterAugment)
frequency_warp    stretch or compress the frequency axis a little

The log-mel of this package is (ln(mel + 1e-5) + 4.5) / 5, so a gain of g dB
on the power spectrum is an *additive* shift of ``db_to_logmel_units(g)``
(where mel >> 1e-5): filters are additions here, not products.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from ..data.features import PASST_SCALE
from ..presets import Preset, Recipe


def _check_generator(generator):
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _check_mel(mel: Tensor) -> None:
    if mel.dim() < 3:
        raise ValueError(f"mel must be batched, (B, n_mels, T), got {tuple(mel.shape)}")


# ---------------------------------------------------------------------------
# time roll

def time_roll(x: Tensor, labels: Tensor | None, shift) -> tuple[Tensor, Tensor | None]:
    """Roll x (B, ..., T) along time by ``shift`` frames (an int, or one int per
    clip), and frame labels (B, T_l, K) by the same *time*.

    Positive shifts move content later; what falls off the end wraps round to
    the start, so the clip keeps its length and its events (the labels wrap
    too). Labels at a coarser rate (a CRNN's T / 4) move by
    round(shift * T_l / T), the same time in their own frames.
    """
    B, T = x.shape[0], x.shape[-1]
    shifts = _per_clip(shift, B)
    x_out = torch.stack([torch.roll(x[b], shifts[b], dims=-1) for b in range(B)])
    if labels is None:
        return x_out, None
    if labels.dim() != 3 or labels.shape[0] != B:
        raise ValueError(f"labels must be (B, T, K) with B = {B}, got {tuple(labels.shape)}")
    t_l = labels.shape[1]
    y_out = torch.stack([torch.roll(labels[b], int(round(shifts[b] * t_l / T)), dims=0)
                         for b in range(B)])
    return x_out, y_out


def _per_clip(shift, batch: int) -> list[int]:
    if torch.is_tensor(shift):
        shift = shift.tolist()
    if isinstance(shift, (int, np.integer)):
        return [int(shift)] * batch
    shift = [int(s) for s in shift]
    if len(shift) != batch:
        raise ValueError(f"got {len(shift)} shifts for a batch of {batch}")
    return shift


def random_time_roll(x: Tensor, labels: Tensor | None, std_frames: float,
                     generator: torch.Generator | None = None):
    """``time_roll`` by shifts ~ N(0, std_frames), rounded, one per clip.

    MAT-SED uses std 90 frames of 1000 (0.9 s at 10 ms); at another frame
    rate scale it with T (``std_frames = 0.09 * T``). Returns
    (x, labels, shifts) so the caller can log or undo the shifts."""
    g = _check_generator(generator)
    shifts = torch.round(torch.randn(x.shape[0], generator=g) * float(std_frames)).long()
    x_out, y_out = time_roll(x, labels, shifts)
    return x_out, y_out, shifts


# ---------------------------------------------------------------------------
# mixup

class MixupResult(NamedTuple):
    x: Tensor
    strong: Tensor | None
    weak: Tensor | None
    perm: Tensor      # clip b was mixed with clip perm[b]
    c: float          # weight of the original clip


def mixup(x: Tensor, strong: Tensor | None = None, weak: Tensor | None = None,
          alpha: float = 0.2, beta: float | None = None,
          generator: torch.Generator | None = None) -> MixupResult:
    """Mix each clip with another of the batch: c * x + (1 - c) * x[perm].

    c ~ Beta(alpha, beta) (beta defaults to alpha), one draw per batch;
    perm is a random permutation. Labels become soft, the same convex
    combination (strong (B, T, K), weak (B, K)), so the loss asks for "c of
    this clip's events and 1 - c of the other's".
      DCASE baseline: Beta(0.2, 0.2), c near 0 or 1, mostly a light touch.
      MAT-SED: Beta(10, 0.5), c mostly above 0.9: a faint second clip.
    Mixing log-mels blends loudness in the log domain; the DCASE recipe mixes
    before the log. Either way it is a regulariser, not a physical mixture.
    """
    g = _check_generator(generator)
    beta = alpha if beta is None else beta
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta parameters must be positive, got ({alpha}, {beta})")
    B = x.shape[0]
    perm = torch.randperm(B, generator=g)
    # torch's Beta sampler takes no generator: seed numpy's from ours.
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    c = float(np.random.default_rng(seed).beta(alpha, beta))
    idx = perm.to(x.device)

    def mix(t):
        if t is None:
            return None
        if t.shape[0] != B:
            raise ValueError(f"labels have batch {t.shape[0]}, inputs {B}")
        return c * t + (1.0 - c) * t[idx.to(t.device)]

    return MixupResult(mix(x), mix(strong), mix(weak), perm, c)


# ---------------------------------------------------------------------------
# filter augment

def db_to_logmel_units(db):
    """A power gain of ``db`` decibels as an offset of this package's log-mel.

    Power x 10^(db / 10) adds (db / 10) ln 10 to ln(mel), and the features
    divide ln(mel) by 5: offset = db * ln(10) / 50 (6 dB ~ 0.276). Exact where
    mel >> 1e-5 (the log's floor)."""
    return db * math.log(10.0) / 10.0 / PASST_SCALE


def filter_augment(mel: Tensor, db_range: Sequence[float] = (-4.5, 6.0),
                   n_bands: Sequence[int] = (2, 4), min_bandwidth: int = 4,
                   generator: torch.Generator | None = None) -> Tensor:
    """Step FilterAugment (Nam et al., 2022) on log-mels (B, n_mels, T).

    Each clip gets n bands (n uniform in n_bands, inclusive) with random
    boundaries, every band at least ``min_bandwidth`` mel bins wide, and a
    gain uniform in db_range per band: a crude random equaliser, so the model
    cannot rely on the exact spectral colour of a recording set-up. The gain
    is added to the log-mel as ``db_to_logmel_units``."""
    g = _check_generator(generator)
    _check_mel(mel)
    lo_n, hi_n = int(n_bands[0]), int(n_bands[1])
    if not 1 <= lo_n <= hi_n:
        raise ValueError(f"n_bands must be (low, high) with 1 <= low <= high, got {n_bands}")
    B, M = mel.shape[0], mel.shape[-2]
    gains = torch.zeros(B, M)
    for b in range(B):
        n = int(torch.randint(lo_n, hi_n + 1, (1,), generator=g))
        width = max(1, min(int(min_bandwidth), M // n))
        # n - 1 inner boundaries; sorted draws plus k * width keep every band >= width.
        inner = torch.sort(torch.randint(0, M - n * width + 1, (n - 1,), generator=g)).values
        inner = inner + torch.arange(1, n) * width
        edges = [0] + inner.tolist() + [M]
        band_db = torch.rand(n, generator=g) * (db_range[1] - db_range[0]) + db_range[0]
        for i in range(n):
            gains[b, edges[i]:edges[i + 1]] = band_db[i]
    offset = db_to_logmel_units(gains).to(mel.device, mel.dtype)
    shape = (B,) + (1,) * (mel.dim() - 3) + (M, 1)
    return mel + offset.reshape(shape)


# ---------------------------------------------------------------------------
# frequency warp

def frequency_warp(mel: Tensor, max_warp: float = 0.1,
                   generator: torch.Generator | None = None) -> Tensor:
    """Stretch or compress the frequency axis of log-mels (B, n_mels, T).

    Each clip draws s uniform in [1 - max_warp, 1 + max_warp]; output bin m
    reads the input at m / s by linear interpolation between neighbouring
    bins (clamped at the top bin). s > 1 moves content up in frequency, s < 1
    down: a pitch/timbre change the labels do not care about. Exactly the
    identity at max_warp = 0."""
    g = _check_generator(generator)
    _check_mel(mel)
    if not 0 <= max_warp < 1:
        raise ValueError(f"max_warp must be in [0, 1), got {max_warp}")
    B, M = mel.shape[0], mel.shape[-2]
    s = 1.0 + (torch.rand(B, generator=g, dtype=torch.float64) * 2 - 1) * max_warp
    pos = (torch.arange(M, dtype=torch.float64)[None, :] / s[:, None]).clamp(0, M - 1)  # (B, M)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=M - 1)
    w = (pos - lo).to(mel.dtype)
    dev = mel.device
    shape = (B,) + (1,) * (mel.dim() - 3) + (M, 1)
    lo, hi, w = lo.to(dev).reshape(shape), hi.to(dev).reshape(shape), w.to(dev).reshape(shape)
    lo = lo.expand(*mel.shape[:-2], M, mel.shape[-1])
    hi = hi.expand_as(lo)
    return (1 - w) * mel.gather(-2, lo) + w * mel.gather(-2, hi)


# ---------------------------------------------------------------------------
# a mean-teacher batch: the recipe's augmentations in their order (chapter 05)

def augment_batch(batch: dict, recipe: Recipe, preset: Preset, generator: torch.Generator) -> dict:
    """Time roll and mixup of a mixed batch (shared by student and teacher).

    Works on ``batch["mel"]`` (B, n_mels, T) at the mel frame rate or on cached
    ``batch["frames"]`` (B, T, D) at the context frame rate (the roll's std is
    ``recipe.time_roll_seconds`` either way);
    labels and the frame mask are rolled with the input. Mixup mixes strong
    clips with strong clips and weak with weak (mixing across kinds would
    leave half a clip with labels that do not exist); unlabeled clips are not
    mixed. Returns a new dict."""
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
        x, b["strong"], shifts = random_time_roll(x, b["strong"], std, generator=generator)
        b["frame_mask"], _ = time_roll(b["frame_mask"], None, shifts)
    if recipe.mixup_p > 0:
        x = x.clone()
        strong, weak = b["strong"].clone(), b["weak"].clone()
        clip = b["clip_embedding"].clone() if "clip_embedding" in b else None
        alpha, beta = recipe.mixup_beta
        for part in (b["has_strong"], b["has_weak"] & ~b["has_strong"]):
            idx = torch.nonzero(part.bool()).flatten()
            use = float(torch.rand(1, generator=generator)) < recipe.mixup_p
            if len(idx) < 2 or not use:
                continue
            m = mixup(x[idx], strong[idx], weak[idx], alpha=alpha, beta=beta,
                      generator=generator)
            x[idx], strong[idx], weak[idx] = m.x, m.strong, m.weak
            if clip is not None:  # cached frames: the AT head's input is mixed the same way
                clip[idx] = m.c * clip[idx] + (1.0 - m.c) * clip[idx][m.perm.to(clip.device)]
        b["strong"], b["weak"] = strong, weak
        if clip is not None:
            b["clip_embedding"] = clip
    b[key] = x if key == "mel" else x.transpose(1, 2)
    return b


def spec_augment(mel: Tensor, generator: torch.Generator,
                 db_range: Sequence[float] = (-4.5, 6.0)) -> Tensor:
    """One draw of MAT-SED's log-mel augmentations: frequency warp, then step
    FilterAugment (gains in ``db_range`` on 2-4 bands of at least 4 bins; the
    recipes pass ``Recipe.filter_db_range``, which matches the official strength)."""
    mel = frequency_warp(mel, generator=generator)
    return filter_augment(mel, db_range=db_range, generator=generator)

